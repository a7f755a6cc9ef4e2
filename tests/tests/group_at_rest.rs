//! A group's name, id, members and messages are never readable at rest:
//! after a real group conversation over the binaries (create, messages both
//! ways, a member added and one removed, a rename), neither the relay's
//! store (every file of its data directory on SQLite, `-wal` included while
//! it runs; every table and column on PostgreSQL) nor any client's data
//! directory holds the canary group names, the canary message text or the
//! group id; and no client's directory holds a member's username.
//!
//! Each search is first shown to hit what is really there (the usernames
//! the relay stores, SQLite's header in each client store, the canary text
//! in the receivers' own output), so a search that can never hit cannot
//! pass.
//!
//! Must never: narrow the search to files expected to be clean, or treat a
//! directory or file it cannot read as clean (the scan fails).

mod client_support;
mod group_support;
mod relay_support;

use client_support::{User, RELAY_ARGS};
use group_support::{converge, group_id, roster, GroupCli, Transcript};
use relay_support::StoreView;
use umbra_e2e::{any_file_contains, Relay, StoreKind};
use umbra_test_support::PgTestDb;

const GROUP_NAME: &str = "grpcanary5e91d2";
const RENAMED: &str = "grpcanary2b4c77";
const TEXT: &str = "msgcanary-3b7f0a";
const NAMES: [&str; 4] = ["alicegrp7c1e", "bobgrp94d3", "carolgrp1a6f", "davegrp5b20"];

/// Every canary as bytes, the group id (raw and hex) included.
fn canaries(group_id_hex: &str) -> Vec<(String, Vec<u8>)> {
    let raw: Vec<u8> = (0..group_id_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&group_id_hex[i..i + 2], 16).expect("hex group id"))
        .collect();
    vec![
        ("the group name".into(), GROUP_NAME.as_bytes().to_vec()),
        ("the new group name".into(), RENAMED.as_bytes().to_vec()),
        ("the message text".into(), TEXT.as_bytes().to_vec()),
        ("the group id".into(), raw),
        (
            "the group id in hex".into(),
            group_id_hex.as_bytes().to_vec(),
        ),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Create, talk both ways, add dave, remove carol, rename: every group
/// record a client keeps is written. Returns the users and the group id.
fn converse(relay: &Relay) -> (Vec<User>, String) {
    let users: Vec<User> = NAMES
        .iter()
        .map(|n| User::register(relay, n, &format!("{n} password")))
        .collect();
    let [alice, bob, carol, dave] = [&users[0], &users[1], &users[2], &users[3]];
    alice.group_create(GROUP_NAME, &[NAMES[1], NAMES[2]]);
    converge(
        &[alice, bob, carol],
        "the canary group",
        |u| u.members(GROUP_NAME),
        &Some(roster(&[NAMES[0]], &[NAMES[1], NAMES[2]])),
    );
    let id = group_id(alice, GROUP_NAME);
    let mut chat = Transcript::new(&[alice, bob, carol]);
    chat.say(alice, GROUP_NAME, &format!("{TEXT} from {}", NAMES[0]));
    chat.say(bob, GROUP_NAME, &format!("{TEXT} from {}", NAMES[1]));
    chat.until("the canary messages", |me, r| {
        let others: Vec<&str> = [NAMES[0], NAMES[1]]
            .into_iter()
            .filter(|n| *n != me.name)
            .collect();
        others
            .iter()
            .all(|n| group_support::has_group_message(r, n, &format!("{TEXT} from {n}"), &id))
    });
    alice.group_ok(&["add", GROUP_NAME, NAMES[3]]);
    alice.group_ok(&["remove", GROUP_NAME, NAMES[2]]);
    alice.group_ok(&["rename", GROUP_NAME, RENAMED]);
    converge(
        &[alice, bob, dave],
        "the changes",
        |u| u.members(RENAMED),
        &Some(roster(&[NAMES[0]], &[NAMES[1], NAMES[3]])),
    );
    let mut chat = Transcript::new(&[alice, bob, dave]);
    chat.say(dave, RENAMED, &format!("{TEXT} from {}", NAMES[3]));
    chat.until("dave's canary message", |me, r| {
        me.name == NAMES[3]
            || group_support::has_group_message(
                r,
                NAMES[3],
                &format!("{TEXT} from {}", NAMES[3]),
                &id,
            )
    });
    // carol processes her removal too, so her store holds its aftermath.
    let _ = carol.receive_records();
    (users, id)
}

fn check_clients(users: &[User], id: &str, when: &str) {
    for user in users {
        let dir = user.cli.data_dir();
        assert!(
            any_file_contains(dir, b"SQLite format 3\0").is_some(),
            "the scan does not see {}'s store in {}",
            user.name,
            dir.display()
        );
        for (what, bytes) in canaries(id) {
            if let Some(file) = any_file_contains(dir, &bytes) {
                panic!(
                    "{what} is readable in {}'s data dir {when}: {}",
                    user.name,
                    file.display()
                );
            }
        }
        for name in NAMES.iter().filter(|n| **n != user.name) {
            if let Some(file) = any_file_contains(dir, name.as_bytes()) {
                panic!(
                    "member {name} is readable in {}'s data dir {when}: {}",
                    user.name,
                    file.display()
                );
            }
        }
    }
}

fn check_relay_dir(relay: &Relay, id: &str, when: &str, holds_the_store: bool) {
    let dir = relay.data_dir();
    if holds_the_store {
        assert!(
            any_file_contains(dir, NAMES[0].as_bytes()).is_some(),
            "the scan does not find {}, which the relay stores, in {} {when}",
            NAMES[0],
            dir.display()
        );
    }
    for (what, bytes) in canaries(id) {
        if let Some(file) = any_file_contains(dir, &bytes) {
            panic!(
                "{what} is readable in the relay's data dir {when}: {}",
                file.display()
            );
        }
    }
}

/// The receivers really printed the canaries (the text reached them), so
/// the absence above is not that of something never sent.
fn check_positive_controls(users: &[User]) {
    for user in &users[..2] {
        let out = user.transcript();
        assert!(
            contains(&out, TEXT.as_bytes()),
            "{} never printed the canary text",
            user.name
        );
        assert!(
            contains(&out, RENAMED.as_bytes()),
            "{} never printed the group name",
            user.name
        );
    }
}

#[test]
fn no_group_name_member_or_message_readable_at_rest_on_sqlite() {
    let mut relay = Relay::start_with(StoreKind::Sqlite, RELAY_ARGS);
    let (users, id) = converse(&relay);
    check_relay_dir(&relay, &id, "while the relay runs", true);
    check_clients(&users, &id, "while the relay runs");
    relay.stop();
    check_relay_dir(&relay, &id, "after the relay stopped", true);
    check_clients(&users, &id, "after the relay stopped");
    check_positive_controls(&users);
}

/// `table.column` entries of the relay's PostgreSQL store holding `needle`.
async fn store_hits(store: &StoreView, needle: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            let hits = if column.is_bytes() {
                store.rows_with_bytes(&column, needle).await?
            } else if column.is_text() {
                match std::str::from_utf8(needle) {
                    Ok(text) => store.rows_with_text_containing(&column, text).await?,
                    // Raw bytes that are not UTF-8 cannot sit in a text column.
                    Err(_) => 0,
                }
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
fn no_group_name_member_or_message_readable_at_rest_on_postgres() {
    let Some(db) = PgTestDb::create_blocking(concat!(
        module_path!(),
        "::no_group_name_member_or_message_readable_at_rest_on_postgres"
    )) else {
        return;
    };
    let mut relay = Relay::start_with(StoreKind::Postgres(db.url().to_string()), RELAY_ARGS);
    let (users, id) = converse(&relay);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(db.url())
            .await
            .expect("connect to the relay's database");
        let store = StoreView::Postgres(pool);
        let found = store_hits(&store, NAMES[0].as_bytes()).await.expect("scan");
        assert!(
            found.iter().any(|c| c == "accounts.username"),
            "the scan does not find {} in accounts.username ({found:?})",
            NAMES[0]
        );
        for (what, bytes) in canaries(&id) {
            let found = store_hits(&store, &bytes).await.expect("scan the store");
            assert!(
                found.is_empty(),
                "{what} is readable in the relay's database at {found:?}"
            );
        }
        store.close().await;
    });
    check_relay_dir(&relay, &id, "while the relay runs", false);
    check_clients(&users, &id, "while the relay runs");
    relay.stop();
    check_positive_controls(&users);
}
