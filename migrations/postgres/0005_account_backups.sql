-- umbra relay schema, version 5 (PostgreSQL). Must agree with
-- migrations/sqlite/0005_account_backups.sql.
--
-- One sealed account backup per account (docs/PROTOCOL.md 13 and 11.13):
-- ciphertext the relay cannot open, its public seq (the compare-and-swap
-- key: a new backup is stored only with a greater seq) and when it was
-- last written. Deleted with the account.
CREATE TABLE account_backups (
    account_id BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(account_id) = 16)
        REFERENCES accounts (account_id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    bytes      BYTEA NOT NULL CHECK (octet_length(bytes) BETWEEN 16384 AND 16777216),
    updated_at BIGINT NOT NULL
);
-- Ciphertext does not compress: store it out of line without trying.
ALTER TABLE account_backups ALTER COLUMN bytes SET STORAGE EXTERNAL;
