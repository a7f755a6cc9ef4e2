-- umbra relay schema, version 5 (SQLite). Must agree with
-- migrations/postgres/0005_account_backups.sql.
--
-- One sealed account backup per account (docs/PROTOCOL.md 13 and 11.13):
-- ciphertext the relay cannot open, its public seq (the compare-and-swap
-- key: a new backup is stored only with a greater seq) and when it was
-- last written. Deleted with the account.
CREATE TABLE account_backups (
    account_id BLOB PRIMARY KEY NOT NULL CHECK (length(account_id) = 16)
        REFERENCES accounts (account_id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    bytes      BLOB NOT NULL CHECK (length(bytes) BETWEEN 16384 AND 16777216),
    updated_at INTEGER NOT NULL
);
