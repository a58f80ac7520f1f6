-- The matcher's copy of every need (open and closed), rebuilt from innomatch.needs.v1: the
-- owner and co-signers decide who may read a need's matches.
CREATE TABLE {schema}.needs (
    id          text PRIMARY KEY,
    version     integer     NOT NULL,
    status      text        NOT NULL,
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX needs_open ON {schema}.needs (id) WHERE status = 'open';

-- One row per need-supplier pair that ever matched; the id is match_id(need_id, supplier_id)
-- and the version grows with each published change (found, updated, withdrawn).
CREATE TABLE {schema}.matches (
    id           uuid PRIMARY KEY,
    need_id      text             NOT NULL,
    supplier_id  text             NOT NULL,
    score        double precision NOT NULL,
    version      integer          NOT NULL,
    status       text             NOT NULL CHECK (status IN ('active', 'withdrawn')),
    explanation  jsonb            NOT NULL,
    updated_at   timestamptz      NOT NULL
);
CREATE INDEX matches_need ON {schema}.matches (need_id, score DESC) WHERE status = 'active';
CREATE INDEX matches_supplier ON {schema}.matches (supplier_id) WHERE status = 'active';
