//! The `/reply`, `/react`, `/edit` and `/delete` commands, changes
//! reaching the screen, and the rate of our typing notices.

use crossterm::event::{KeyCode, KeyEvent};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use umbra_client_core::MessageChange;

use super::{Action, ChangeRequest, ChatState, Connection};
use crate::output::Trust;

const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);

fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state.receive_message("bob", "b1", "first", NOW);
    state.type_text("mine");
    state.handle_key(KeyCode::Enter.into());
    state.message_sent("bob", "local-1", "m1");
    state.receive_message("bob", "b2", "second", NOW);
    state
}

fn run(state: &mut ChatState, line: &str) -> Option<Action> {
    state.type_text(line);
    state.handle_key(KeyEvent::from(KeyCode::Enter))
}

fn change(to: &str, target: &str, change: MessageChange) -> Option<Action> {
    Some(Action::Change(ChangeRequest {
        to: to.into(),
        target: target.into(),
        change,
    }))
}

#[test]
fn reply_targets_their_newest_message_or_the_nth_from_the_bottom() {
    let mut state = chat();
    let reply = run(&mut state, "/reply sure");
    assert!(
        matches!(reply, Some(Action::Reply { ref target, ref body, .. })
        if target == "b2" && body == "sure")
    );
    state.message_sent("bob", "local-2", "m2");
    // Counted up from the bottom: our reply m2 is ^1, b2 ^2, m1 ^3, b1 ^4.
    let reply = run(&mut state, "/reply ^4 back to the start");
    assert!(matches!(reply, Some(Action::Reply { ref target, .. }) if target == "b1"));
    assert!(run(&mut state, "/reply").is_none());
    assert!(state.notice.is_some());
}

#[test]
fn react_edit_and_delete_pick_the_right_message() {
    let mut state = chat();
    let thumbs = MessageChange::Reacted {
        emoji: "👍".into(),
        removed: false,
    };
    assert_eq!(run(&mut state, "/react 👍"), change("bob", "b2", thumbs));
    let back = MessageChange::Reacted {
        emoji: "❤".into(),
        removed: true,
    };
    assert_eq!(run(&mut state, "/unreact ^2 ❤"), change("bob", "m1", back));
    let edit = MessageChange::Edited {
        body: "mine, fixed".into(),
    };
    assert_eq!(
        run(&mut state, "/edit mine, fixed"),
        change("bob", "m1", edit)
    );
    assert_eq!(
        run(&mut state, "/delete"),
        change("bob", "m1", MessageChange::Deleted)
    );
    // Only ours may be edited or deleted: ^1 is bob's.
    assert_eq!(run(&mut state, "/delete ^1"), None);
    assert!(state
        .notice
        .as_ref()
        .is_some_and(|n| n.text.as_str().contains("not a message of yours")));
    assert_eq!(run(&mut state, "/react two words"), None);
}

#[test]
fn our_sent_change_shows_and_a_removed_reaction_goes() {
    let mut state = chat();
    let request = ChangeRequest {
        to: "bob".into(),
        target: "b2".into(),
        change: MessageChange::Reacted {
            emoji: "👍".into(),
            removed: false,
        },
    };
    state.change_sent(&request);
    state.change_sent(&request);
    let shown = |state: &ChatState| {
        let message = state.quoted("bob", "b2").unwrap();
        message
            .about
            .reaction_counts()
            .iter()
            .map(|(e, n)| (e.to_string(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(shown(&state), vec![("👍".to_owned(), 1)]);
    let removed = MessageChange::Reacted {
        emoji: "👍".into(),
        removed: true,
    };
    state.message_changed("bob", super::about::ME, "b2", &removed);
    assert!(shown(&state).is_empty());
}

fn typing(actions: &[Action]) -> Vec<(String, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Typing { to, started } => Some((to.clone(), *started)),
            _ => None,
        })
        .collect()
}

#[test]
fn typing_notices_are_rate_limited_and_stop_when_sent_or_cleared() {
    let mut state = chat();
    let key = |c: char| KeyEvent::from(KeyCode::Char(c));
    let mut sent = Vec::new();
    // Ten keys a second for three seconds: one start.
    for i in 0..30 {
        sent.extend(typing(
            &state.key_at(key('a'), NOW + Duration::milliseconds(100 * i)),
        ));
    }
    assert_eq!(sent, vec![("bob".to_owned(), true)]);
    // Still typing after the refresh interval: one more start.
    let later = NOW + super::typing::TYPING_REFRESH + Duration::seconds(1);
    assert_eq!(
        typing(&state.key_at(key('a'), later)),
        vec![("bob".to_owned(), true)]
    );
    // Sent: stop.
    let sent = state.key_at(KeyCode::Enter.into(), later);
    assert_eq!(typing(&sent), vec![("bob".to_owned(), false)]);
    // Typed again and cleared with Ctrl-U: start, then stop.
    assert_eq!(
        typing(&state.key_at(key('b'), later)),
        vec![("bob".to_owned(), true)]
    );
    let ctrl_u = KeyEvent::new(KeyCode::Char('u'), crossterm::event::KeyModifiers::CONTROL);
    assert_eq!(
        typing(&state.key_at(ctrl_u, later)),
        vec![("bob".to_owned(), false)]
    );
    // A command being typed is no message: nothing.
    assert!(typing(&state.key_at(key('/'), later)).is_empty());
    assert!(typing(&state.key_at(key('o'), later)).is_empty());
}

#[test]
fn a_pause_in_typing_sends_a_stop_and_typing_on_starts_again() {
    use super::typing::TYPING_IDLE;
    let mut state = chat();
    let key = |c: char| KeyEvent::from(KeyCode::Char(c));
    assert_eq!(
        typing(&state.key_at(key('h'), NOW)),
        vec![("bob".to_owned(), true)]
    );
    let last_key = NOW + Duration::seconds(1);
    assert!(typing(&state.key_at(key('i'), last_key)).is_empty());
    // The loop wakes when the draft has sat unchanged for TYPING_IDLE
    // since the last key, not since the start.
    assert_eq!(state.typing_idle_at(), Some(last_key + TYPING_IDLE));
    let nearly = last_key + TYPING_IDLE - Duration::milliseconds(1);
    assert_eq!(state.typing_idle(nearly), None);
    let idle = last_key + TYPING_IDLE;
    assert_eq!(
        state.typing_idle(idle),
        Some(Action::Typing {
            to: "bob".into(),
            started: false
        })
    );
    // Once only, and nothing more to wake for.
    assert_eq!(state.typing_idle(idle + Duration::seconds(10)), None);
    assert_eq!(state.typing_idle_at(), None);
    // Moving the cursor is not typing: no start.
    assert!(typing(&state.key_at(KeyCode::Left.into(), idle + Duration::seconds(1))).is_empty());
    // A key that changes the draft starts again at once.
    let again = idle + Duration::seconds(2);
    assert_eq!(
        typing(&state.key_at(key('!'), again)),
        vec![("bob".to_owned(), true)]
    );
    // Sent after the pause: the one stop the send owes.
    let sent = state.key_at(KeyCode::Enter.into(), again + Duration::seconds(1));
    assert_eq!(typing(&sent), vec![("bob".to_owned(), false)]);
    // Paused, then sent: no second stop for the send.
    state.key_at(key('x'), again);
    state.typing_idle(again + TYPING_IDLE);
    let sent = state.key_at(KeyCode::Enter.into(), again + TYPING_IDLE * 2);
    assert!(typing(&sent).is_empty(), "{sent:?}");
}

#[test]
fn a_refused_change_leaves_the_message_and_says_so_once() {
    let mut state = chat();
    let before = state.find_mut("bob").unwrap().messages.clone();
    state.change_refused("bob", "bob", "c1", "not_the_author", NOW);
    state.change_refused("bob", "bob", "c1", "not_the_author", NOW);
    let messages = &state.find_mut("bob").unwrap().messages;
    assert_eq!(messages[..before.len()], before[..], "nothing changed");
    assert_eq!(messages.len(), before.len() + 1, "one line, however often");
    let line = messages.last().unwrap();
    assert_eq!(line.direction, super::Direction::Change);
    assert_eq!(
        line.body.as_str(),
        "refused bob's change: not their message"
    );
    // A system line is never a target of /react or /reply.
    assert!(matches!(
        run(&mut state, "/reply ok"),
        Some(Action::Reply { ref target, .. }) if target == "b2"
    ));
    // A code a newer client sends is shown as it is.
    state.change_refused("bob", "bob", "c2", "from_the_future", NOW);
    let last = state
        .find_mut("bob")
        .unwrap()
        .messages
        .last()
        .unwrap()
        .clone();
    assert!(last.body.as_str().ends_with(": from_the_future"));
}

#[test]
fn a_refusal_from_no_conversation_is_a_notice_not_a_new_chat() {
    let mut state = chat();
    let chats = state.conversations.len();
    state.change_refused("mallory", "mallory", "c1", "unknown_target", NOW);
    assert_eq!(state.conversations.len(), chats);
    let notice = state.notice.as_ref().expect("a notice");
    assert!(notice.text.as_str().contains("refused mallory's change"));
}
