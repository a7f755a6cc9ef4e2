//! Snapshot tests of `/search` results written into the open conversation
//! (80x24 and 40x12).

use insta::assert_snapshot;
use time::macros::datetime;

use crate::output::Trust;
use crate::tui::render_test_support::{draw, screen_text, NOW};
use crate::tui::state::{ChatState, Connection, SearchHit};

fn searched() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state.receive_message(
        "bob",
        "b1",
        "see you at noon",
        datetime!(2026-11-23 13:58 UTC),
    );
    let hit = |conversation, from, body, at| SearchHit {
        conversation,
        from,
        mine: from == "alice",
        at,
        body,
    };
    state.search_results(
        "lunch",
        &[
            hit(
                "family",
                "carol",
                "lunch on sunday?",
                datetime!(2026-11-22 09:15 UTC),
            ),
            hit(
                "bob",
                "alice",
                "lunch at 12:30",
                datetime!(2026-11-20 18:40 UTC),
            ),
        ],
    );
    state
}

#[test]
fn search_results_at_80x24() {
    let terminal = draw(&searched(), 80, 24);
    let text = screen_text(&terminal);
    assert!(
        text.contains("search \"lunch\": 2 found, newest first"),
        "{text}"
    );
    assert!(
        text.contains("Nov 22 09:15 in family, carol: lunch on"),
        "{text}"
    );
    assert_snapshot!(terminal.backend());
}

#[test]
fn search_results_at_40x12() {
    let terminal = draw(&searched(), 40, 12);
    assert_snapshot!(terminal.backend());
}
