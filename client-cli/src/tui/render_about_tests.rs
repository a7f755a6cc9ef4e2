//! Snapshot tests of replies, reactions, edits and deletes on the chat
//! screen (80x24 and 40x12), and that a hostile quote or emoji is drawn
//! inert.

use insta::assert_snapshot;
use time::macros::datetime;
use umbra_client_core::MessageChange;

use crate::output::{Delivery, Trust};
use crate::tui::render_test_support::{draw, screen_text, NOW};
use crate::tui::state::{Action, ChatState, Connection};

fn react(state: &mut ChatState, by: &str, target: &str, emoji: &str) {
    let change = MessageChange::Reacted {
        emoji: emoji.into(),
        removed: false,
    };
    state.message_changed("bob", by, target, &change);
}

/// bob asks, we answer with a reply, he reacts twice and edits, one of
/// ours is deleted.
fn about_screen() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    let at = datetime!(2026-11-23 13:58 UTC);
    state.receive_message("bob", "b1", "are we still on for lunch at noon?", at);
    state.type_text("/reply yes, see you there");
    let action = state.handle_key(crossterm::event::KeyCode::Enter.into());
    assert!(matches!(action, Some(Action::Reply { ref target, .. }) if target == "b1"));
    state.message_sent("bob", "local-1", "m1");
    state.receipt("bob", "m1", Delivery::Read);
    react(&mut state, "bob-account", "m1", "👍");
    react(&mut state, "me", "m1", "👍");
    react(&mut state, "me", "m1", "❤");
    state.receive_message("bob", "b2", "make it 12:30", at);
    let edit = MessageChange::Edited {
        body: "make it 12:45".into(),
    };
    state.message_changed("bob", "bob-account", "b2", &edit);
    state.receive_message("bob", "b3", "oops, wrong chat", at);
    state.message_changed("bob", "bob-account", "b3", &MessageChange::Deleted);
    state.receive_message("bob", "b4", "ignore that", at);
    state.set_reply_to("bob", "b4", "b3");
    state
}

#[test]
fn reply_reactions_edit_and_delete_at_80x24() {
    let state = about_screen();
    let terminal = draw(&state, 80, 24);
    let text = screen_text(&terminal);
    assert!(text.contains("↪ bob: are we still on for lunch"), "{text}");
    // A wide emoji fills two cells, the second drawn blank.
    assert!(text.contains("👍  2  ❤ 1"), "{text}");
    assert!(text.contains("make it 12:45 (edited)"), "{text}");
    assert!(!text.contains("oops"), "a deleted text must not be drawn");
    assert!(text.contains("message deleted"), "{text}");
    assert!(text.contains("↪ bob: message deleted"), "{text}");
    assert_snapshot!(terminal.backend());
}

#[test]
fn reply_reactions_edit_and_delete_at_40x12() {
    let state = about_screen();
    let terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
}

#[test]
fn a_reply_to_a_message_not_loaded_says_so() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state.receive_message("bob", "b1", "as I said", NOW);
    state.set_reply_to("bob", "b1", "gone");
    let text = screen_text(&draw(&state, 80, 24));
    assert!(text.contains("↪ a message not shown here"), "{text}");
}

#[test]
fn hostile_quotes_and_reactions_are_drawn_inert() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    let hostile = "\x1b]0;pwned\x07\x1b[2Jquote\u{202e}gnp.exe\u{9b}31m\u{2066}x";
    state.receive_message("bob", "b1", hostile, NOW);
    state.receive_message("bob", "b2", "reply", NOW);
    state.set_reply_to("bob", "b2", "b1");
    react(&mut state, "bob", "b2", "\x1b[31m\u{202e}👍\u{7}");
    let edit = MessageChange::Edited {
        body: format!("edited{hostile}"),
    };
    state.message_changed("bob", "bob", "b2", &edit);
    let terminal = draw(&state, 80, 24);
    for cell in terminal.backend().buffer().content() {
        for c in cell.symbol().chars() {
            assert!(!c.is_control(), "control {c:?} reached the screen");
            assert!(
                !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'),
                "bidi control {c:?} reached the screen"
            );
        }
    }
    let text = screen_text(&terminal);
    assert!(text.contains("↪ bob: "), "{text}");
    assert!(text.contains("👍  1"), "{text}");
}

/// bob's message, then an edit of ours he sent (refused: not his) and a
/// reaction to a message this device never had.
fn refused_screen() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    let at = datetime!(2026-11-23 13:58 UTC);
    state.receive_message("bob", "b1", "lunch at 12:30?", at);
    state.now = datetime!(2026-11-23 14:00 UTC);
    state.type_text("yes");
    state.handle_key(crossterm::event::KeyCode::Enter.into());
    state.message_sent("bob", "local-1", "m1");
    state.now = NOW;
    let at = datetime!(2026-11-23 14:01 UTC);
    state.change_refused("bob", "bob", "c1", "not_the_author", at);
    // Reported again (by a daemon as well as the client): shown once.
    state.change_refused("bob", "bob", "c1", "not_the_author", at);
    state.change_refused("bob", "bob", "c2", "unknown_target", at);
    state
}

#[test]
fn a_refused_change_is_a_line_in_the_conversation_at_80x24() {
    let state = refused_screen();
    let terminal = draw(&state, 80, 24);
    let text = screen_text(&terminal);
    assert!(
        text.contains("refused bob's change: not their message"),
        "{text}"
    );
    assert_eq!(text.matches("not their message").count(), 1);
    assert!(text.contains("yes"), "our message is left as it was");
    assert_snapshot!(terminal.backend());
}

#[test]
fn a_refused_change_is_a_line_in_the_conversation_at_40x12() {
    let state = refused_screen();
    let terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
}
