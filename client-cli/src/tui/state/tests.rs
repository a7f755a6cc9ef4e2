//! Tests of the chat screen's transitions, driven through the same calls
//! the event loop makes; no terminal, no network.

use super::conversations::MAX_MESSAGES_SHOWN;
use super::input::MAX_INPUT_CHARS;
use super::messages::{MAX_EARLY_REPORTS, OTHER_DEVICE};
use super::*;
use crate::output::{Delivery, Trust};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_line(state: &mut ChatState, text: &str) -> Option<Action> {
    for c in text.chars() {
        state.handle_key(key(KeyCode::Char(c)));
    }
    state.handle_key(key(KeyCode::Enter))
}

fn state_with(contacts: &[&str]) -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    for c in contacts {
        state.add_contact(c, Trust::Unverified);
    }
    state
}

#[test]
fn typing_and_enter_sends_to_the_open_conversation() {
    let mut state = state_with(&["bob"]);
    let action = type_line(&mut state, "hello bob");
    assert_eq!(
        action,
        Some(Action::Send {
            to: "bob".into(),
            local_id: "local-1".into(),
            body: "hello bob".into()
        })
    );
    assert!(state.input.is_empty());
    let message = &state.open().unwrap().messages[0];
    assert_eq!(
        message.direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Pending))
    );
}

#[test]
fn delivery_marks_advance_and_never_go_back() {
    let mut state = state_with(&["bob"]);
    type_line(&mut state, "hi");
    state.message_sent("bob", "local-1", "m1");
    state.receipt("bob", "m1", Delivery::Read);
    state.receipt("bob", "m1", Delivery::Delivered);
    assert_eq!(
        state.open().unwrap().messages[0].direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Read))
    );
}

#[test]
fn relay_acceptance_that_outruns_the_send_call_is_not_lost() {
    let mut state = state_with(&["bob"]);
    type_line(&mut state, "hi");
    state.receipt("bob", "m1", Delivery::Sent);
    state.message_queued("bob", "local-1", "m1");
    assert_eq!(
        state.open().unwrap().messages[0].direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Sent))
    );
}

#[test]
fn relay_refusal_marks_the_message_failed_for_good() {
    let mut state = state_with(&["bob"]);
    type_line(&mut state, "hi");
    state.message_queued("bob", "local-1", "m1");
    state.refused("bob", "m1", "queue full");
    state.receipt("bob", "m1", Delivery::Delivered);
    assert_eq!(
        state.open().unwrap().messages[0].direction,
        Direction::Outgoing(Outgoing::Failed(SafeText::line("queue full")))
    );
}

#[test]
fn early_reports_are_bounded() {
    let mut state = state_with(&["bob"]);
    for i in 0..(MAX_EARLY_REPORTS + 50) {
        state.receipt("bob", &format!("bogus-{i}"), Delivery::Read);
    }
    assert_eq!(state.early_reports.len(), MAX_EARLY_REPORTS);
}

#[test]
fn history_counts_unread_and_skips_duplicates() {
    let mut state = state_with(&[]);
    let message = ChatMessage {
        id: "h1".into(),
        direction: Direction::Incoming { read: false },
        at: NOW,
        body: SafeText::multiline("old"),
        from: None,
        about: Default::default(),
        file: None,
    };
    state.load_message("bob", message.clone());
    state.load_message("bob", message);
    assert_eq!(state.conversations[0].messages.len(), 1);
    assert_eq!(state.conversations[0].unread, 1);
}

#[test]
fn typing_indicator_clears_when_the_message_arrives() {
    let mut state = state_with(&["bob"]);
    state.typing("bob", true);
    assert!(state.open().unwrap().typing);
    state.receive_message("bob", "b1", "hi", NOW);
    assert!(!state.open().unwrap().typing);
}

#[test]
fn failed_send_keeps_the_text_and_shows_why() {
    let mut state = state_with(&["bob"]);
    type_line(&mut state, "hi");
    state.message_failed("bob", "local-1", "relay unreachable");
    let message = &state.open().unwrap().messages[0];
    assert_eq!(message.body.as_str(), "hi");
    assert_eq!(
        message.direction,
        Direction::Outgoing(Outgoing::Failed(SafeText::line("relay unreachable")))
    );
}

#[test]
fn messages_elsewhere_count_as_unread_until_opened() {
    let mut state = state_with(&["bob", "carol"]);
    assert_eq!(state.selected.as_deref(), Some("bob"));
    assert_eq!(state.receive_message("carol", "c1", "one", NOW), None);
    assert_eq!(state.receive_message("carol", "c2", "two", NOW), None);
    let carol = state.conversations.iter().find(|c| c.username == "carol");
    assert_eq!(carol.unwrap().unread, 2);
    let action = state.select("carol");
    assert_eq!(
        action,
        Some(Action::MarkRead {
            contact: "carol".into(),
            ids: vec!["c1".into(), "c2".into()]
        })
    );
    assert_eq!(state.open().unwrap().unread, 0);
}

#[test]
fn message_in_the_open_conversation_is_read_at_once() {
    let mut state = state_with(&["bob"]);
    // Opened on purpose, so the user is looking at it.
    state.select("bob");
    let action = state.receive_message("bob", "b1", "hi", NOW);
    assert_eq!(
        action,
        Some(Action::MarkRead {
            contact: "bob".into(),
            ids: vec!["b1".into()]
        })
    );
    assert_eq!(state.open().unwrap().unread, 0);
}

#[test]
fn duplicate_deliveries_are_shown_once() {
    let mut state = state_with(&["bob", "carol"]);
    state.receive_message("carol", "c1", "one", NOW);
    state.receive_message("carol", "c1", "one", NOW);
    let carol = state.conversations.iter().find(|c| c.username == "carol");
    assert_eq!(carol.unwrap().messages.len(), 1);
    assert_eq!(carol.unwrap().unread, 1);
}

#[test]
fn most_recent_conversation_is_listed_first() {
    let mut state = state_with(&["bob", "carol"]);
    state.receive_message("carol", "c1", "one", NOW);
    assert_eq!(state.conversations[0].username, "carol");
    // The open conversation stays open although its index moved.
    assert_eq!(state.selected.as_deref(), Some("bob"));
}

#[test]
fn key_change_blocks_sending_until_accepted_with_the_shown_number() {
    let mut state = state_with(&["bob"]);
    state.key_changed("bob", "11111 22222");
    assert_eq!(type_line(&mut state, "secret plan"), None);
    assert_eq!(state.input, "secret plan", "blocked text is kept");
    assert!(state.open().unwrap().messages.is_empty());
    assert_eq!(state.notice.as_ref().unwrap().severity, Severity::Error);

    assert_eq!(
        state.handle_key(ctrl('a')),
        Some(Action::AcceptKey {
            contact: "bob".into(),
            safety_number: "11111 22222".into()
        })
    );
    // Nothing is unblocked until the event loop confirms the acceptance.
    assert!(state.open().unwrap().sending_blocked());
    state.key_accepted("bob");
    assert!(matches!(
        state.handle_key(key(KeyCode::Enter)),
        Some(Action::Send { .. })
    ));
}

#[test]
fn a_replaced_connection_blocks_sending_and_keeps_its_status_line() {
    let mut state = state_with(&["bob"]);
    state.select("bob");
    state.connection_ended(
        Connection::Replaced,
        "another umbra for this account connected",
    );
    for wide in [true, false] {
        assert!(state.status_line(wide).unwrap().contains("another umbra"));
    }
    // Sending would reconnect and knock the other client off.
    assert_eq!(type_line(&mut state, "still there?"), None);
    assert_eq!(state.input, "still there?", "typed text is kept");
    state.set_notice(Severity::Info, "something else");
    assert!(state.status_line(true).is_some(), "notices do not hide it");
    // A fresh connection (after a restart of the client) clears it.
    state.set_connection(Connection::Online, None);
    assert_eq!(state.status_line(true), None);
}

#[test]
fn a_closed_connection_says_why() {
    let mut state = state_with(&["bob"]);
    state.connection_ended(Connection::Closed, "token revoked\x1b[2J");
    for wide in [true, false] {
        let line = state.status_line(wide).unwrap();
        assert!(line.contains("token revoked"), "{line}");
        assert!(!line.contains('\x1b'), "{line}");
    }
}

#[test]
fn ctrl_a_without_a_key_change_does_nothing() {
    let mut state = state_with(&["bob"]);
    assert_eq!(state.handle_key(ctrl('a')), None);
}

#[test]
fn open_command_starts_a_conversation() {
    let mut state = state_with(&[]);
    assert_eq!(type_line(&mut state, "hi"), None, "nobody to send to");
    state.input.clear();
    assert_eq!(type_line(&mut state, "/open dave"), None);
    assert_eq!(state.selected.as_deref(), Some("dave"));
    assert!(matches!(type_line(&mut state, "yo"), Some(Action::Send { to, .. }) if to == "dave"));
}

#[test]
fn arrows_cycle_through_conversations() {
    let mut state = state_with(&["bob", "carol", "dave"]);
    state.handle_key(key(KeyCode::Down));
    assert_eq!(state.selected.as_deref(), Some("carol"));
    state.handle_key(key(KeyCode::Up));
    state.handle_key(key(KeyCode::Up));
    assert_eq!(state.selected.as_deref(), Some("dave"));
}

#[test]
fn connection_problems_clear_when_the_link_is_back_but_other_notices_stay() {
    let mut state = state_with(&["bob"]);
    state.set_connection(Connection::Connecting, Some("relay connection lost"));
    assert!(state.notice.is_some());
    state.set_connection(Connection::Online, None);
    assert_eq!(state.notice, None);
    assert_eq!(state.connection, Connection::Online);

    state.set_notice(Severity::Error, "could not decrypt");
    state.set_connection(Connection::Online, None);
    assert!(state.notice.is_some());
}

#[test]
fn the_view_keeps_only_the_newest_messages() {
    let mut state = state_with(&["bob", "carol"]);
    for i in 0..(MAX_MESSAGES_SHOWN + 5) {
        state.receive_message("carol", &format!("c{i}"), "x", NOW);
    }
    let carol = state
        .conversations
        .iter()
        .find(|c| c.username == "carol")
        .unwrap();
    assert_eq!(carol.messages.len(), MAX_MESSAGES_SHOWN);
    assert_eq!(carol.messages[0].id, "c5");
    assert_eq!(
        carol.unread,
        MAX_MESSAGES_SHOWN + 5,
        "unread counts every message"
    );
}

#[test]
fn quit_keys() {
    let mut state = state_with(&[]);
    assert_eq!(state.handle_key(key(KeyCode::Esc)), Some(Action::Quit));
    assert_eq!(state.handle_key(ctrl('c')), Some(Action::Quit));
}

#[test]
fn pasted_controls_never_reach_the_input() {
    let mut state = state_with(&["bob"]);
    state.type_text("a\x1b[2Jb\nc");
    assert_eq!(state.input, "ab c");
}

#[test]
fn input_is_bounded() {
    let mut state = state_with(&["bob"]);
    state.type_text(&"x".repeat(MAX_INPUT_CHARS + 10));
    assert_eq!(state.input.text().chars().count(), MAX_INPUT_CHARS);
}

#[test]
fn ctrl_w_deletes_the_last_word() {
    let mut state = state_with(&["bob"]);
    state.type_text("one two three");
    state.handle_key(ctrl('w'));
    assert_eq!(state.input, "one two ");
}

#[test]
fn a_message_sent_from_another_device_is_ours_marked_and_shown_once() {
    let mut state = state_with(&["bob"]);
    // A receipt for it may come before the transcript.
    state.receipt("bob", "m1", Delivery::Delivered);
    state.sent_elsewhere("bob", "m1", "from the laptop\x1b[2J", NOW);
    state.sent_elsewhere("bob", "m1", "from the laptop", NOW);
    let conversation = state.open().unwrap();
    assert_eq!(conversation.messages.len(), 1, "shown once per id");
    let message = &conversation.messages[0];
    assert_eq!(
        message.direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Delivered))
    );
    assert_eq!(message.body.to_string(), "from the laptop");
    assert_eq!(
        message.from.as_ref().map(ToString::to_string).as_deref(),
        Some(OTHER_DEVICE)
    );
    assert_eq!(conversation.unread, 0, "our own message is not unread");
    assert!(!state.take_alert());
    // One to someone new on this screen opens its conversation.
    state.sent_elsewhere("carol", "m2", "hi carol", NOW);
    let carol = state.conversations.iter().find(|c| c.username == "carol");
    assert_eq!(
        carol.map(|c| (c.messages.len(), c.trust)),
        Some((1, Trust::Unverified))
    );
}
