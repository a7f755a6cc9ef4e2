//! Snapshot tests of what is out of view: unread conversations scrolled
//! out of the list ("↑ 1 unread" / "↓ 2 unread" on its border) and newer
//! messages below a conversation scrolled up ("↓ more below"), at 80x24
//! and 40x12 (where the list is hidden and the title counts unread).

use insta::assert_snapshot;
use time::Duration;

use crate::output::Trust;
use crate::tui::render_test_support::{draw, screen_text, NOW};
use crate::tui::state::{ChatState, Connection};

/// Thirty chats, newest first `p29`..`p00`; `p28` (near the top) and
/// `p02`, `p01` (near the bottom) have unread messages; `p10`, in the
/// middle, is open with forty messages and scrolled up five lines.
fn long_list() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    for i in 0..30_i64 {
        let name = format!("p{i:02}");
        state.add_contact(&name, Trust::Unverified);
        let at = NOW - Duration::minutes(60 - i);
        state.receive_message(&name, &format!("m{i}"), "hello", at);
    }
    state.select("p10");
    for i in 0..40_i64 {
        let at = NOW - Duration::minutes(50) + Duration::seconds(i);
        state.receive_message("p10", &format!("t{i}"), &format!("line {i}"), at);
    }
    for c in &mut state.conversations {
        if !["p28", "p02", "p01"].contains(&c.username.as_str()) {
            c.unread = 0;
        }
    }
    state.scroll = 5;
    state
}

#[test]
fn unread_out_of_view_and_more_below_at_80x24() {
    let state = long_list();
    let terminal = draw(&state, 80, 24);
    let text = screen_text(&terminal);
    assert!(text.contains("↑ 1 unread"), "p28 is above the shown rows");
    assert!(text.contains("↓ 2 unread"), "p02 and p01 are below");
    assert!(text.contains("more below"));
    assert_snapshot!(terminal.backend());
}

#[test]
fn more_below_at_40x12() {
    let state = long_list();
    let terminal = draw(&state, 40, 12);
    assert!(screen_text(&terminal).contains("more below"));
    assert_snapshot!(terminal.backend());
}

#[test]
fn nothing_is_claimed_when_all_is_in_view() {
    let mut state = long_list();
    state.scroll = 0;
    state.select("p28");
    for c in &mut state.conversations {
        c.unread = 0;
    }
    let text = screen_text(&draw(&state, 80, 24));
    assert!(!text.contains("unread"), "{text}");
    assert!(!text.contains("more below"));
}
