//! `/delete-conversation`: it asks first and deletes only on `y`, is for
//! 1:1 conversations only, and a delete for everyone by the other side
//! empties the view as client-core erased the store.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::output::{Delivery, Trust};

const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);
const FAMILY: &str = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";

/// bob wrote twice; ours was delivered; a second of ours is still pending.
fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state.receive_message("bob", "b1", "first", NOW);
    run(&mut state, "mine");
    state.message_sent("bob", "local-1", "m1");
    state.receipt("bob", "m1", Delivery::Delivered);
    state.receive_message("bob", "b2", "second", NOW);
    run(&mut state, "not yet there");
    state
}

fn run(state: &mut ChatState, line: &str) -> Option<Action> {
    state.type_text(line);
    state.handle_key(KeyEvent::from(KeyCode::Enter))
}

fn key(state: &mut ChatState, c: char) -> Option<Action> {
    state.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn ids(state: &ChatState, key: &str) -> Vec<String> {
    state
        .conversations
        .iter()
        .find(|c| c.username == key)
        .map(|c| c.messages.iter().map(|m| m.id.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn delete_conversation_asks_first_and_deletes_only_on_y() {
    let mut state = chat();
    assert_eq!(run(&mut state, "/delete-conversation --everyone"), None);
    let asked = state.confirm.clone().expect("a question");
    assert_eq!(
        asked.question(),
        "delete for everyone the conversation with bob?"
    );
    assert!(state.input.is_empty(), "the command line is used up");
    // A paste cannot answer it, and nothing was deleted yet.
    state.paste("y");
    assert!(state.input.is_empty() && state.confirm.is_some());
    assert_eq!(ids(&state, "bob").len(), 4);
    assert_eq!(
        key(&mut state, 'y'),
        Some(Action::DeleteConversation {
            contact: "bob".into(),
            everyone: true
        })
    );
    assert_eq!(state.confirm, None);

    // Only here; any key but y keeps it, and says so.
    assert_eq!(run(&mut state, "/delete-conversation"), None);
    assert_eq!(
        state.confirm.as_ref().map(Confirm::question).as_deref(),
        Some("delete on this device the conversation with bob?")
    );
    assert_eq!(state.handle_key(KeyEvent::from(KeyCode::Esc)), None);
    assert_eq!(state.confirm, None);
    let notice = state.notice.as_ref().expect("a notice");
    assert_eq!(notice.text.as_str(), "kept the conversation with bob");
    assert_eq!(ids(&state, "bob").len(), 4, "nothing deleted");
    // Esc answered the question; it did not also quit.
    assert_eq!(run(&mut state, "/delete-conversation"), None);
    assert_eq!(
        key(&mut state, 'y'),
        Some(Action::DeleteConversation {
            contact: "bob".into(),
            everyone: false
        })
    );
}

#[test]
fn delete_conversation_wants_a_1to1_conversation_and_its_one_flag() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    assert_eq!(run(&mut state, "/delete-conversation"), None);
    assert!(state.confirm.is_none());
    let error = state.notice.as_ref().map(|n| n.text.to_string());
    assert_eq!(
        error.as_deref(),
        Some("no conversation open: type /open USERNAME first")
    );
    assert_eq!(
        state.input.text(),
        "/delete-conversation",
        "kept for fixing"
    );

    let mut state = chat();
    assert_eq!(run(&mut state, "/delete-conversation everyone"), None);
    assert!(state.confirm.is_none());
    let error = state.notice.as_ref().map(|n| n.text.to_string());
    assert_eq!(
        error.as_deref(),
        Some("usage: /delete-conversation [--everyone]")
    );

    let mut state = chat();
    state.set_group(
        FAMILY,
        "family",
        &[MemberInput {
            name: "alice",
            admin: true,
            me: true,
        }],
        true,
    );
    state.select(&group_key(FAMILY));
    assert_eq!(run(&mut state, "/delete-conversation --everyone"), None);
    assert!(state.confirm.is_none(), "no question for a group");
    assert!(state
        .notice
        .as_ref()
        .is_some_and(|n| n.text.as_str().contains("group")));
}

#[test]
fn a_delete_by_the_contact_empties_the_view_but_keeps_ours_it_had_not_got() {
    let mut state = chat();
    state.conversation_deleted("bob", true, 3, NOW);
    let bob = state.open().expect("still open");
    let shown: Vec<(&str, &str)> = bob
        .messages
        .iter()
        .map(|m| (m.id.as_str(), m.body.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            ("local-2", "not yet there"),
            (
                "erased-1",
                "bob deleted the conversation with you: 3 messages erased here"
            ),
        ]
    );
    assert_eq!(bob.messages[1].direction, Direction::Change);
    assert_eq!(bob.unread, 0);

    // Another device of ours erased everything.
    let mut state = chat();
    state.conversation_deleted("bob", false, 4, NOW);
    let bob = state.open().expect("still open");
    assert_eq!(bob.messages.len(), 1);
    assert_eq!(
        bob.messages[0].body.as_str(),
        "another device of yours deleted the conversation with bob: 4 messages erased here"
    );
}

#[test]
fn after_our_delete_the_view_is_what_the_store_kept() {
    let mut state = chat();
    state.conversation_reloaded("bob", Vec::new());
    assert!(state.open().expect("open").messages.is_empty());
    // Refused before erasing: the stored history comes back as it was.
    let mut state = chat();
    let kept = state.open().expect("open").messages[..1].to_vec();
    state.conversation_reloaded("bob", kept);
    assert_eq!(ids(&state, "bob"), ["b1"]);
}
