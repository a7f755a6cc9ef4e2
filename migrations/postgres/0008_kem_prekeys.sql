-- umbra relay schema, version 8 (PostgreSQL). Must agree with
-- migrations/sqlite/0008_kem_prekeys.sql table for table, column for column.
--
-- Signed ML-KEM-768 prekeys (docs/PROTOCOL.md 3.4, 11.8), beside the X25519
-- ones of version 1. The relay treats a key as opaque bytes of exactly
-- 1 184 (an ML-KEM-768 encapsulation key); it checks only the owner's
-- Ed25519 signature over it before storing it, and serves key and signature
-- as given, so the initiator can check the signature itself.
--
-- kem_one_time_prekeys: handed out at most once, deleted in the transaction
-- that claims it (with the X25519 one-time prekey of the same fetch).
-- kem_last_resort_prekeys: one per device, served with every hybrid
-- bundle, replaced by the next upload that carries one.
-- Both go with the device (15.5), with the account, and with the identity
-- that signed them (a new identity drops them, 11.8 step 1).
--
-- Size: a row is about 1.3 KB (1 184 key + 64 signature + ids), under
-- PostgreSQL's TOAST threshold (about 2 KB), so it is stored inline and
-- uncompressed (random bytes would not compress anyway), about six rows to
-- an 8 KiB page: the relay's per-account cap (max_prekeys_per_device,
-- default 1 000, all devices together) bounds an account at about 1.3 MB,
-- and a client topping up batches of 100 below 20 holds about 120 per
-- device (150 KB). Claims read the lowest key_id through the primary key.
CREATE TABLE kem_one_time_prekeys (
    account_id BYTEA NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  BIGINT NOT NULL CHECK (device_id >= 1 AND device_id <= 4294967295),
    key_id     BIGINT NOT NULL CHECK (key_id >= 0 AND key_id <= 4294967295),
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    public_key BYTEA NOT NULL CHECK (octet_length(public_key) = 1184),
    signature  BYTEA NOT NULL CHECK (octet_length(signature) = 64),
    PRIMARY KEY (account_id, device_id, key_id)
);

CREATE TABLE kem_last_resort_prekeys (
    account_id BYTEA NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  BIGINT NOT NULL CHECK (device_id >= 1 AND device_id <= 4294967295),
    key_id     BIGINT NOT NULL CHECK (key_id >= 0 AND key_id <= 4294967295),
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    public_key BYTEA NOT NULL CHECK (octet_length(public_key) = 1184),
    signature  BYTEA NOT NULL CHECK (octet_length(signature) = 64),
    PRIMARY KEY (account_id, device_id)
);
