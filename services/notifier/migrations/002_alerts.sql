-- What the notifier knows of recipients, needs, suppliers and matches (from their events),
-- the alert threads of the in-app inbox, the push deliveries and the digests.

ALTER TABLE {schema}.recipients
    ADD COLUMN kind                 text NOT NULL DEFAULT 'supplier',   -- supplier | buyer_group
    ADD COLUMN name                 text NOT NULL DEFAULT '',
    ADD COLUMN supplier_types       text[] NOT NULL DEFAULT '{}',
    -- Turned off by the recipient's side: a webhook that answered 410 Gone, an e-mail address
    -- that was unsubscribed. Saving another URL or address turns the channel on again.
    ADD COLUMN webhook_disabled_url text,
    ADD COLUMN email_unsubscribed   text;

DROP TABLE {schema}.inbox_alerts;

CREATE TABLE {schema}.needs (
    id              text PRIMARY KEY,
    version         integer NOT NULL,
    buyer_group_id  text    NOT NULL,
    cosigners       text[]  NOT NULL DEFAULT '{}',
    title           text    NOT NULL,
    status          text    NOT NULL
);

CREATE TABLE {schema}.matches (
    id           text PRIMARY KEY,
    need_id      text        NOT NULL,
    supplier_id  text        NOT NULL,
    version      integer     NOT NULL,
    score        double precision NOT NULL,
    status       text        NOT NULL,               -- active | withdrawn
    explanation  jsonb       NOT NULL,
    event_time   timestamptz NOT NULL                -- when the matcher emitted this version
);
CREATE INDEX matches_need ON {schema}.matches (need_id);
CREATE INDEX matches_supplier ON {schema}.matches (supplier_id);

-- One thread per (recipient, match): the inbox entry; updates fold into it.
CREATE TABLE {schema}.alerts (
    id          text PRIMARY KEY,                    -- alert_id(recipient, match, 'inbox')
    principal   text        NOT NULL,
    match_id    text        NOT NULL,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_inbox ON {schema}.alerts (principal, created_at DESC, id);
CREATE INDEX alerts_match ON {schema}.alerts (match_id);

-- One push delivery per (recipient, match, channel), or one digest. Recorded before it is
-- sent; the worker claims due rows with a lease, so a crash only ever repeats a send.
CREATE TABLE {schema}.deliveries (
    id               text PRIMARY KEY,   -- alert_id(recipient, match, channel) or the digest id
    kind             text        NOT NULL,            -- alert | digest
    principal        text        NOT NULL,
    channel          text        NOT NULL,            -- webhook | email
    match_id         text,
    match_version    integer,
    score            double precision,
    -- waiting (settings not known yet), queued, digest (held for the next digest),
    -- in_digest, delivered, failed, suppressed, skipped
    state            text        NOT NULL,
    reason           text,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    lease_token      uuid,
    -- Frozen at the first attempt, so every retry sends the same body and delivery id.
    payload          jsonb,
    delivery_key     text,
    event_time       timestamptz,
    digest_id        text,
    first_attempt_at timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON {schema}.deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_principal ON {schema}.deliveries (principal, state);
CREATE INDEX deliveries_match ON {schema}.deliveries (match_id);
CREATE INDEX deliveries_digest ON {schema}.deliveries (digest_id) WHERE digest_id IS NOT NULL;

-- One row per (recipient, channel, period): a digest is made once, even across restarts.
CREATE TABLE {schema}.digests (
    id          text PRIMARY KEY,
    principal   text        NOT NULL,
    channel     text        NOT NULL,
    period      text        NOT NULL,                -- daily:2026-11-25 or weekly:2026-11-30
    size        integer     NOT NULL,
    suppressed  integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (principal, channel, period)
);
