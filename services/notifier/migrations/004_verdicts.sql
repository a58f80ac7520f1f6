-- The buyers' verdict on each match (match.judged): a supplier judged not relevant to a
-- need is not alerted about it again.
ALTER TABLE {schema}.matches ADD COLUMN verdict text;
