-- Who may use the web pages and the API. Secrets are never stored: passwords
-- as argon2 PHC strings, session ids and API tokens as SHA-256 hex of the value
-- the client holds, so a copy of the database opens no session.
CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    -- The login, also the actor of the audit events this person causes.
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    -- `staff` may act on tickets; `read_only` may only read.
    role TEXT NOT NULL CHECK (role IN ('staff', 'read_only')),
    -- argon2id PHC string (salt and parameters included).
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Browser sessions: one row per login, deleted at logout, useless after expiry.
CREATE TABLE staff_sessions (
    -- SHA-256 hex of the random session id in the cookie.
    id_hash TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX staff_sessions_expires_at ON staff_sessions (expires_at);

-- Bearer tokens of the JSON API (`supportd token create NAME`).
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    -- Who the token is for (a program, an integration); the actor of its actions.
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    -- SHA-256 hex of the token; the token itself is printed once and not kept.
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('staff', 'read_only')),
    created_at INTEGER NOT NULL
) STRICT;
