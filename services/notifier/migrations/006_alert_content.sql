-- What an alert shows a person beside the match: the supplier's size, type and public
-- contact (a removed supplier's row goes, and these with it), and the need's regions and the
-- levels of the authorities behind it.
ALTER TABLE {schema}.recipients
    ADD COLUMN size           text,
    ADD COLUMN company_type   text,
    ADD COLUMN contact_email  text;

ALTER TABLE {schema}.needs
    ADD COLUMN regions           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN authority_levels  text[] NOT NULL DEFAULT '{}';
