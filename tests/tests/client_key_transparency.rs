//! Key transparency through the real binaries (issue 15, phase C): a
//! client given the relay's key-directory keys (as `umbra-relay audit`
//! prints them, here derived from the relay's own key file) pins them,
//! `umbra directory root` prints them with a verified head, a first
//! message to a contact passes the directory check of the contact's
//! identity, and neither side's self-monitoring raises an alarm on an
//! honest relay; a different key given later is refused.
//!
//! Must never: pass without the check running (the root must show the
//! pinned keys and a head, which only a verified `KtHead` gives).

mod client_support;

use client_support::{json_records, start_relay, string_field, User, RECEIVE_TIMEOUT};
use umbra_protocol::wire::kt::{DirectorySigningKey, VrfSecretKey};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The public keys of the relay's `kt-directory-key` file (16.13).
fn relay_keys(relay: &umbra_e2e::Relay) -> (String, String) {
    let header: &[u8] = b"umbra-relay key transparency keys v1\n";
    let bytes = std::fs::read(relay.data_dir().join("kt-directory-key")).expect("KT key file");
    assert!(bytes.starts_with(header) && bytes.len() == header.len() + 64);
    let (seed, scalar) = bytes[header.len()..].split_at(32);
    let directory = DirectorySigningKey::from_seed(seed.try_into().expect("32"));
    let vrf = VrfSecretKey::from_bytes(scalar.try_into().expect("32")).expect("a VRF key");
    (
        hex(&directory.public_key().to_bytes()),
        hex(&vrf.public_key().to_bytes()),
    )
}

fn with_keys(keys: &(String, String)) -> [(&'static str, &str); 2] {
    [
        ("UMBRA_KT_DIRECTORY_KEY", keys.0.as_str()),
        ("UMBRA_KT_VRF_KEY", keys.1.as_str()),
    ]
}

fn run_ok(user: &User, args: &[&str], keys: &(String, String)) -> Vec<serde_json::Value> {
    let out = user.cli.run_with_env(args, None, &with_keys(keys));
    assert!(
        out.status.success(),
        "umbra {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_records(&String::from_utf8_lossy(&out.stdout), args)
}

#[test]
fn a_pinned_client_checks_the_directory_and_prints_its_root() {
    let relay = start_relay();
    let keys = relay_keys(&relay);
    let alice = User::register(&relay, "alice", "correct horse battery staple alice");
    let bob = User::register(&relay, "bob", "correct horse battery staple bob");

    let root = run_ok(&alice, &["--json", "directory", "root"], &keys);
    assert_eq!(root.len(), 1, "{root:?}");
    assert_eq!(root[0]["type"], "directory_root", "{root:?}");
    assert_eq!(string_field(&root[0], "directory_key"), keys.0);
    assert_eq!(string_field(&root[0], "vrf_key"), keys.1);
    let epoch = root[0]["epoch"].as_u64().expect("a verified head");
    assert_eq!(string_field(&root[0], "map_root").len(), 64);
    assert_eq!(string_field(&root[0], "log_root").len(), 64);

    // First contact: bob's identity is checked against his account's leaf
    // (waiting for the epoch that publishes it, if it is not out yet).
    let sent = run_ok(
        &alice,
        &["--json", "send", "bob", "hello", "--timeout", "30"],
        &keys,
    );
    assert!(sent.iter().any(|r| r["type"] == "sent"), "{sent:?}");
    let got = run_ok(
        &bob,
        &["--json", "receive", "--timeout", RECEIVE_TIMEOUT],
        &keys,
    );
    assert!(got.iter().any(|r| r["type"] == "message"), "{got:?}");
    for records in [
        &got,
        &run_ok(
            &alice,
            &["--json", "receive", "--timeout", RECEIVE_TIMEOUT],
            &keys,
        ),
    ] {
        assert!(
            !records
                .iter()
                .any(|r| r["type"] == "own_key_not_published_by_me"
                    || r["type"] == "directory_alarm"),
            "{records:?}"
        );
    }

    // The pinned keys stay: the root is remembered and later heads extend it.
    let again = run_ok(&alice, &["--json", "directory", "root"], &keys);
    assert!(again[0]["epoch"].as_u64().expect("epoch") >= epoch);

    // Without the options the store's pins are used; other keys are refused.
    let plain = alice.run(&["--json", "directory", "root"]);
    assert_eq!(plain.code, Some(0), "{plain:?}");
    let other = (keys.1.clone(), keys.0.clone());
    let refused = alice
        .cli
        .run_with_env(&["directory", "root"], None, &with_keys(&other));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("differ from the ones this store pinned"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// What a compromised relay does: with the relay stopped, its database
/// gets an identity of its own for `account` and the mark that makes the
/// next epoch (published at start) commit it.
fn relay_swaps_identity(relay: &mut umbra_e2e::Relay, account: &[u8]) {
    relay.stop();
    let db = relay.data_dir().join("umbra.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
        let pool = sqlx::SqlitePool::connect_with(options)
            .await
            .expect("relay db");
        let changed = sqlx::query("UPDATE identity_keys SET identity = ? WHERE account_id = ?")
            .bind(vec![0x5a_u8; 128])
            .bind(account.to_vec())
            .execute(&pool)
            .await
            .expect("update");
        assert_eq!(changed.rows_affected(), 1);
        let mut label = vec![0x01];
        label.extend_from_slice(account);
        sqlx::query("INSERT INTO kt_pending (label) VALUES (?)")
            .bind(label)
            .execute(&pool)
            .await
            .expect("mark");
        pool.close().await;
    });
    relay.restart();
}

#[test]
fn a_key_the_owner_never_published_raises_the_alarm_at_its_next_receive() {
    let mut relay = start_relay();
    let keys = relay_keys(&relay);
    let bob = User::register(&relay, "bob", "correct horse battery staple bob");
    let receive = ["--json", "receive", "--timeout", RECEIVE_TIMEOUT];
    let alarms = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["type"] == "own_key_not_published_by_me")
            .count()
    };
    // Bob's registration may still wait for its epoch; the first check
    // that sees it must find only his own keys.
    let honest = run_ok(&bob, &receive, &keys);
    assert_eq!(alarms(&honest), 0, "{honest:?}");
    let me = run_ok(&bob, &["--json", "whoami"], &keys);
    let account = unhex(&string_field(&me[0], "account_id"));
    relay_swaps_identity(&mut relay, &account);
    let after = run_ok(&bob, &receive, &keys);
    assert_eq!(alarms(&after), 1, "{after:?}");
    let alarm = after
        .iter()
        .find(|r| r["type"] == "own_key_not_published_by_me")
        .expect("the alarm");
    assert!(
        string_field(alarm, "reason").contains("identity key"),
        "{alarm}"
    );
}
