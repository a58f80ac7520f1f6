-- Applied to every service schema; {schema} is the service's schema name.
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id          bigserial PRIMARY KEY,
    event_id    text        NOT NULL,
    topic       text        NOT NULL,
    event_type  text        NOT NULL,
    key         text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
