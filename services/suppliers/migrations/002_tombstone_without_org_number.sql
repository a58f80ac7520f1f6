-- A tombstone keeps only the id, the last version and when it was removed: the
-- organisationsnummer of a sole trader is a personal identity number, so it goes too.
ALTER TABLE {schema}.suppliers ALTER COLUMN org_number DROP NOT NULL;
