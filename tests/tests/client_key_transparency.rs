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
