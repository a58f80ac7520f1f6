-- Applied to every service schema; {schema} is the service's schema name.

-- Principals whose data was erased (supplier:<id> after supplier.removed). The row is the
-- marker that outlives the data: their tokens are refused, and no late or replayed event may
-- bring a copy of their data back.
CREATE TABLE IF NOT EXISTS {schema}.erased_principals (
    principal  text PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now()
);

-- A Kafka tombstone (null value) in the outbox: it follows the removal event of its key.
ALTER TABLE {schema}.outbox ALTER COLUMN payload DROP NOT NULL;

-- Inbox rows are pruned by age.
CREATE INDEX IF NOT EXISTS inbox_processed_at ON {schema}.inbox (processed_at);
