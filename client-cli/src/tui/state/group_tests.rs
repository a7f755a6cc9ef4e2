//! Tests of the group conversations' transitions: where group messages
//! land, what a change shows, and that nothing leaves for a group we are
//! no longer in.

use super::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);
const FAMILY: &str = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";

fn type_line(state: &mut ChatState, text: &str) -> Option<Action> {
    for c in text.chars() {
        state.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    state.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
}

fn member<'a>(name: &'a str, admin: bool, me: bool) -> MemberInput<'a> {
    MemberInput { name, admin, me }
}

/// alice in "family" with bob and carol, and a 1:1 chat with bob.
fn state() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.add_contact("bob", crate::output::Trust::Unverified);
    state.set_group(
        FAMILY,
        "family",
        &[
            member("carol", false, false),
            member("alice", true, true),
            member("bob", false, false),
        ],
        true,
    );
    state
}

#[test]
fn a_group_is_its_own_conversation_next_to_the_contact() {
    let mut state = state();
    let key = group_key(FAMILY);
    assert_eq!(group_id_of(&key), Some(FAMILY));
    assert_eq!(group_id_of("bob"), None);
    state.receive_group_message(FAMILY, "bob", "g1", "hi all", NOW);
    state.receive_message("bob", "b1", "hi alice", NOW);
    let group = state
        .conversations
        .iter()
        .find(|c| c.username == key)
        .unwrap();
    assert_eq!(group.messages.len(), 1);
    assert_eq!(group.messages[0].from.as_ref().unwrap().as_str(), "bob");
    let bob = state
        .conversations
        .iter()
        .find(|c| c.username == "bob")
        .unwrap();
    assert_eq!(bob.messages.len(), 1, "bob's 1:1 message stays in his chat");
    // Admins first, then by name.
    let panel = state.find_group(FAMILY).unwrap();
    let names: Vec<&str> = panel.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
}

#[test]
fn typing_in_an_open_group_sends_to_the_group() {
    let mut state = state();
    state.select(&group_key(FAMILY));
    let action = type_line(&mut state, "dinner at 8?");
    assert_eq!(
        action,
        Some(Action::Send {
            to: group_key(FAMILY),
            local_id: "local-1".into(),
            body: "dinner at 8?".into()
        })
    );
    state.message_queued(&group_key(FAMILY), "local-1", "m1");
    state.receipt(&group_key(FAMILY), "m1", crate::output::Delivery::Sent);
    // A member's receipt arrives under the member's name, pairwise.
    state.receipt("carol", "m1", crate::output::Delivery::Read);
    assert_eq!(
        state.open().unwrap().messages[0].direction,
        Direction::Outgoing(Outgoing::Progress(crate::output::Delivery::Read))
    );
}

#[test]
fn open_finds_a_group_by_the_name_it_is_shown_under() {
    let mut state = state();
    type_line(&mut state, "/open family");
    assert_eq!(state.selected.as_deref(), Some(group_key(FAMILY).as_str()));
    type_line(&mut state, "/open bob");
    assert_eq!(state.selected.as_deref(), Some("bob"));
}

#[test]
fn changes_show_inline_once_and_an_exit_blocks_sending() {
    let mut state = state();
    state.select(&group_key(FAMILY));
    state.group_change(FAMILY, "alice added dave", NOW);
    state.group_change(FAMILY, "alice added dave", NOW);
    let messages = &state.open().unwrap().messages;
    assert_eq!(
        messages.len(),
        1,
        "the same change reported twice shows once"
    );
    assert_eq!(messages[0].direction, Direction::Change);
    assert_eq!(state.open().unwrap().unread, 0, "a change is not a message");

    state.group_change(FAMILY, "bob removed you (alice)", NOW);
    state.set_group(FAMILY, "family", &[member("bob", true, false)], false);
    assert!(state.open().unwrap().sending_blocked());
    state.type_text("still there?");
    assert_eq!(
        state.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        None
    );
    assert_eq!(state.input, "still there?", "the typed text is kept");
    assert!(state
        .notice
        .as_ref()
        .is_some_and(|n| n.text.as_str().contains("no longer a member")));
}

#[test]
fn group_and_member_names_are_held_sanitised() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.set_group(
        FAMILY,
        "fam\x1b]0;pwned\x07\u{202e}ily",
        &[member("ev\x1b[8mil", false, false)],
        true,
    );
    state.receive_group_message(FAMILY, "ev\u{202e}il", "g1", "x", NOW);
    let conversation = &state.conversations[0];
    assert_eq!(conversation.display.as_str(), "family");
    let panel = conversation.group.as_ref().unwrap();
    assert_eq!(panel.members[0].name.as_str(), "evil");
    assert_eq!(
        conversation.messages[0].from.as_ref().unwrap().as_str(),
        "evil"
    );
}

#[test]
fn opening_a_group_reads_what_was_unread_and_asks_for_receipts() {
    let mut state = state();
    let key = group_key(FAMILY);
    state.load_message(
        &key,
        ChatMessage {
            id: "h1".into(),
            direction: Direction::Incoming { read: false },
            at: NOW,
            body: SafeText::multiline("from the history"),
            from: Some(SafeText::line("carol")),
            about: Default::default(),
            file: None,
        },
    );
    state.receive_group_message(FAMILY, "bob", "g1", "live", NOW);
    let group = state
        .conversations
        .iter()
        .find(|c| c.username == key)
        .unwrap();
    assert_eq!(group.unread, 2);
    assert_eq!(
        state.select(&key),
        Some(Action::MarkRead {
            contact: key.clone(),
            ids: vec!["h1".into(), "g1".into()]
        })
    );
    // While it is open, a new message is read at once.
    assert_eq!(
        state.receive_group_message(FAMILY, "carol", "g2", "more", NOW),
        Some(Action::MarkRead {
            contact: key,
            ids: vec!["g2".into()]
        })
    );
}

#[test]
fn group_typing_is_the_groups_not_the_members_and_ends_with_their_message() {
    let mut state = state();
    let typing = |state: &ChatState| -> Vec<String> {
        state
            .find_group(FAMILY)
            .unwrap()
            .typing
            .iter()
            .map(|t| t.to_string())
            .collect()
    };
    state.group_typing(FAMILY, "bob", true);
    state.group_typing(FAMILY, "carol\x1b[2J", true);
    state.group_typing(FAMILY, "bob", true);
    assert_eq!(typing(&state), ["carol", "bob"], "once each, sanitised");
    let bob = state.conversations.iter().find(|c| c.username == "bob");
    assert!(!bob.unwrap().typing, "bob's 1:1 chat shows nothing");
    // A refresh of the header keeps it; bob's message ends his.
    state.set_group(
        FAMILY,
        "family",
        &[
            member("carol", false, false),
            member("alice", true, true),
            member("bob", false, false),
        ],
        true,
    );
    state.receive_group_message(FAMILY, "bob", "g1", "here", NOW);
    assert_eq!(typing(&state), ["carol"]);
    state.group_typing(FAMILY, "carol", false);
    assert!(typing(&state).is_empty());
    // A group we are out of shows no one typing; an unknown group is ignored.
    state.group_typing(FAMILY, "bob", true);
    state.set_group(FAMILY, "family", &[member("bob", false, false)], false);
    assert!(typing(&state).is_empty());
    state.group_typing(&"2b".repeat(32), "bob", true);
    assert!(state.find_group(&"2b".repeat(32)).is_none());
}

#[test]
fn a_groups_policy_survives_a_refresh_of_its_members() {
    let mut state = state();
    let policy = |state: &ChatState| {
        state
            .conversations
            .iter()
            .find(|c| c.username == group_key(FAMILY))
            .and_then(|c| c.group.as_ref())
            .map(|g| g.members_may_rename)
    };
    assert_eq!(policy(&state), Some(false), "admins only unless told");
    state.set_group_policy(FAMILY, true);
    state.set_group(FAMILY, "family", &[member("bob", true, false)], true);
    assert_eq!(policy(&state), Some(true), "a member refresh keeps it");
    // A group not known yet gets nothing (and no panel appears).
    state.set_group_policy("00", true);
    assert!(state
        .conversations
        .iter()
        .all(|c| c.username != group_key("00")));
}
