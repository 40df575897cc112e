-- Erasure finds a person's jobs by their number; retention finds stored media by age. A job
-- whose media was removed (retention, erasure) keeps its row and key, so a redelivered webhook
-- still adds nothing; removed_at says when, and its event no longer holds personal data.
-- kind lets retention ask for one kind at a time; media_key is the stored object: content-addressed, so several messages may share one.
ALTER TABLE jobs ADD COLUMN sender TEXT GENERATED ALWAYS AS (event ->> 'sender') STORED;
ALTER TABLE jobs ADD COLUMN removed_at BIGINT;
ALTER TABLE jobs ADD COLUMN media_key TEXT GENERATED ALWAYS AS (checkpoints -> 'store' ->> 'key') STORED;
ALTER TABLE jobs ADD COLUMN kind TEXT GENERATED ALWAYS AS (event ->> 'kind') STORED;
CREATE INDEX jobs_media_key ON jobs (media_key);
CREATE INDEX jobs_sender ON jobs (sender);
CREATE INDEX jobs_retention ON jobs (kind, state, removed_at, created_at);
