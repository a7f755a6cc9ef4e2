//! An account logged in from a second data directory, over real `umbra`
//! processes (docs/CLI.md `login --new-identity`, docs/PROTOCOL.md §12.12): the login ends
//! the first directory's session, so that directory fails with a clear
//! message (exit 6) instead of receiving and acknowledging messages it can
//! no longer be sent; the relay keeps what was queued for the new one; and
//! contacts see the key change.
//!
//! Must never: let the old directory's failure pass as any exit-6 failure
//! (the message is checked), or pass without proving the queued message was
//! still on the relay after the old directory's attempt.

mod client_support;

use client_support::{exit, start_relay, User, RECEIVE_TIMEOUT, SEND_TIMEOUT};

#[test]
fn a_login_from_a_new_data_dir_ends_the_old_one_without_losing_what_was_queued() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let dave_a = User::register(&relay, "dave", "dave's password");
    alice.send("dave", "first");
    assert_eq!(dave_a.receive().messages.len(), 1);
    // Queued for dave's device, sealed to the identity of data dir A.
    alice.send("dave", "queued before the move");

    let dave_b = User::unregistered(&relay, "dave", "dave's password");
    // A new identity, not a restore (client_restore.rs has that): the
    // queued envelope is sealed to an identity data dir B never holds.
    let login = dave_b.json_ok(&["login", "dave", "--new-identity"]);

    // Data dir A: a clear, distinct failure, and nothing received.
    let args = ["receive", "--json", "--timeout", RECEIVE_TIMEOUT];
    let line = dave_a.run(&args).assert_failure(exit::AUTH, &args);
    assert!(
        line.contains("this account is now used from another data dir"),
        "old data dir got an unclear error: {line}"
    );
    let args = [
        "send",
        "alice",
        "from the old dir",
        "--timeout",
        SEND_TIMEOUT,
    ];
    let line = dave_a.run(&args).assert_failure(exit::AUTH, &args);
    assert!(line.contains("now used from another data dir"), "{line}");

    // The envelope A did not take is still queued: B gets it (its login's
    // connection already may), cannot open it (it is sealed to A's
    // identity), and says so rather than dropping it.
    let inbox = dave_b.receive();
    assert!(inbox.messages.is_empty(), "{:?}", inbox.records);
    let reported = login
        .iter()
        .chain(&inbox.records)
        .filter(|r| r["type"] == "decryption_failed")
        .count();
    assert!(
        reported >= 1,
        "the message queued before the move was not reported by the new data dir: \
         login {login:?}, receive {:?}",
        inbox.records
    );

    // alice's client notices dave's new identity before sending to it.
    let args = ["send", "dave", "after the move", "--timeout", SEND_TIMEOUT];
    let out = alice.run(&args);
    assert_eq!(
        out.code,
        Some(exit::UNTRUSTED_KEY),
        "sending to dave's new identity without a key-change warning: {out:?}"
    );
    assert_eq!(alice.trust_in("dave").as_deref(), Some("changed"));
}
