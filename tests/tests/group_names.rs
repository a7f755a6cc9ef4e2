//! How group changes name people and the group, over the real `umbra` and
//! `umbra-relay` binaries: a removed member who never wrote in the group
//! and is no contact is still shown by its name (the one the group listed
//! it under before the change), not as an account id; a rename shows the
//! name before and after, in `--json` and in human output; and a group
//! created with `--members-may-rename` may be renamed by a member who is
//! no admin, while an admin-only group refuses it.
//!
//! Must never: reach into a store or the wire, or sleep in place of
//! waiting for a record.

mod client_support;
mod group_support;

use std::time::Instant;

use client_support::{exit, start_relay, User};
use group_support::{converge, roster, GroupCli, SETTLE};

fn register(relay: &umbra_e2e::Relay, names: &[&str]) -> Vec<User> {
    names
        .iter()
        .map(|n| User::register(relay, n, &format!("{n}'s group password")))
        .collect()
}

/// The `group_change` records of `records` with this `change`.
fn changes<'a>(records: &'a [serde_json::Value], change: &str) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|r| r["type"] == "group_change" && r["change"] == change)
        .collect()
}

#[test]
fn a_removed_member_is_named_and_a_rename_shows_both_names() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob", "carol"]);
    let [alice, bob, carol] = [&users[0], &users[1], &users[2]];
    alice.group_create("trio", &["bob", "carol"]);
    converge(
        &[alice, bob, carol],
        "the new group",
        |u| u.members("trio"),
        &Some(roster(&["alice"], &["bob", "carol"])),
    );
    // Carol never writes, so bob has no contact for her and no message of
    // hers: only the group's state before her removal knows her name.
    assert!(bob.contacts().iter().all(|(name, _)| name != "carol"));
    alice.group_ok(&["remove", "trio", "carol"]);
    alice.group_ok(&["rename", "trio", "duo"]);
    let seen = converge(
        &[bob],
        "the removal and the rename on bob",
        |u| u.members("duo"),
        &Some(roster(&["alice"], &["bob"])),
    );
    let removed = changes(&seen[0], "removed");
    assert_eq!(removed.len(), 1, "{:?}", seen[0]);
    assert_eq!(
        removed[0]["members"],
        serde_json::json!(["carol"]),
        "{}",
        removed[0]
    );
    assert_eq!(removed[0]["includes_me"], false);
    let renamed = changes(&seen[0], "renamed");
    assert_eq!(renamed.len(), 1, "{:?}", seen[0]);
    assert_eq!(renamed[0]["old_name"], "trio", "{}", renamed[0]);
    assert_eq!(renamed[0]["new_name"], "duo", "{}", renamed[0]);
    assert_eq!(renamed[0]["by"], "alice");
}

/// Runs `receive` (human output) for `user` until a line contains
/// `wanted`, or [`SETTLE`] passes.
fn human_line_with(user: &User, wanted: &str) -> String {
    let deadline = Instant::now() + SETTLE;
    let mut printed = String::new();
    loop {
        let args = ["receive", "--timeout", "5"];
        let out = user.run(&args);
        out.assert_success(&args);
        printed.push_str(&out.stdout);
        if let Some(line) = printed.lines().find(|l| l.contains(wanted)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{}: no line with {wanted:?} within {SETTLE:?}: {printed}",
            user.name
        );
    }
}

#[test]
fn a_member_renames_a_group_created_with_members_may_rename_and_not_an_admin_only_one() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob"]);
    let [alice, bob] = [&users[0], &users[1]];
    alice.group_ok(&["create", "club", "bob", "--members-may-rename"]);
    alice.group_create("board", &["bob"]);
    converge(
        &[alice, bob],
        "both groups",
        |u| (u.members("club"), u.members("board")),
        &(
            Some(roster(&["alice"], &["bob"])),
            Some(roster(&["alice"], &["bob"])),
        ),
    );
    // `group list` says which is which, on both sides.
    for user in [alice, bob] {
        let rows = user.group_ok(&["list"]);
        let policy = |name: &str| {
            rows.iter()
                .find(|r| r["type"] == "group" && r["name"] == name)
                .map(|r| r["members_may_rename"].clone())
        };
        assert_eq!(policy("club"), Some(serde_json::json!(true)), "{rows:?}");
        assert_eq!(policy("board"), Some(serde_json::json!(false)), "{rows:?}");
    }
    // Bob is no admin of either: the admin-only group refuses him (exit 1,
    // nothing changes), the other takes his rename.
    let out = bob.group_run(&["rename", "board", "bob's board"]);
    assert_eq!(out.code, Some(exit::USER_ERROR), "{out:?}");
    assert!(out.stderr.contains("admin"), "{}", out.stderr);
    let done = bob.group_ok(&["rename", "club", "bob's club"]);
    assert!(
        done.iter()
            .any(|r| r["type"] == "done" && r["action"] == "group_rename"),
        "{done:?}"
    );
    // Alice sees it, in words, with both names.
    let line = human_line_with(alice, "renamed the group");
    assert!(
        line.ends_with("bob renamed the group from club to bob's club"),
        "{line}"
    );
    assert!(line.contains("[bob's club]"), "{line}");
    converge(
        &[alice, bob],
        "one name for each group",
        |u| {
            let mut names: Vec<String> = u.groups().into_iter().map(|g| g.name).collect();
            names.sort();
            names
        },
        &vec!["board".to_string(), "bob's club".to_string()],
    );
}
