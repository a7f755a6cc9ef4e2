-- umbra relay schema, version 9 (PostgreSQL). Must agree with
-- migrations/sqlite/0009_one_time_prekey_marks.sql table for table,
-- column for column.
--
-- one_time_prekey_marks: per device and kind of one-time prekey (1 =
-- X25519, one_time_prekeys; 2 = ML-KEM-768, kem_one_time_prekeys), the
-- highest key_id ever stored under the identity the device publishes
-- (docs/PROTOCOL.md 11.8, "UploadPreKeys"). An upload stores no one-time
-- id at or below it: such an id was stored before, and is either still
-- stored (the upload is a retry after a lost answer) or was claimed and
-- deleted, and a claimed key's private half is gone from its owner, so
-- storing the id again would hand a second initiator a key nobody can
-- open. One row per device and kind whatever the number of keys claimed
-- (no tombstone per claimed key). The row goes with the identity that
-- stored the keys (a new identity deletes them and the row, 11.8 step 1),
-- with the device (15.5) and with the account.
--
-- Every device holding one-time prekeys when this runs gets its mark from
-- the highest id it holds, so the rule "every stored id is at or below the
-- mark" holds from the start. Claims made before it left no trace: a
-- retry, after the upgrade, of an upload answered before it can still
-- store a claimed id above every held one, once (its ids are then below
-- the mark).
CREATE TABLE one_time_prekey_marks (
    account_id BYTEA NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id  BIGINT NOT NULL CHECK (device_id >= 1 AND device_id <= 4294967295),
    kind       SMALLINT NOT NULL CHECK (kind IN (1, 2)),
    high_water BIGINT NOT NULL CHECK (high_water >= 0 AND high_water <= 4294967295),
    PRIMARY KEY (account_id, device_id, kind)
);
INSERT INTO one_time_prekey_marks (account_id, device_id, kind, high_water)
    SELECT account_id, device_id, 1, MAX(key_id) FROM one_time_prekeys
    GROUP BY account_id, device_id;
INSERT INTO one_time_prekey_marks (account_id, device_id, kind, high_water)
    SELECT account_id, device_id, 2, MAX(key_id) FROM kem_one_time_prekeys
    GROUP BY account_id, device_id;
