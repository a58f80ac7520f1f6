-- Market dialogues in the in-app inbox: an invitation to a supplier, and each answered
-- question to every participant (the need's buyer groups and the dialogue's suppliers).
-- The body never names who asked.
CREATE TABLE {schema}.dialogue_notices (
    id           text PRIMARY KEY,   -- alert_id(recipient, 'dialogue:<id>/<invitation|question id>', 'inbox')
    principal    text        NOT NULL,
    dialogue_id  text        NOT NULL,
    need_id      text        NOT NULL,
    kind         text        NOT NULL,   -- invitation | answer
    body         jsonb       NOT NULL,
    read_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dialogue_notices_inbox ON {schema}.dialogue_notices (principal, created_at DESC, id);
