//! A group message that reaches a client while another command holds its
//! connection (here `group send`) is stored then and printed by the next
//! `receive`, as docs/CLI.md promises for 1:1 messages ("first those stored
//! while another command (send) was connected").
//!
//! Must never: let the users read before they speak (that is what the
//! other group suites do, and what would hide the loss this one checks).

mod client_support;
mod group_support;

use client_support::{start_relay, User};
use group_support::{converge, group_id, has_group_message, receive_until, roster, GroupCli};

#[test]
fn a_group_message_that_arrives_during_a_group_send_is_printed_by_the_next_receive() {
    // docs/CLI.md: `receive` prints "first those stored while another
    // command (send) was connected". bob's `group send` connects while
    // alice's group message waits for him; his client stores it then.
    let relay = start_relay();
    let alice = &User::register(&relay, "alice", "alice's group password");
    let bob = &User::register(&relay, "bob", "bob's group password");
    alice.group_create("pair", &["bob"]);
    converge(
        &[alice, bob],
        "the new group",
        |u| u.members("pair"),
        &Some(roster(&["alice"], &["bob"])),
    );
    let id = group_id(alice, "pair");
    alice.group_send("pair", "waiting for bob");
    bob.group_send("pair", "bob speaks before reading");
    receive_until(&[alice, bob], "each other's message", |me, r| {
        if me.name == "alice" {
            has_group_message(r, "bob", "bob speaks before reading", &id)
        } else {
            has_group_message(r, "alice", "waiting for bob", &id)
        }
    });
}
