-- Sessions of the web forum and its one-time sign-in links. Only SHA-256 digests of the
-- session ids and link tokens are stored; the API token a session acts with never leaves
-- the server.
CREATE TABLE {schema}.sessions (
    id_digest text PRIMARY KEY,
    principal text NOT NULL,
    api_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON {schema}.sessions (expires_at);

CREATE TABLE {schema}.sign_in_links (
    token_digest text PRIMARY KEY,
    principal text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX sign_in_links_expires_at ON {schema}.sign_in_links (expires_at);
