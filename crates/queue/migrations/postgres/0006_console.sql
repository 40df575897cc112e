-- The console (daemon/src/console) lists the newest finished and dead jobs by when they ended,
-- without reading the rows of every other state: one small index per state it lists.
CREATE INDEX jobs_done_at ON jobs (updated_at) WHERE state = 'done';
CREATE INDEX jobs_dead_at ON jobs (updated_at) WHERE state = 'dead';
-- Its media list goes newest first by id: of one kind, and within a span of arrival times (whose
-- ends it finds as ids by this index, then reads by id).
CREATE INDEX jobs_kind_id ON jobs (kind, id);
CREATE INDEX jobs_created ON jobs (created_at);
-- Who replayed or erased what, and when: every such act from the console or the CLI.
CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,                -- ms since the epoch
    who     TEXT   NOT NULL,
    action  TEXT   NOT NULL,                -- replay | replay_all | erase
    subject TEXT   NOT NULL,                -- a job id, or a masked phone number
    detail  TEXT   NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);
