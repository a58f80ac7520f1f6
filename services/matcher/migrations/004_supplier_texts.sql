-- Every text version each supplier has had embedded, so that erasure removes the vectors and
-- sentences of all of them, and never a vector that another supplier's text shares.
CREATE TABLE {schema}.supplier_texts (
    supplier_id  uuid NOT NULL,
    text_hash    text NOT NULL,
    PRIMARY KEY (supplier_id, text_hash)
);
CREATE INDEX supplier_texts_by_hash ON {schema}.supplier_texts (text_hash);
-- The versions embedded before this table existed: the current one of each supplier.
INSERT INTO {schema}.supplier_texts (supplier_id, text_hash)
SELECT id, text_hash FROM {schema}.suppliers WHERE text_hash IS NOT NULL;
