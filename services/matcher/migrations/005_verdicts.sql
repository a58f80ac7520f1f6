-- Buyers' verdicts on matches: the latest verdict of the need's groups on each pair.
ALTER TABLE {schema}.matches
    ADD COLUMN verdict        text CHECK (verdict IN ('relevant', 'not_relevant', 'contacted', 'selected')),
    ADD COLUMN verdict_reason text,
    ADD COLUMN judged_by      text,
    ADD COLUMN judged_at      timestamptz;
