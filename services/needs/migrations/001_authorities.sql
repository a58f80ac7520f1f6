CREATE TABLE {schema}.authorities (
    id          uuid PRIMARY KEY,
    org_number  text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    level       text        NOT NULL,
    region      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
