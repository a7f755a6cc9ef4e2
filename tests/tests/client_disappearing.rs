//! Disappearing messages through the real `umbra` binary and a real relay
//! (docs/PROTOCOL.md 10.8, 12.18; docs/CLI.md `disappearing`): alice sets a
//! 2 s timer, bob is told, a message sent under it is gone from both
//! stores after the timer (its `History` row and `Expiry` row counted in
//! each client's SQLite file by kind, and `search` no longer finds it),
//! while a message sent with the timer off stays.
//!
//! Must never: pass without first seeing the rows it then expects gone
//! (each count is checked before the timer runs out).

mod client_support;

use std::path::Path;
use std::time::Duration;

use client_support::{start_relay, User};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Rows of one record kind (client-core/src/store/mod.rs `RecordKind`) in
/// `user`'s store (no command runs then).
fn rows(user: &User, kind: u8) -> i64 {
    let db = user.cli.data_dir().join("umbra-client.db");
    count(
        &db,
        &format!("SELECT COUNT(*) FROM records WHERE kind = {kind}"),
    )
}

const HISTORY: u8 = 12;
const EXPIRY: u8 = 37;

fn count(db: &Path, sql: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql} on {}: {e}", db.display()));
        pool.close().await;
        n
    })
}

/// The bodies `search` finds for `text` on `user`'s device.
fn found(user: &User, text: &str) -> Vec<String> {
    user.json_ok(&["search", text])
        .iter()
        .filter(|r| r["type"] == "found")
        .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn a_disappearing_message_is_gone_from_both_stores_after_its_timer() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "kept msg before");
    bob.receive();

    let records = alice.json_ok(&["disappearing", "bob", "2s"]);
    let done = of_type(&records, "done");
    assert_eq!(done.len(), 1, "{records:?}");
    assert_eq!(done[0]["action"], "disappearing");
    alice.send("bob", "vanishing msg");
    let inbox = bob.receive();
    let timer = of_type(&inbox.records, "disappearing_timer");
    assert_eq!(timer.len(), 1, "{:?}", inbox.records);
    assert_eq!(timer[0]["with"], "alice");
    assert_eq!(timer[0]["by_peer"], true);
    assert_eq!(timer[0]["seconds"], 2);
    assert_eq!(inbox.messages.len(), 1, "{:?}", inbox.records);
    // Before the timer ran out: both messages and one expiry on each side.
    for user in [&alice, &bob] {
        assert_eq!(rows(user, HISTORY), 2, "{}", user.name);
        assert_eq!(rows(user, EXPIRY), 1, "{}", user.name);
    }

    std::thread::sleep(Duration::from_secs(3));
    // Opening the store sweeps what expired while the client was closed.
    for user in [&alice, &bob] {
        assert_eq!(
            found(user, "vanishing"),
            Vec::<String>::new(),
            "{}",
            user.name
        );
        assert_eq!(
            found(user, "kept msg"),
            ["kept msg before"],
            "{}",
            user.name
        );
        assert_eq!(rows(user, HISTORY), 1, "{}", user.name);
        assert_eq!(rows(user, EXPIRY), 0, "{}", user.name);
    }

    // Turned off, what is sent stays past the old timer.
    alice.json_ok(&["disappearing", "bob", "off"]);
    alice.send("bob", "kept msg after");
    let inbox = bob.receive();
    let timer = of_type(&inbox.records, "disappearing_timer");
    assert_eq!(timer.len(), 1, "{:?}", inbox.records);
    assert_eq!(timer[0]["seconds"], 0);
    std::thread::sleep(Duration::from_secs(3));
    for user in [&alice, &bob] {
        assert_eq!(found(user, "kept msg").len(), 2, "{}", user.name);
        assert_eq!(rows(user, HISTORY), 2, "{}", user.name);
    }
}
