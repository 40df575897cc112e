-- One row per media message. (source, message_id) is the idempotency key of the whole pipeline:
-- a redelivered webhook finds its row and adds nothing.
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    event           TEXT    NOT NULL,           -- the MediaEvent as JSON
    state           TEXT    NOT NULL,           -- queued | running | done | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,           -- ms since the epoch
    lease_owner     TEXT,
    lease_until     INTEGER,                    -- ms since the epoch
    checkpoints     TEXT    NOT NULL DEFAULT '{}',  -- step name -> that step's result, JSON
    last_error      TEXT,
    dead_reason     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (source, message_id)
);
CREATE INDEX jobs_claimable ON jobs (state, next_attempt_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
