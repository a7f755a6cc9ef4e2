//! `/block`, `/unblock` and `/search`: the actions they ask for, their
//! usage errors, and how search results reach the screen.

use crossterm::event::{KeyCode, KeyEvent};
use time::macros::datetime;
use time::OffsetDateTime;

use super::{Action, ChatState, Connection, Direction, SearchHit, SEARCH_SHOWN};
use crate::output::Trust;

const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);

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

fn hit<'a>(conversation: &'a str, from: &'a str, body: &'a str) -> SearchHit<'a> {
    SearchHit {
        conversation,
        from,
        mine: from == "alice",
        at: datetime!(2026-11-20 18:40 UTC),
        body,
    }
}

#[test]
fn block_and_unblock_ask_for_the_change_and_send_nothing() {
    let mut state = chat();
    assert_eq!(
        run(&mut state, "/block mallory"),
        Some(Action::Block {
            contact: "mallory".into(),
            blocked: true
        })
    );
    assert_eq!(
        run(&mut state, "/unblock mallory#5e6f0a1b"),
        Some(Action::Block {
            contact: "mallory#5e6f0a1b".into(),
            blocked: false
        })
    );
    // No name, or two: a usage error, the line kept, nothing sent.
    for line in ["/block", "/unblock a b"] {
        assert_eq!(run(&mut state, line), None, "{line}");
        assert!(state
            .notice
            .as_ref()
            .unwrap()
            .text
            .as_str()
            .starts_with("usage: /"));
        assert_eq!(state.input.text(), line);
        state.input = Default::default();
    }
}

#[test]
fn search_asks_for_the_whole_text() {
    let mut state = chat();
    assert_eq!(
        run(&mut state, "/search lunch at noon"),
        Some(Action::Search {
            text: "lunch at noon".into()
        })
    );
    assert_eq!(run(&mut state, "/search"), None);
    assert_eq!(
        state.notice.as_ref().unwrap().text.as_str(),
        "usage: /search TEXT"
    );
}

#[test]
fn results_are_lines_in_the_open_conversation_newest_first() {
    let mut state = chat();
    let hits = [
        hit("family", "carol", "lunch on sunday?"),
        hit("bob", "alice", "lunch at 12:30"),
    ];
    state.search_results("lunch", &hits);
    let lines: Vec<&str> = state
        .open()
        .unwrap()
        .messages
        .iter()
        .inspect(|m| assert_eq!(m.direction, Direction::Change))
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(
        lines,
        [
            "search \"lunch\": 2 found, newest first",
            "Nov 20 18:40 in family, carol: lunch on sunday?",
            "Nov 20 18:40 in bob, me: lunch at 12:30",
        ]
    );
    // Searched again: shown again, not taken for the same lines.
    state.search_results("lunch", &hits);
    assert_eq!(state.open().unwrap().messages.len(), 6);
}

#[test]
fn results_are_capped_and_hostile_text_is_inert() {
    let mut state = chat();
    let long = "x".repeat(500);
    let hostile = "\x1b]0;pwned\x07evil\u{202e}gnp.exe";
    let mut hits: Vec<SearchHit<'_>> = (0..SEARCH_SHOWN)
        .map(|_| hit("bob", "bob", &long))
        .collect();
    hits.insert(0, hit(hostile, hostile, hostile));
    state.search_results("x", &hits);
    let messages = &state.open().unwrap().messages;
    assert_eq!(
        messages.len(),
        1 + SEARCH_SHOWN,
        "a header and the newest 20"
    );
    assert!(messages[0]
        .body
        .as_str()
        .contains("the newest 20; umbra search lists more"));
    assert_eq!(
        messages[1].body.as_str(),
        "Nov 20 18:40 in evilgnp.exe, evilgnp.exe: evilgnp.exe"
    );
    assert!(messages[2].body.as_str().ends_with("…"));
    assert!(messages[2].body.as_str().chars().count() < 200);
}

#[test]
fn nothing_found_or_no_conversation_open_is_a_notice() {
    let mut state = chat();
    state.search_results("zebra", &[]);
    assert_eq!(
        state.notice.as_ref().unwrap().text.as_str(),
        "search \"zebra\": nothing found"
    );
    assert!(state.open().unwrap().messages.is_empty());
    let mut empty = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    empty.search_results("lunch", &[hit("bob", "bob", "lunch")]);
    assert_eq!(
        empty.notice.as_ref().unwrap().text.as_str(),
        "search \"lunch\": 1 found; open a conversation to see them"
    );
    assert!(empty.conversations.is_empty());
}
