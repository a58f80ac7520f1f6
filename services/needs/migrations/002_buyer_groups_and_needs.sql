CREATE TABLE {schema}.buyer_groups (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL,
    focus_area  text        NOT NULL,
    alerts      jsonb       NOT NULL,   -- AlertSettings, webhook secret included
    version     integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE {schema}.buyer_group_members (
    buyer_group_id  uuid NOT NULL REFERENCES {schema}.buyer_groups (id) ON DELETE CASCADE,
    authority_id    uuid NOT NULL REFERENCES {schema}.authorities (id),
    PRIMARY KEY (buyer_group_id, authority_id)
);
CREATE INDEX buyer_group_members_authority ON {schema}.buyer_group_members (authority_id);

-- `state` is the NeedState carried by the events; the other columns are derived from it
-- (and from the groups behind the need) so that lists and filters use indexes.
CREATE TABLE {schema}.needs (
    id                  uuid PRIMARY KEY,
    buyer_group_id      uuid        NOT NULL REFERENCES {schema}.buyer_groups (id),
    cosigners           uuid[]      NOT NULL,
    status              text        NOT NULL,
    focus_area          text        NOT NULL,
    procedure           text        NOT NULL,
    cpv_with_ancestors  text[]      NOT NULL,  -- every code of the need and every code above it
    cpv_branches        text[]      NOT NULL,  -- the divisions and groups the codes belong to
    regions             text[]      NOT NULL,
    regions_with_parents text[]     NOT NULL,  -- every region of the need and every region above it
    words               text[]      NOT NULL,  -- significant words of title and description
    search_text         text        NOT NULL,  -- lower-cased title and description
    authority_count     integer     NOT NULL,
    authorities_by_level jsonb      NOT NULL,
    state               jsonb       NOT NULL,
    version             integer     NOT NULL,
    published_at        timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX needs_open_newest ON {schema}.needs (published_at DESC, id DESC) WHERE status = 'open';
CREATE INDEX needs_cpv ON {schema}.needs USING gin (cpv_with_ancestors);
CREATE INDEX needs_branches ON {schema}.needs USING gin (cpv_branches);
CREATE INDEX needs_regions ON {schema}.needs USING gin (regions_with_parents);
CREATE INDEX needs_region_codes ON {schema}.needs USING gin (regions);
CREATE INDEX needs_words ON {schema}.needs USING gin (words);
CREATE INDEX needs_group ON {schema}.needs (buyer_group_id);
CREATE INDEX needs_cosigners ON {schema}.needs USING gin (cosigners);
