//! Groups per device over the real `umbra` and `umbra-relay` binaries
//! (docs/PROTOCOL.md §8.14, §15.3): alice has two devices (the second
//! linked with `umbra link` / `link-accept` after the group was made, so it
//! holds the group from the link's snapshot), bob and alice share a group.
//! Bob's group message shows on both of alice's devices, each opening it
//! with its own copy of his sender key (from his second send after the
//! link: a one-shot `group send` fetches the member lists once it has
//! connected, after the first), and a group message from alice's
//! second device, under that device's own sender key, shows at bob as
//! alice's.
//!
//! Must never: reach into a store or the wire (this suite judges what a
//! user sees through the CLI), or sleep in place of waiting for a record.

mod client_support;
mod devices_support;
mod group_support;

use client_support::{start_relay, User};
use devices_support::link;
use group_support::{converge, group_id, has_group_message, receive_until, roster, GroupCli};

#[test]
fn a_group_reaches_both_devices_of_a_member_and_hears_from_the_second() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's group password");
    let bob = User::register(&relay, "bob", "bob's group password");
    alice.group_create("team", &["bob"]);
    converge(
        &[&alice, &bob],
        "the new group on both members",
        |u| u.members("team"),
        &Some(roster(&["alice"], &["bob"])),
    );
    let id = group_id(&alice, "team");

    // The laptop: linked after the group was made, it has it too.
    let laptop = link(&relay, &alice);
    assert_eq!(group_id(&laptop, "team"), id, "the laptop holds the group");

    // Bob's first send after the link starts with no connection, so it
    // goes out on the list he held (the desktop alone) and fetches alice's
    // list once it is connected (§15.3 rule 1)...
    bob.group_send("team", "first after the link");
    receive_until(&[&alice], "bob's first message on the desktop", |_, r| {
        has_group_message(r, "bob", "first after the link", &id)
    });
    // ...so his next message reaches both of alice's devices.
    bob.group_send("team", "from bob to both");
    let seen = receive_until(
        &[&alice, &laptop],
        "bob's message on both devices",
        |_, r| has_group_message(r, "bob", "from bob to both", &id),
    );
    for (device, records) in ["desktop", "laptop"].iter().zip(&seen) {
        let count = records
            .iter()
            .filter_map(group_support::group_message_of)
            .filter(|m| m.body == "from bob to both")
            .count();
        assert_eq!(
            count, 1,
            "alice's {device} shows bob's message once: {records:?}"
        );
    }

    // The laptop speaks in the group under its own sender key; bob reads it
    // as alice's.
    laptop.group_send("team", "from alice's laptop");
    receive_until(&[&bob], "the laptop's message at bob", |_, r| {
        has_group_message(r, "alice", "from alice's laptop", &id)
    });
    // The desktop keeps its own key: its message reaches bob as well.
    alice.group_send("team", "from alice's desktop");
    receive_until(&[&bob], "the desktop's message at bob", |_, r| {
        has_group_message(r, "alice", "from alice's desktop", &id)
    });
}
