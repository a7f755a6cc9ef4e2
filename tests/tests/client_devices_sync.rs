//! Several devices of one account through the real binaries and a real
//! relay (docs/PROTOCOL.md §15.3, §15.8): a contact's message reaches both
//! of alice's devices; what alice sends from one device (a text, then an
//! edit and a reaction of it) shows on the other as sent by her, with the
//! same message id (and `receive` prints it as `sent_elsewhere`), and the copy is answered with no delivery receipt to
//! the contact; after alice removes a device, the contact's next message
//! is queued for her remaining device only.
//!
//! Must never: pass on output it did not check (every record's fields are
//! read), or reach into a client's store (only the relay's queue is
//! counted, as its operator could).

mod client_support;
mod devices_support;

use client_support::{start_relay, User, SEND_TIMEOUT};
use devices_support::{account_of, found, link, queued, relay_db};
use serde_json::Value;

/// The one `found` record of `text` on `user`'s device.
fn only_found(user: &User, text: &str) -> Value {
    let hits = found(user, text);
    assert_eq!(hits.len(), 1, "{} search {text:?}: {hits:?}", user.name);
    hits.into_iter().next().expect("one hit")
}

/// Receipt records (`delivered`, `read`) that name `id` among `records`.
fn receipts_naming(records: &[Value], id: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r.to_string().contains(id) && r["type"] != "message")
        .cloned()
        .collect()
}

#[test]
fn a_contacts_message_reaches_both_devices_and_what_one_sends_shows_on_the_other() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let bob = User::register(&relay, "bob", "bob's password, long enough");
    alice.send("bob", "before the laptop");
    assert_eq!(bob.receive().messages.len(), 1);
    let laptop = link(&relay, &alice);

    // A contact's message reaches both devices.
    bob.send("alice", "to both of you");
    for device in [&alice, &laptop] {
        let got = device.receive().messages;
        assert_eq!(got.len(), 1, "{}: {got:?}", device.name);
        assert_eq!(got[0].from, "bob");
        assert_eq!(got[0].body, "to both of you");
    }

    // Sent from the desktop, shown on the laptop as alice's, same id.
    let id = alice.send("bob", "sent from the desktop");
    let inbox = laptop.receive();
    assert!(
        inbox.messages.is_empty(),
        "a copy of our own message is no incoming message: {:?}",
        inbox.messages
    );
    // It is shown as ours, sent from another device.
    let shown = inbox.of_type("sent_elsewhere");
    assert_eq!(shown.len(), 1, "{:?}", inbox.records);
    assert_eq!(shown[0]["to"], "bob", "{}", shown[0]);
    assert_eq!(shown[0]["id"], id.as_str(), "{}", shown[0]);
    assert_eq!(shown[0]["body"], "sent from the desktop", "{}", shown[0]);
    let hit = only_found(&laptop, "sent from the desktop");
    assert_eq!(hit["direction"], "outgoing", "{hit}");
    assert_eq!(hit["conversation"], "bob", "{hit}");
    assert_eq!(hit["from"], "alice", "{hit}");
    assert_eq!(hit["id"], id.as_str(), "{hit}");
    let got = bob.receive();
    assert_eq!(got.messages.len(), 1, "{:?}", got.messages);
    assert_eq!(got.messages[0].id, id);
    // Only the desktop's own upkeep reaches bob: the laptop's copy is
    // answered with no receipt to him.
    assert!(
        receipts_naming(&got.records, &id).is_empty(),
        "{:?}",
        got.records
    );

    // An edit and a reaction made on the desktop apply on the laptop to
    // the same message.
    let args = [
        "--json",
        "edit",
        "bob",
        &id,
        "edited on the desktop",
        "--timeout",
        SEND_TIMEOUT,
    ];
    alice.run(&args).assert_success(&args);
    let args = [
        "--json",
        "react",
        "bob",
        &id,
        "👍",
        "--timeout",
        SEND_TIMEOUT,
    ];
    alice.run(&args).assert_success(&args);
    let changes = laptop.receive();
    let changed: Vec<&Value> = changes.of_type("message_changed");
    assert_eq!(changed.len(), 2, "{:?}", changes.records);
    for change in &changed {
        assert_eq!(change["target"], id.as_str(), "{change}");
        assert_eq!(change["from"], "alice", "{change}");
    }
    assert_eq!(changed[0]["change"], "edited");
    assert_eq!(changed[1]["change"], "reacted");
    let hit = only_found(&laptop, "edited on the desktop");
    assert_eq!(hit["id"], id.as_str(), "{hit}");
    assert_eq!(hit["direction"], "outgoing", "{hit}");
    assert!(found(&laptop, "sent from the desktop").is_empty());
    let got = bob.receive();
    assert_eq!(got.of_type("message_changed").len(), 2, "{:?}", got.records);

    // And the other way: the laptop's message shows on the desktop.
    let id = laptop.send("bob", "sent from the laptop");
    let inbox = alice.receive();
    let shown = inbox.of_type("sent_elsewhere");
    assert_eq!(shown.len(), 1, "{:?}", inbox.records);
    assert_eq!(shown[0]["id"], id.as_str(), "{}", shown[0]);
    let hit = only_found(&alice, "sent from the laptop");
    assert_eq!(hit["direction"], "outgoing", "{hit}");
    assert_eq!(hit["id"], id.as_str(), "{hit}");
    assert_eq!(bob.receive().messages[0].id, id);
}

#[test]
fn a_removed_device_is_no_longer_written_to() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let bob = User::register(&relay, "bob", "bob's password, long enough");
    alice.send("bob", "hello");
    bob.receive();
    let _laptop = link(&relay, &alice);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(relay_db(&relay));
    let account = runtime.block_on(account_of(&db, "alice"));

    // Positive control: while listed, the laptop's queue gets bob's message.
    bob.send("alice", "to both");
    assert_eq!(runtime.block_on(queued(&db, &account, 1)), 1);
    assert_eq!(runtime.block_on(queued(&db, &account, 2)), 1);
    alice.receive();

    let args = ["devices", "remove", "2"];
    alice.run(&args).assert_success(&args);
    // The relay dropped the removed device's queue with it.
    assert_eq!(runtime.block_on(queued(&db, &account, 2)), 0);
    bob.send("alice", "to the desktop only");
    assert_eq!(runtime.block_on(queued(&db, &account, 1)), 1);
    assert_eq!(runtime.block_on(queued(&db, &account, 2)), 0);
    let got = alice.receive().messages;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body, "to the desktop only");
    // And alice's own sends make no copy for the removed device.
    alice.send("bob", "after the removal");
    assert_eq!(runtime.block_on(queued(&db, &account, 2)), 0);
}
