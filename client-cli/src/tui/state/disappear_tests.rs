//! `/disappear`: the duration is read as `umbra disappearing` reads it,
//! only for an open 1:1 conversation; a change from either side sets the
//! title's timer and writes a line; expired messages leave the view.

use crossterm::event::{KeyCode, KeyEvent};
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::output::Trust;

const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);
const FAMILY: &str = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";

fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state
}

fn run(state: &mut ChatState, line: &str) -> Option<Action> {
    state.type_text(line);
    state.handle_key(KeyEvent::from(KeyCode::Enter))
}

fn error(state: &ChatState) -> Option<String> {
    state.notice.as_ref().map(|n| n.text.to_string())
}

#[test]
fn disappear_takes_the_clis_durations_for_the_open_conversation() {
    let mut state = chat();
    for (typed, seconds) in [
        ("1h", 3600),
        ("30s", 30),
        ("2d", 172_800),
        ("off", 0),
        ("0", 0),
    ] {
        assert_eq!(
            run(&mut state, &format!("/disappear {typed}")),
            Some(Action::SetDisappearing {
                contact: "bob".into(),
                seconds
            }),
            "{typed}"
        );
    }
    // The title shows only what client-core reported, not the request.
    assert_eq!(state.open().map(|c| c.disappearing), Some(0));

    for (typed, said) in [
        ("/disappear", "usage: /disappear DURATION|off"),
        ("/disappear 1 h", "usage: /disappear DURATION|off"),
        ("/disappear 1y", "expected off or a whole number"),
        ("/disappear 5w", "at most four weeks"),
    ] {
        assert_eq!(run(&mut state, typed), None, "{typed}");
        let shown = error(&state).unwrap_or_default();
        assert!(shown.contains(said), "{typed}: {shown}");
        assert_eq!(state.input.text(), typed, "kept for fixing");
        state.input.clear();
    }

    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    assert_eq!(run(&mut state, "/disappear 1h"), None);
    assert_eq!(
        error(&state).as_deref(),
        Some("no conversation open: type /open USERNAME first")
    );
    let mut state = chat();
    let me = MemberInput {
        name: "alice",
        admin: true,
        me: true,
    };
    state.set_group(FAMILY, "family", &[me], true);
    state.select(&group_key(FAMILY));
    // A group's timer, for every member (any member may set it).
    assert_eq!(
        run(&mut state, "/disappear 1h"),
        Some(Action::SetDisappearing {
            contact: group_key(FAMILY),
            seconds: 3600,
        })
    );
    state.group_timer_changed(FAMILY, Some("bob"), 3600, NOW);
    let family = state.open().expect("open");
    assert_eq!(family.disappearing, 3600);
    let line = family.messages.last().expect("a line");
    assert_eq!(line.body.as_str(), "bob set disappearing messages to 1h");
    // A group we left takes none.
    let me = MemberInput {
        name: "alice",
        admin: true,
        me: true,
    };
    state.set_group(FAMILY, "family", &[me], false);
    assert_eq!(run(&mut state, "/disappear 1h"), None);
    assert!(error(&state).is_some_and(|e| e.contains("no longer a member")));
}

#[test]
fn a_timer_change_from_either_side_sets_the_title_and_writes_a_line() {
    let mut state = chat();
    state.timer_changed("bob", true, 3600, NOW);
    let bob = state.open().expect("open");
    assert_eq!(bob.disappearing, 3600);
    let line = bob.messages.last().expect("a line");
    assert_eq!(line.direction, Direction::Change);
    assert_eq!(line.body.as_str(), "bob set disappearing messages to 1h");

    state.timer_changed("bob", false, 0, NOW);
    let bob = state.open().expect("open");
    assert_eq!(bob.disappearing, 0);
    assert_eq!(bob.messages.len(), 2, "one line per change");
    assert_eq!(
        bob.messages[1].body.as_str(),
        "you set disappearing messages with bob to off"
    );
    // At start the stored timer is shown without a line.
    state.set_timer("bob", 300);
    assert_eq!(
        state.open().map(|c| (c.disappearing, c.messages.len())),
        Some((300, 2))
    );
}

#[test]
fn expired_messages_leave_the_view_and_the_unread_count() {
    let mut state = chat();
    state.add_contact("carol", Trust::Unverified);
    state.receive_message("carol", "c1", "gone soon", NOW);
    state.receive_message("carol", "c2", "stays", NOW);
    state.receive_message("carol", "c3", "gone too", NOW);
    assert_eq!(
        state
            .conversations
            .iter()
            .find(|c| c.username == "carol")
            .map(|c| c.unread),
        Some(3)
    );
    state.messages_expired(
        "carol",
        &["c1".to_owned(), "c3".to_owned(), "other".to_owned()],
    );
    let carol = state
        .conversations
        .iter()
        .find(|c| c.username == "carol")
        .expect("carol");
    let left: Vec<&str> = carol.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(left, ["c2"]);
    assert_eq!(carol.unread, 1);
    // An expiry for a conversation not on screen creates none.
    state.messages_expired("dave", &["d1".to_owned()]);
    assert!(state.conversations.iter().all(|c| c.username != "dave"));
}
