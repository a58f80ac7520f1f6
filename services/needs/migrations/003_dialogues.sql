-- Market dialogues (requests for information) about a need, and what the needs service
-- learns from other services' events to hold them: which suppliers exist, and each need's
-- current shortlist.

-- The registered suppliers, from the suppliers topic. A removed supplier keeps its row (the
-- dialogue records name it as removed) with its name erased.
CREATE TABLE {schema}.suppliers (
    id       text    PRIMARY KEY,
    name     text,              -- null once the supplier is removed
    removed  boolean NOT NULL DEFAULT false,
    version  integer NOT NULL
);

-- Each need's matches as the matcher last published them, from the matches topic.
CREATE TABLE {schema}.shortlist (
    need_id      text             NOT NULL,
    supplier_id  text             NOT NULL,
    score        double precision NOT NULL,
    active       boolean          NOT NULL,
    verdict      text,
    version      integer          NOT NULL,
    PRIMARY KEY (need_id, supplier_id)
);

CREATE TABLE {schema}.dialogues (
    id            uuid        PRIMARY KEY,
    need_id       uuid        NOT NULL REFERENCES {schema}.needs (id),
    opened_by     uuid        NOT NULL REFERENCES {schema}.buyer_groups (id),
    title         text        NOT NULL,
    agenda        text        NOT NULL,
    open_to_all   boolean     NOT NULL,
    closes_at     timestamptz NOT NULL,
    status        text        NOT NULL,   -- open | closed (closed once closes_at has passed)
    version       integer     NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX dialogues_need ON {schema}.dialogues (need_id);
CREATE INDEX dialogues_due ON {schema}.dialogues (closes_at) WHERE status = 'open';

-- The suppliers in a dialogue: invited by the group, or joined an open dialogue by taking part.
CREATE TABLE {schema}.dialogue_suppliers (
    dialogue_id   uuid        NOT NULL REFERENCES {schema}.dialogues (id) ON DELETE CASCADE,
    supplier_id   text        NOT NULL,
    invited_at    timestamptz,
    joined_at     timestamptz,
    response      text,                   -- accepted | declined, the latest
    responded_at  timestamptz,
    PRIMARY KEY (dialogue_id, supplier_id)
);

CREATE TABLE {schema}.dialogue_questions (
    id           uuid        PRIMARY KEY,
    dialogue_id  uuid        NOT NULL REFERENCES {schema}.dialogues (id) ON DELETE CASCADE,
    asked_by     text        NOT NULL,    -- supplier id; never shown to other suppliers
    question     text        NOT NULL,
    asked_at     timestamptz NOT NULL,
    answer       text,
    answered_by  uuid        REFERENCES {schema}.buyer_groups (id),
    answered_at  timestamptz
);
CREATE INDEX dialogue_questions_dialogue ON {schema}.dialogue_questions (dialogue_id, asked_at);

CREATE TABLE {schema}.dialogue_inputs (
    id            uuid        PRIMARY KEY,
    dialogue_id   uuid        NOT NULL REFERENCES {schema}.dialogues (id) ON DELETE CASCADE,
    supplier_id   text        NOT NULL,
    text          text        NOT NULL,
    submitted_at  timestamptz NOT NULL
);
CREATE INDEX dialogue_inputs_dialogue ON {schema}.dialogue_inputs (dialogue_id, submitted_at);
