//! Nothing readable at rest: after a real conversation, neither the relay's
//! store (its data directory on SQLite, every table and column on
//! PostgreSQL) nor either client's data directory holds the message text, a
//! password, or (on the clients) the contact's username in readable form;
//! and nothing the relay or the clients printed holds a password (the relay
//! prints no message text or username either).
//!
//! The relay legitimately stores usernames (its account table), so contact
//! names are checked only in the client directories, and the relay's copy
//! is the positive control: each search must first find what is really
//! there (the usernames in the relay's store, SQLite's header in each client
//! store, the message text in the receiving client's own output, the relay's
//! start-up line in its output), so a search that can never hit cannot pass.
//!
//! Must never: narrow the search to the files it expects to be clean, or
//! treat a directory or file it cannot read as clean (the scan fails).

mod client_support;
mod relay_support;

use std::path::Path;

use client_support::{User, RELAY_ARGS};
use relay_support::StoreView;
use umbra_e2e::{any_file_contains, Relay, StoreKind};
use umbra_test_support::PgTestDb;

const CANARY: &str = "canary-7f3a9c";
// Distinctive enough that a chance match in ciphertext is negligible.
const ALICE_PASSWORD: &str = "alice-pw-Q8v3xK-canary";
const BOB_PASSWORD: &str = "bob-pw-Zr71Lm-canary";
const ALICE: &str = "alicecanary4d2e";
const BOB: &str = "bobcanary9c1b";
const SECRETS: [&str; 3] = [CANARY, ALICE_PASSWORD, BOB_PASSWORD];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_absent(dir: &Path, needle: &str, what: &str) {
    if let Some(file) = any_file_contains(dir, needle.as_bytes()) {
        panic!(
            "{what} ({needle:?}) is readable at rest in {}",
            file.display()
        );
    }
}

/// The two client data directories: no secret, no contact name; but the
/// scan does see each store's file (the SQLite header is plain bytes).
fn check_clients(alice: &User, bob: &User, when: &str) {
    for (user, contact) in [(alice, BOB), (bob, ALICE)] {
        let dir = user.cli.data_dir();
        let who = &user.name;
        assert!(
            any_file_contains(dir, b"SQLite format 3\0").is_some(),
            "the scan does not see {who}'s store in {}",
            dir.display()
        );
        for secret in SECRETS {
            assert_absent(dir, secret, &format!("secret in {who}'s data dir {when}"));
        }
        assert_absent(
            dir,
            contact,
            &format!("contact name in {who}'s data dir {when}"),
        );
    }
}

/// The relay's data directory (the whole store on SQLite): the usernames are
/// there, the secrets are not.
fn check_relay_dir(relay: &Relay, when: &str, holds_the_store: bool) {
    let dir = relay.data_dir();
    if holds_the_store {
        for name in [ALICE, BOB] {
            assert!(
                any_file_contains(dir, name.as_bytes()).is_some(),
                "the scan does not find {name}, which the relay stores, in {} {when}",
                dir.display()
            );
        }
    }
    for secret in SECRETS {
        assert_absent(dir, secret, &format!("secret in the relay dir {when}"));
    }
}

/// What the processes printed: no password anywhere, no message text or
/// username in the relay's output. Positive controls: the relay's output
/// was captured, and bob's `receive` printed the message text.
fn check_output(relay: &Relay, alice: &User, bob: &User) {
    let relay_out = relay.output();
    assert!(
        contains(&relay_out, "listening on"),
        "the relay's output was not captured"
    );
    for needle in SECRETS.into_iter().chain([ALICE, BOB]) {
        assert!(
            !contains(&relay_out, needle),
            "the relay printed {needle:?}:\n{}",
            String::from_utf8_lossy(&relay_out)
        );
    }
    assert!(
        contains(&bob.transcript(), CANARY),
        "bob's output was not captured (his receive printed the message)"
    );
    for user in [alice, bob] {
        let transcript = user.transcript();
        for password in [ALICE_PASSWORD, BOB_PASSWORD] {
            assert!(
                !contains(&transcript, password),
                "{}'s umbra printed a password",
                user.name
            );
        }
    }
}

/// Two users talk both ways; both stores then hold history, contacts and
/// sessions (`contacts`/`verify` read them back, so they are really written).
fn converse(relay: &Relay) -> (User, User) {
    let alice = User::register(relay, ALICE, ALICE_PASSWORD);
    let bob = User::register(relay, BOB, BOB_PASSWORD);
    alice.send(BOB, &format!("first {CANARY} from alice"));
    alice.send_stdin(BOB, &format!("second, via stdin: {CANARY}\n"));
    let got = bob.receive().messages;
    assert_eq!(got.len(), 2, "bob's inbox: {got:?}");
    assert!(got.iter().all(|m| m.body.contains(CANARY)));
    bob.send(ALICE, &format!("reply {CANARY} from bob"));
    let got = alice.receive().messages;
    assert_eq!(got.len(), 1, "alice's inbox: {got:?}");
    assert_eq!(alice.trust_in(BOB).as_deref(), Some("unverified"));
    assert_eq!(bob.trust_in(ALICE).as_deref(), Some("unverified"));
    (alice, bob)
}

/// The relay logs at debug level, so its output has something to search.
fn start_relay(store: StoreKind) -> Relay {
    Relay::start_logging(store, RELAY_ARGS, "debug")
}

#[test]
fn no_plaintext_password_or_contact_name_at_rest_on_sqlite() {
    let mut relay = start_relay(StoreKind::Sqlite);
    let (alice, bob) = converse(&relay);

    // While the relay runs its WAL may hold the newest pages; after a stop
    // they are checkpointed into the main file. Both states must be clean.
    check_relay_dir(&relay, "while the relay runs", true);
    check_clients(&alice, &bob, "while the relay runs");
    relay.stop();
    check_relay_dir(&relay, "after the relay stopped", true);
    check_clients(&alice, &bob, "after the relay stopped");
    check_output(&relay, &alice, &bob);
}

/// `table.column` entries of the relay's PostgreSQL store holding `needle`
/// (as a substring of bytes or text).
async fn store_hits(store: &StoreView, needle: &str) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            let hits = if column.is_bytes() {
                store.rows_with_bytes(&column, needle.as_bytes()).await?
            } else if column.is_text() {
                store.rows_with_text_containing(&column, needle).await?
            } else {
                0
            };
            if hits > 0 {
                found.push(format!("{}.{}", column.table, column.name));
            }
        }
    }
    Ok(found)
}

#[test]
fn no_plaintext_password_or_contact_name_at_rest_on_postgres() {
    let Some(db) = PgTestDb::create_blocking(concat!(
        module_path!(),
        "::no_plaintext_password_or_contact_name_at_rest_on_postgres"
    )) else {
        return;
    };
    let mut relay = start_relay(StoreKind::Postgres(db.url().to_string()));
    let (alice, bob) = converse(&relay);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(db.url())
            .await
            .expect("connect to the relay's database");
        let store = StoreView::Postgres(pool);
        for name in [ALICE, BOB] {
            let found = store_hits(&store, name).await.expect("scan the store");
            assert!(
                found.iter().any(|c| c == "accounts.username"),
                "the scan does not find {name} in accounts.username ({found:?})"
            );
        }
        for secret in SECRETS {
            let found = store_hits(&store, secret).await.expect("scan the store");
            assert!(
                found.is_empty(),
                "{secret:?} is readable in the relay's database at {found:?}"
            );
        }
        store.close().await;
    });

    check_relay_dir(&relay, "while the relay runs", false);
    check_clients(&alice, &bob, "while the relay runs");
    relay.stop();
    check_output(&relay, &alice, &bob);
}

#[test]
fn the_search_finds_what_is_there_and_refuses_what_it_cannot_read() {
    // Guards the suites above against a search that can never hit: the same
    // helper must find a canary that is plainly written.
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a").join("b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(nested.join("f.bin"), format!("xx{CANARY}yy")).expect("write");
    assert_eq!(
        any_file_contains(dir.path(), CANARY.as_bytes()),
        Some(nested.join("f.bin"))
    );
    assert_eq!(any_file_contains(dir.path(), b"not-there-5e1"), None);

    // A directory that does not exist is not clean, it is an error.
    let missing = dir.path().join("missing");
    assert!(umbra_e2e::scan_files(&missing, b"x").is_err());

    // Nor is an entry it cannot read: a socket (unreadable even for root),
    // and a directory without permissions (unless we are root, who may).
    let odd = tempfile::tempdir().expect("temp dir");
    let _socket = std::os::unix::net::UnixListener::bind(odd.path().join("sock")).expect("bind");
    let result = umbra_e2e::scan_files(odd.path(), CANARY.as_bytes());
    assert!(
        result.is_err(),
        "an unreadable socket was reported as {result:?}"
    );

    use std::os::unix::fs::PermissionsExt;
    let odd = tempfile::tempdir().expect("temp dir");
    let locked = odd.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::write(locked.join("secret"), CANARY).expect("write");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let readable_anyway = std::fs::read_dir(&locked).is_ok();
    let result = umbra_e2e::scan_files(odd.path(), CANARY.as_bytes());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    if !readable_anyway {
        assert!(
            result.is_err(),
            "an unreadable directory was reported as {result:?}"
        );
    }
}
