CREATE TABLE {schema}.suppliers (
    id          uuid PRIMARY KEY,
    org_number  text        NOT NULL,
    profile     jsonb,                 -- NULL once removed: the row is then a tombstone
    version     integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    removed_at  timestamptz
);

-- One live registration per organisation; a removed supplier may register again.
CREATE UNIQUE INDEX suppliers_org_number_live ON {schema}.suppliers (org_number)
    WHERE removed_at IS NULL;
