-- Alert settings of each recipient, learnt from the suppliers and needs events.
CREATE TABLE {schema}.recipients (
    principal   text PRIMARY KEY,      -- supplier:<id> or buyer_group:<id>
    version     integer     NOT NULL,
    alerts      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.inbox_alerts (
    id          uuid PRIMARY KEY,
    principal   text        NOT NULL,
    body        jsonb       NOT NULL,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_alerts_principal ON {schema}.inbox_alerts (principal, created_at DESC);
