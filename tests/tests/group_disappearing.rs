//! Disappearing messages in groups through the real `umbra` binary and a
//! real relay (issue 13): a member who is no admin sets the group's timer
//! with `disappearing --group`; every member's `receive --json` shows who
//! set it, and a group message sent under it is gone from every member's
//! store (`search` reads the store) once the timer ran out, while one sent
//! before the timer stays.

mod client_support;
mod group_support;

use std::time::{Duration, Instant};

use client_support::{start_relay, string_field, User};
use group_support::{GroupCli, SETTLE};
use serde_json::Value;

/// The bodies `search TEXT` finds in `user`'s store.
fn found(user: &User, text: &str) -> Vec<String> {
    user.json_ok(&["search", text])
        .iter()
        .map(|r| string_field(r, "body"))
        .collect()
}

#[test]
fn a_members_group_timer_deletes_what_is_sent_under_it_from_every_store() {
    let relay = start_relay();
    let [alice, bob, carol] = ["alice", "bob", "carol"]
        .map(|n| User::register(&relay, n, &format!("{n}'s group password")));
    alice.group_create("team", &["bob", "carol"]);
    alice.group_send("team", "before the timer");
    for member in [&bob, &carol] {
        member.receive_records();
    }

    let records = bob.json_ok(&["disappearing", "--group", "team", "2s", "--timeout", "20"]);
    let done: Vec<&Value> = records.iter().filter(|r| r["type"] == "done").collect();
    assert_eq!(done.len(), 1, "{records:?}");
    assert_eq!(done[0]["group"]["name"], "team");
    assert!(
        !records.iter().any(|r| r["type"] == "send_failed"),
        "{records:?}"
    );
    for member in [&alice, &carol] {
        let got = member.receive_records();
        let timers: Vec<(String, u64)> = got
            .iter()
            .filter(|r| r["type"] == "group_disappearing_timer")
            .map(|r| {
                (
                    string_field(r, "by"),
                    r["seconds"].as_u64().expect("seconds"),
                )
            })
            .collect();
        assert_eq!(timers, [("bob".to_owned(), 2)], "{}: {got:?}", member.name);
    }

    alice.group_send("team", "vanishing words");
    for member in [&bob, &carol] {
        let got = member.receive_records();
        assert!(
            got.iter().any(|r| r["body"] == "vanishing words"),
            "{}: {got:?}",
            member.name
        );
    }
    // Each umbra run sweeps what expired when it opens the store: poll
    // until the message is gone everywhere, within a bound.
    let deadline = Instant::now() + SETTLE;
    for member in [&alice, &bob, &carol] {
        while !found(member, "vanishing").is_empty() {
            assert!(
                Instant::now() < deadline,
                "{}: the message outlived its timer",
                member.name
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(
            found(member, "before"),
            ["before the timer"],
            "{}",
            member.name
        );
    }
}
