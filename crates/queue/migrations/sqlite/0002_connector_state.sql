-- Small state connectors keep between runs and share with `status` and other instances:
-- rotated refresh tokens, pause reasons. Scope is the connector's instance name.
CREATE TABLE connector_state (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
