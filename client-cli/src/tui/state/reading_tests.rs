//! Tests of when a conversation counts as read and when an arrival alerts,
//! driven through the calls the event loop makes (`key_at`, `settle`,
//! `set_focus`); no terminal, no network.

use super::reading::READ_DWELL;
use super::*;
use crate::output::Trust;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::macros::datetime;
use time::Duration;

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn mark_reads(actions: &[Action]) -> Vec<&Action> {
    actions
        .iter()
        .filter(|a| matches!(a, Action::MarkRead { .. }))
        .collect()
}

/// bob (open, looked at), carol with two unread, dave.
fn state() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    for c in ["bob", "carol", "dave"] {
        state.add_contact(c, Trust::Unverified);
    }
    state.select("bob");
    state.receive_message("carol", "c1", "one", NOW - ms(60_000));
    state.receive_message("carol", "c2", "two", NOW - ms(60_000));
    // Sorted by activity: carol, bob, dave.
    assert_eq!(state.conversations[0].username, "carol");
    state.take_alert();
    state
}

fn unread(state: &ChatState, name: &str) -> usize {
    state
        .conversations
        .iter()
        .find(|c| c.username == name)
        .unwrap()
        .unread
}

#[test]
fn passing_over_a_conversation_sends_no_read_receipt() {
    let mut state = state();
    // bob -> dave -> carol (wrapping) -> bob, quickly.
    let mut actions = state.key_at(key(KeyCode::Down), NOW);
    assert_eq!(state.selected.as_deref(), Some("dave"));
    actions.extend(state.key_at(key(KeyCode::Tab), NOW + ms(200)));
    assert_eq!(state.selected.as_deref(), Some("carol"));
    actions.extend(state.settle(NOW + ms(200) + READ_DWELL - ms(1)));
    actions.extend(state.key_at(key(KeyCode::Down), NOW + ms(200) + READ_DWELL - ms(1)));
    assert_eq!(state.selected.as_deref(), Some("bob"));
    actions.extend(state.settle(NOW + ms(10_000)));
    assert_eq!(mark_reads(&actions), Vec::<&Action>::new());
    assert_eq!(unread(&state, "carol"), 2);
    assert!(state
        .conversations
        .iter()
        .flat_map(|c| &c.messages)
        .all(|m| m.direction == Direction::Incoming { read: false }));
}

#[test]
fn dwelling_on_a_conversation_reads_it() {
    let mut state = state();
    state.key_at(key(KeyCode::Up), NOW);
    assert_eq!(state.selected.as_deref(), Some("carol"));
    // The event loop wakes up when the dwell ends.
    assert_eq!(state.read_due_at(), Some(NOW + READ_DWELL));
    assert_eq!(state.settle(NOW + READ_DWELL - ms(1)), None);
    assert_eq!(
        state.settle(NOW + READ_DWELL),
        Some(Action::MarkRead {
            contact: "carol".into(),
            ids: vec!["c1".into(), "c2".into()]
        })
    );
    assert_eq!(unread(&state, "carol"), 0);
    assert_eq!(state.read_due_at(), None);
    // Once looked at, a new message in it is read at once, and no alert.
    assert_eq!(
        state.receive_message("carol", "c3", "three", NOW + ms(2_000)),
        Some(Action::MarkRead {
            contact: "carol".into(),
            ids: vec!["c3".into()]
        })
    );
    assert!(!state.take_alert());
}

#[test]
fn a_key_pressed_in_a_conversation_reads_it_at_once() {
    let mut state = state();
    state.key_at(key(KeyCode::Up), NOW);
    let actions = state.key_at(key(KeyCode::Char('o')), NOW + ms(100));
    // Typing a letter also says we are typing (state::typing); not the point here.
    let actions: Vec<Action> = actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Typing { .. }))
        .collect();
    assert_eq!(
        actions,
        vec![Action::MarkRead {
            contact: "carol".into(),
            ids: vec!["c1".into(), "c2".into()]
        }]
    );
    assert_eq!(state.input.text(), "o");
}

#[test]
fn nothing_is_read_while_the_terminal_is_unfocused_or_help_hides_it() {
    let mut state = state();
    state.key_at(key(KeyCode::Up), NOW);
    state.set_focus(false, NOW + ms(100));
    assert_eq!(state.read_due_at(), None);
    assert_eq!(state.settle(NOW + ms(60_000)), None);
    // Back in focus, the dwell starts over.
    state.set_focus(true, NOW + ms(60_000));
    assert_eq!(state.settle(NOW + ms(60_000) + READ_DWELL - ms(1)), None);
    state.key_at(
        key(KeyCode::Char('?')),
        NOW + ms(60_000) + READ_DWELL - ms(1),
    );
    assert!(state.help.is_some());
    assert_eq!(state.settle(NOW + ms(120_000)), None);
    assert_eq!(unread(&state, "carol"), 2);
}

#[test]
fn an_arrival_nobody_sees_alerts_and_counts_in_the_title() {
    let mut state = state();
    assert_eq!(state.unread_total(), 2);
    // In another conversation: alert.
    state.receive_message("dave", "d1", "hey", NOW);
    assert!(state.take_alert());
    assert!(!state.take_alert(), "one bell per arrival");
    assert_eq!(state.unread_total(), 3);
    // A repeated delivery is not news.
    state.receive_message("dave", "d1", "hey", NOW);
    assert!(!state.take_alert());
    // In the open, looked-at conversation: no alert...
    state.receive_message("bob", "b1", "hi", NOW);
    assert!(!state.take_alert());
    // ...unless the terminal has lost focus; then it stays unread too.
    state.set_focus(false, NOW);
    assert_eq!(
        state.receive_message("bob", "b2", "still there?", NOW),
        None
    );
    assert!(state.take_alert());
    assert_eq!(unread(&state, "bob"), 1);
}

#[test]
fn a_sent_message_carries_the_time_of_the_key_press() {
    let mut state = state();
    // The redraw clock last ticked at NOW; Enter is pressed 19 s later.
    let typed_at = NOW + ms(19_000);
    for c in "hi".chars() {
        state.key_at(key(KeyCode::Char(c)), typed_at - ms(500));
    }
    let actions = state.key_at(key(KeyCode::Enter), typed_at);
    assert!(actions.iter().any(|a| matches!(a, Action::Send { .. })));
    let sent = state.open().unwrap().messages.last().unwrap();
    assert!(matches!(sent.direction, Direction::Outgoing(_)));
    assert_eq!(sent.at, typed_at);
}

#[test]
fn an_unseen_arrival_is_kept_for_a_notification_and_a_seen_one_is_not() {
    let mut state = state();
    state.take_alert_about();
    state.receive_message("dave", "d1", "see you\nat six", NOW);
    assert_eq!(
        state.take_alert_about(),
        Some(reading::Arrived {
            from: "dave".into(),
            group: None,
            body: "see you\nat six".into(),
        })
    );
    assert_eq!(state.take_alert_about(), None, "taken once");
    // One in the conversation being read alerts nobody.
    state.settle(NOW + READ_DWELL);
    state.receive_message("bob", "b1", "here", NOW + READ_DWELL);
    assert_eq!(state.take_alert_about(), None);
    // A group's names its member and the group.
    const TEAM: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    let members = [MemberInput {
        name: "dave",
        admin: true,
        me: false,
    }];
    state.set_group(TEAM, "team", &members, true);
    state.receive_group_message(TEAM, "dave", "g1", "lunch?", NOW);
    let arrived = state.take_alert_about().expect("an arrival");
    assert_eq!(
        (arrived.from.as_str(), arrived.group.as_deref()),
        ("dave", Some("team"))
    );
}
