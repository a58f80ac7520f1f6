-- Sentence embeddings, one row per text version and model (the hash covers both), written
-- by the embedder consumer group and read by every matcher instance: a text is embedded
-- once, whatever the restarts, replays or instances. A supplier's row also holds its
-- sentences and their vectors, for explanations; it is deleted when the supplier is erased.
CREATE TABLE {schema}.embeddings (
    text_hash         text PRIMARY KEY,
    model             text        NOT NULL,
    vector            bytea       NOT NULL,
    sentences         jsonb       NOT NULL DEFAULT '[]',
    sentence_vectors  bytea,
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- Which text version each projected supplier and need has: its vector's key.
ALTER TABLE {schema}.suppliers ADD COLUMN text_hash text;
ALTER TABLE {schema}.needs ADD COLUMN text_hash text;
