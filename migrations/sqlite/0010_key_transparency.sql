-- umbra relay schema, version 10 (SQLite). Must agree with
-- migrations/postgres/0010_key_transparency.sql table for table, column
-- for column.
--
-- Key transparency, the relay side (docs/PROTOCOL.md 16). Every table here
-- is keyed by what the directory commits to, never by an account id: an
-- account's deletion leaves its published versions (the history is
-- append-only and clients hold proofs of it), so no row may hold the
-- 16-byte account id the deletion audit looks for.
--
-- kt_versions: every published version of every label, by its VRF index
-- (16.2, 32 bytes), numbered from 1 per index; value is the 65- or 18-byte
-- value of 16.3. Append-only: the relay never updates or deletes a row.
CREATE TABLE kt_versions (
    leaf_index BLOB NOT NULL CHECK (length(leaf_index) = 32),
    version    INTEGER NOT NULL CHECK (version >= 1),
    epoch      INTEGER NOT NULL CHECK (epoch >= 0),
    value      BLOB NOT NULL CHECK (length(value) IN (18, 65)),
    PRIMARY KEY (leaf_index, version)
);
CREATE INDEX kt_versions_epoch ON kt_versions (epoch);

-- kt_epochs: every published epoch, from 0 without gaps: its 49-byte entry
-- (16.7, the log's leaf data) and its signed head. Append-only.
CREATE TABLE kt_epochs (
    epoch INTEGER PRIMARY KEY NOT NULL CHECK (epoch >= 0),
    entry BLOB NOT NULL CHECK (length(entry) = 49),
    head  BLOB NOT NULL CHECK (length(head) >= 146)
);

-- kt_pending: labels (16.1's label_bytes: 0x01 || account, 17 bytes, or
-- 0x02 || len || username) whose value may have changed since the last
-- epoch, written in the same transaction as the change; the publisher
-- reads each label's value when it publishes and deletes the row in the
-- epoch's transaction. A row lives until the next epoch (about a second).
CREATE TABLE kt_pending (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    label BLOB NOT NULL CHECK (length(label) BETWEEN 5 AND 34)
);

-- kt_publisher: one row, locked by the publishing transaction, so two
-- nodes sharing a database never publish the same epoch.
CREATE TABLE kt_publisher (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1)
);
INSERT INTO kt_publisher (id) VALUES (1);
