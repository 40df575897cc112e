-- The queue keeps what it indexes and counts by in columns of its own, written with each step's
-- checkpoint, instead of reading into the pipeline's checkpoint JSON: media_key (the stored
-- object, for erasure and retention) and consent_refused (jobs that ended without their media).
DROP INDEX jobs_media_key;
ALTER TABLE jobs DROP COLUMN media_key;
ALTER TABLE jobs ADD COLUMN media_key TEXT;
ALTER TABLE jobs ADD COLUMN consent_refused BOOLEAN;
UPDATE jobs SET media_key = checkpoints -> 'store' ->> 'key',
    consent_refused = NOT (checkpoints -> 'consent' ->> 'given')::boolean
    WHERE checkpoints ? 'store' OR checkpoints ? 'consent';
CREATE INDEX jobs_media_key ON jobs (media_key);
