-- The console's tag filter (daemon/src/console/media.rs) walks one tag's jobs newest first by
-- this table's key instead of reading every job's checkpoints. A row per tag of a job, written in
-- the transaction that writes the job's `tags` checkpoint and dropped when its media is removed
-- (queue/src/jobs.rs).
CREATE TABLE job_tags (
    tag    TEXT   NOT NULL,
    job_id BIGINT NOT NULL,
    PRIMARY KEY (tag, job_id)
);
CREATE INDEX job_tags_job ON job_tags (job_id);
-- The jobs tagged before this table existed.
INSERT INTO job_tags (tag, job_id)
    SELECT t.tag, jobs.id FROM jobs, jsonb_array_elements(
        CASE WHEN jsonb_typeof(jobs.checkpoints -> 'tags') = 'array'
             THEN jobs.checkpoints -> 'tags' ELSE '[]'::jsonb END) AS e(value),
        LATERAL (SELECT e.value #>> '{}' AS tag WHERE jsonb_typeof(e.value) = 'string') AS t
    WHERE jobs.removed_at IS NULL
    ON CONFLICT DO NOTHING;
