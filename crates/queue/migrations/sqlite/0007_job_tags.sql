-- The console's tag filter (daemon/src/console/media.rs) walks one tag's jobs newest first by
-- this table's key instead of reading every job's checkpoints. A row per tag of a job, written in
-- the transaction that writes the job's `tags` checkpoint and dropped when its media is removed
-- (queue/src/jobs.rs).
CREATE TABLE job_tags (
    tag    TEXT    NOT NULL,
    job_id INTEGER NOT NULL,
    PRIMARY KEY (tag, job_id)
) WITHOUT ROWID;
CREATE INDEX job_tags_job ON job_tags (job_id);
-- The jobs tagged before this table existed.
INSERT OR IGNORE INTO job_tags (tag, job_id)
    SELECT t.value, jobs.id FROM jobs, json_each(jobs.checkpoints, '$.tags') AS t
    WHERE jobs.removed_at IS NULL AND json_type(jobs.checkpoints, '$.tags') = 'array'
      AND t.type = 'text';
