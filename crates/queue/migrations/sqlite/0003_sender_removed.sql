-- Erasure finds a person's jobs by their number; retention finds stored media by age. A job
-- whose media was removed (retention, erasure) keeps its row and key, so a redelivered webhook
-- still adds nothing; removed_at says when, and its event no longer holds personal data.
ALTER TABLE jobs ADD COLUMN sender TEXT GENERATED ALWAYS AS (json_extract(event, '$.sender')) VIRTUAL;
ALTER TABLE jobs ADD COLUMN removed_at INTEGER;
CREATE INDEX jobs_sender ON jobs (sender);
CREATE INDEX jobs_retention ON jobs (state, removed_at, created_at);
