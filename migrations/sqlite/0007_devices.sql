-- umbra relay schema, version 7 (SQLite). Must agree with
-- migrations/postgres/0007_devices.sql table for table, column for column.
--
-- Linked devices (docs/PROTOCOL.md 15). Queues, tokens and prekeys were
-- keyed by (account_id, device_id) from version 1; this adds what is new.
--
-- devices: every device an account has ever had. The relay assigns the
-- next id as one more than the highest id of the account, removed ones
-- included, so a removed device stays here as a tombstone (removed_at set)
-- and its id is never assigned again (15.1). last_seen_at is the device's
-- latest Authenticate rounded down to the hour (15.5), 0 if never.
-- Every existing account gets its device 1; created_at 0 says "registered
-- before this table recorded it".
CREATE TABLE devices (
    account_id   BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id    INTEGER NOT NULL CHECK (device_id >= 1 AND device_id <= 4294967295),
    created_at   INTEGER NOT NULL CHECK (created_at >= 0),
    last_seen_at INTEGER NOT NULL DEFAULT 0 CHECK (last_seen_at >= 0),
    removed_at   INTEGER CHECK (removed_at IS NULL OR removed_at >= 0),
    PRIMARY KEY (account_id, device_id)
);
INSERT INTO devices (account_id, device_id, created_at, last_seen_at, removed_at)
    SELECT account_id, 1, 0, 0, NULL FROM accounts;

-- identity_accounts: the account an identity key names (11.8 step 0 as
-- 15.1 restates it). An identity another account publishes or has
-- published is refused; the devices of one account share theirs. The row
-- outlives a replaced identity (an account that moved to a new identity
-- keeps its old one from being copied, since contacts may still pin it)
-- and goes with the account. It replaces the unique index of 0002, which
-- would refuse a second device of the same account. 0002 made identities
-- unique, so the backfill cannot conflict.
CREATE TABLE identity_accounts (
    identity   BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE
);
CREATE INDEX identity_accounts_account ON identity_accounts (account_id);
INSERT INTO identity_accounts (identity, account_id)
    SELECT identity, account_id FROM identity_keys;
DROP INDEX identity_keys_identity_unique;

-- device_lists: the account's signed device list (15.2, 15.4), exactly
-- the bytes published, with its version (the compare-and-swap key: a list
-- replaces the stored one only with a higher version). The relay cannot
-- sign one; senders verify it themselves.
CREATE TABLE device_lists (
    account_id BLOB PRIMARY KEY NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version >= 1),
    bytes      BLOB NOT NULL CHECK (length(bytes) BETWEEN 94 AND 122),
    updated_at INTEGER NOT NULL CHECK (updated_at >= 0)
);

-- link_tickets: the rendezvous of a device link (15.6). The ticket is a
-- handle, not a credential (the code's secret never reaches the relay),
-- so it is stored as it is. joined: the joiner side is taken (once);
-- enrolled_device: the id LinkEnrol assigned; finished: the joiner has
-- been given its token. Deleted by the expiry task after expires_at.
CREATE TABLE link_tickets (
    ticket          BLOB PRIMARY KEY NOT NULL CHECK (length(ticket) = 16),
    account_id      BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL CHECK (created_at >= 0),
    expires_at      INTEGER NOT NULL CHECK (expires_at >= 0),
    joined          INTEGER NOT NULL DEFAULT 0 CHECK (joined IN (0, 1)),
    enrolled_device INTEGER CHECK (enrolled_device IS NULL OR enrolled_device >= 1),
    finished        INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1))
);
CREATE INDEX link_tickets_account ON link_tickets (account_id, expires_at);
CREATE INDEX link_tickets_expiry ON link_tickets (expires_at);

-- link_messages: the posts of each side of a ticket (side 0 the creator,
-- 1 the joiner), numbered from 1 per side; opaque ciphertext the relay
-- never reads (15.7). Kept in the store so the two sides may be on
-- different nodes. account_id is the ticket's, so deleting an account
-- finds them as every other per-account row.
CREATE TABLE link_messages (
    ticket     BLOB NOT NULL REFERENCES link_tickets (ticket) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    side       INTEGER NOT NULL CHECK (side IN (0, 1)),
    number     INTEGER NOT NULL CHECK (number >= 1),
    payload    BLOB NOT NULL CHECK (length(payload) <= 32768),
    PRIMARY KEY (ticket, side, number)
);
CREATE INDEX link_messages_account ON link_messages (account_id);
