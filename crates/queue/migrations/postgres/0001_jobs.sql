-- One row per media message. (source, message_id) is the idempotency key of the whole pipeline:
-- a redelivered webhook finds its row and adds nothing.
CREATE TABLE jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    event           JSONB   NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,           -- ms since the epoch
    lease_owner     TEXT,
    lease_until     BIGINT,                     -- ms since the epoch
    checkpoints     JSONB   NOT NULL DEFAULT '{}'::jsonb,
    last_error      TEXT,
    dead_reason     TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (source, message_id)
);
CREATE INDEX jobs_claimable ON jobs (state, next_attempt_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
