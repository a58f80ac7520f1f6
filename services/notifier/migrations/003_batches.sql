-- Instant alerts that fall due together for one recipient and channel (typically the
-- shortlist of a newly published need) go out as one delivery of kind 'batch'. Each alert
-- row then points at the digest or batch delivery that carried it.
ALTER TABLE {schema}.deliveries RENAME COLUMN digest_id TO carried_by;
ALTER INDEX {schema}.deliveries_digest RENAME TO deliveries_carried_by;
