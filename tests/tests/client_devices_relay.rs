//! What a relay cannot do to an account's devices, through the real
//! binaries (docs/PROTOCOL.md §15.2, §15.3): a device its operator adds by
//! writing the relay's database (a device row, with a current device's
//! published keys copied under it, as §15.2 warns a relay could serve) is
//! listed by the relay but never written to by a sender, and the account's
//! own `devices` reports it as not in the signed list; a stored device
//! list rewritten to name it, which the account's identity never signed,
//! makes the sender's next send fail, naming the forged list. And the
//! account's ninth device is refused with a clear error (§15.1,
//! `MAX_DEVICES_PER_ACCOUNT` = 8).
//!
//! Must never: pass without the positive controls (the injected device is
//! really current at the relay, with keys; the listed devices really get
//! the message), or touch a client's store (only the relay's, as its
//! operator could).

mod client_support;
mod devices_support;

use client_support::{exit, start_relay, User, SEND_TIMEOUT};
use devices_support::{account_of, link, queued, relay_db, try_link};
use serde_json::Value;
use sqlx::{Row, SqlitePool};

/// `(device_id, listed)` of each `device` record.
fn listed(records: &[Value]) -> Vec<(u64, bool)> {
    records
        .iter()
        .filter(|d| d["type"] == "device")
        .map(|d| {
            (
                d["device_id"].as_u64().expect("device_id"),
                d["listed"].as_bool().expect("listed"),
            )
        })
        .collect()
}

/// As a hostile operator: makes device `to` of `account` current and
/// copies device `from`'s published keys (identity, signed, last-resort,
/// one-time and KEM prekeys: every table keyed by account and device that
/// the relay serves bundles from) under it.
async fn inject_device(db: &SqlitePool, account: &[u8], from: u32, to: u32) {
    sqlx::query(
        "INSERT INTO devices (account_id, device_id, created_at, last_seen_at, removed_at) \
         VALUES (?1, ?2, CAST(strftime('%s','now') AS INTEGER), 0, NULL)",
    )
    .bind(account)
    .bind(i64::from(to))
    .execute(db)
    .await
    .expect("insert the device row");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND (name IN ('identity_keys', 'signed_prekeys', 'last_resort_prekeys', \
         'one_time_prekeys') OR name LIKE 'kem_%')",
    )
    .fetch_all(db)
    .await
    .expect("key tables");
    assert!(tables.len() >= 4, "{tables:?}");
    for table in tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
            .fetch_all(db)
            .await
            .expect("columns")
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        if !columns.iter().any(|c| c == "device_id") {
            continue;
        }
        let list = columns.join(", ");
        let picked = columns
            .iter()
            .map(|c| {
                if c == "device_id" {
                    "?2".to_owned()
                } else {
                    c.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "INSERT INTO {table} ({list}) SELECT {picked} FROM {table} \
             WHERE account_id = ?1 AND device_id = ?3"
        ))
        .bind(account)
        .bind(i64::from(to))
        .bind(i64::from(from))
        .execute(db)
        .await
        .unwrap_or_else(|e| panic!("copy {table}: {e}"));
    }
}

/// As a hostile operator: rewrites the stored signed list to one version
/// higher naming `devices` (the format of §15.2 with a signature the
/// identity never made: the operator has no key to sign with).
async fn forge_list(db: &SqlitePool, account: &[u8], devices: &[u32]) {
    let (version, bytes): (i64, Vec<u8>) =
        sqlx::query_as("SELECT version, bytes FROM device_lists WHERE account_id = ?1")
            .bind(account)
            .fetch_one(db)
            .await
            .expect("the stored list");
    assert_eq!(&bytes[1..17], account, "the list names the account");
    let version = version + 1;
    let mut forged = bytes[..17].to_vec();
    forged.extend_from_slice(&(version as u64).to_be_bytes());
    forged.push(devices.len() as u8);
    for d in devices {
        forged.extend_from_slice(&d.to_be_bytes());
    }
    forged.extend_from_slice(&[0x5a; 64]);
    sqlx::query("UPDATE device_lists SET version = ?2, bytes = ?3 WHERE account_id = ?1")
        .bind(account)
        .bind(version)
        .bind(forged)
        .execute(db)
        .await
        .expect("rewrite the list");
}

#[test]
fn a_device_the_relay_adds_is_never_written_to_and_a_forged_list_is_reported() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let bob = User::register(&relay, "bob", "bob's password, long enough");
    alice.send("bob", "hello");
    bob.receive();
    let _laptop = link(&relay, &alice);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(relay_db(&relay));
    let account = runtime.block_on(account_of(&db, "alice"));

    runtime.block_on(inject_device(&db, &account, 2, 3));
    // Positive control: the relay now counts device 3 as current (its
    // ListDevices names it) and serves keys for it; alice's client reports
    // it as outside the list her identity signed.
    assert_eq!(
        listed(&alice.json_ok(&["devices"])),
        [(1, true), (2, true), (3, false)]
    );
    let keys: i64 = runtime.block_on(async {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM signed_prekeys WHERE account_id = ?1 AND device_id = 3",
        )
        .bind(&account)
        .fetch_one(&db)
        .await
        .expect("count")
    });
    assert_eq!(keys, 1, "the injected device has a signed prekey to serve");

    // Bob writes to the devices alice's signed list names, never to 3.
    bob.send("alice", "for the listed devices");
    assert_eq!(runtime.block_on(queued(&db, &account, 1)), 1);
    assert_eq!(runtime.block_on(queued(&db, &account, 2)), 1);
    assert_eq!(runtime.block_on(queued(&db, &account, 3)), 0);
    // And alice's own copies go to her laptop only.
    alice.receive();
    alice.send("bob", "and my copy");
    assert_eq!(runtime.block_on(queued(&db, &account, 3)), 0);

    // The operator rewrites the stored list to name device 3: bob's next
    // send fails, naming the forged list, and nothing reaches device 3.
    runtime.block_on(forge_list(&db, &account, &[1, 2, 3]));
    let args = [
        "send",
        "alice",
        "after the forgery",
        "--timeout",
        SEND_TIMEOUT,
    ];
    let out = bob.run(&args);
    assert_ne!(out.code, Some(0), "the send went through: {}", out.stdout);
    assert!(
        out.stderr.contains("did not sign"),
        "the error names the forged list: {}",
        out.stderr
    );
    assert_eq!(runtime.block_on(queued(&db, &account, 3)), 0);
}

/// Moves the account's finished link tickets past their expiry.
async fn expire_used_tickets(db: &SqlitePool, account: &[u8]) {
    let done = sqlx::query(
        "UPDATE link_tickets SET expires_at = 1 WHERE account_id = ?1 AND finished = 1 AND expires_at > 1",
    )
    .bind(account)
    .execute(db)
    .await
    .expect("expire used tickets");
    assert_eq!(done.rows_affected(), 1, "the link used one ticket");
}

#[test]
fn the_ninth_device_is_refused_with_a_clear_error() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(relay_db(&relay));
    let account = runtime.block_on(account_of(&db, "alice"));
    let mut devices = Vec::new();
    for _ in 2..=8 {
        devices.push(link(&relay, &alice));
        // A used link code counts against the four an account may hold
        // until it expires, five minutes on: expire it now, as the clock
        // would (the relay's own check, not this suite's patience, is what
        // the test is about).
        runtime.block_on(expire_used_tickets(&db, &account));
    }
    let records = alice.json_ok(&["devices"]);
    assert_eq!(
        listed(&records),
        (1..=8).map(|d| (d, true)).collect::<Vec<_>>()
    );
    let (ninth, accepted, linked, stderr) = try_link(&relay, &alice);
    assert!(!linked, "umbra link made a code for a ninth device");
    assert!(
        stderr.contains("the account has 8 devices already")
            && stderr.contains("umbra devices remove"),
        "{stderr}"
    );
    assert_eq!(accepted.code, Some(exit::USER_ERROR), "{}", accepted.stderr);
    // Nothing was enrolled: still eight, and the ninth directory holds no
    // account.
    assert_eq!(listed(&alice.json_ok(&["devices"])).len(), 8);
    let args = ["devices"];
    assert_ne!(ninth.run(&args).code, Some(0));
    drop(devices);
}
