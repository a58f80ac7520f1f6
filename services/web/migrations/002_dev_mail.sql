-- Development mode only: the mails the forum sent (sign-in links), for the page /dev/mail.
-- In the database rather than in memory, so that every forum process shows every mail.
CREATE TABLE {schema}.dev_mail (
    id bigserial PRIMARY KEY,
    to_address text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
