-- umbra relay schema, version 1 (SQLite). Must agree with
-- migrations/postgres/0001_initial.sql table for table, column for column.
-- Every per-user table is keyed by account_id first. Ids are raw bytes,
-- times are Unix seconds, sequence numbers and key ids are 64-bit integers.
-- Nothing here can open an envelope: the relay stores ciphertext and public keys.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

CREATE TABLE accounts (
    account_id    BLOB PRIMARY KEY NOT NULL CHECK (length(account_id) = 16),
    username      TEXT NOT NULL UNIQUE,
    password_file BLOB NOT NULL
);

-- Only SHA-256 hashes of session tokens, never the tokens.
CREATE TABLE tokens (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    device_id  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, token_hash)
);
CREATE INDEX tokens_expiry ON tokens (expires_at);

CREATE TABLE identity_keys (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL,
    identity   BLOB NOT NULL,
    PRIMARY KEY (account_id, device_id)
);

CREATE TABLE signed_prekeys (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    signature  BLOB NOT NULL CHECK (length(signature) = 64),
    PRIMARY KEY (account_id, device_id)
);

CREATE TABLE one_time_prekeys (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    PRIMARY KEY (account_id, device_id, key_id)
);

CREATE TABLE last_resort_prekeys (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    PRIMARY KEY (account_id, device_id)
);

-- The last sequence number handed out per recipient device. Kept even when
-- the queue is empty so a sequence number is never reused.
CREATE TABLE queue_counters (
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL CHECK (last_seq >= 0),
    PRIMARY KEY (account_id, device_id)
);

-- One ordered queue per recipient device. No sender column, by design.
CREATE TABLE messages (
    account_id  BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id   INTEGER NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    envelope    BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id, seq)
);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE blobs (
    account_id   BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    blob_id      BLOB NOT NULL UNIQUE CHECK (length(blob_id) = 32),
    expires_at   INTEGER NOT NULL,
    chunk_count  INTEGER NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    stored_bytes INTEGER NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0),
    size         INTEGER CHECK (size IS NULL OR size = stored_bytes),
    PRIMARY KEY (account_id, blob_id)
);
CREATE INDEX blobs_expiry ON blobs (expires_at);

CREATE TABLE blob_chunks (
    account_id  BLOB NOT NULL,
    blob_id     BLOB NOT NULL,
    chunk_index INTEGER NOT NULL CHECK (chunk_index >= 0),
    bytes       BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 65536),
    PRIMARY KEY (account_id, blob_id, chunk_index),
    FOREIGN KEY (account_id, blob_id) REFERENCES blobs (account_id, blob_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX blob_chunks_by_blob ON blob_chunks (blob_id, chunk_index);
