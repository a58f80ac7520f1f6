-- The matcher's own copy of every live supplier profile, rebuilt from innomatch.suppliers.v1.
CREATE TABLE {schema}.suppliers (
    id          uuid PRIMARY KEY,
    version     integer     NOT NULL,
    profile     jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
