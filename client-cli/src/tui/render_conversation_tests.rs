//! Snapshot tests of what the chat shows about a whole conversation, at
//! 80x24 and 40x12 like the other views: the question before
//! `/delete-conversation` deletes, and the line left when the contact
//! deleted the conversation for everyone, and the disappearing-message
//! timer in the title with the line a change of it leaves; a file message
//! and a file on its way with its progress.

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use time::macros::datetime;

use crate::output::Trust;
use crate::tui::render_test_support::{draw, row, screen_text, NOW};
use crate::tui::state::{ChatState, Connection};

fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.add_contact("carol", Trust::Unverified);
    state.select("bob");
    let at = datetime!(2026-11-23 13:58 UTC);
    state.receive_message("bob", "b1", "lunch at 12:30?", at);
    state.receive_message("bob", "b2", "I'll book the usual place", at);
    state
}

fn run(state: &mut ChatState, line: &str) {
    state.type_text(line);
    state.handle_key(KeyCode::Enter.into());
}

fn delete_question() -> ChatState {
    let mut state = chat();
    run(&mut state, "/delete-conversation --everyone");
    state
}

#[test]
fn delete_conversation_question_at_80x24() {
    let state = delete_question();
    let terminal = draw(&state, 80, 24);
    // The notice row, right above the input box.
    assert!(row(&terminal, 19).starts_with("delete for everyone the conversation with bob? y/n"));
    assert_snapshot!(terminal.backend());
}

#[test]
fn delete_conversation_question_at_40x12() {
    let state = delete_question();
    let terminal = draw(&state, 40, 12);
    // Cut before its y/n, which stays.
    assert!(
        row(&terminal, 7).trim_end().ends_with("… y/n"),
        "{}",
        row(&terminal, 7)
    );
    assert_snapshot!(terminal.backend());
}

fn deleted_by_bob() -> ChatState {
    let mut state = chat();
    state.conversation_deleted("bob", true, 2, datetime!(2026-11-23 14:01 UTC));
    state
}

#[test]
fn conversation_deleted_by_the_contact_at_80x24() {
    let state = deleted_by_bob();
    let terminal = draw(&state, 80, 24);
    let text = screen_text(&terminal);
    assert!(
        !text.contains("lunch"),
        "an erased message must not be drawn"
    );
    assert!(
        text.contains("14:01 · bob deleted the conversation with you: 2"),
        "{text}"
    );
    assert_snapshot!(terminal.backend());
}

#[test]
fn conversation_deleted_by_the_contact_at_40x12() {
    let state = deleted_by_bob();
    let terminal = draw(&state, 40, 12);
    assert!(!screen_text(&terminal).contains("lunch"));
    assert_snapshot!(terminal.backend());
}

/// bob set a timer of an hour; a message of his since then.
fn timer_set_by_bob() -> ChatState {
    let mut state = chat();
    state.timer_changed("bob", true, 3600, datetime!(2026-11-23 14:00 UTC));
    state.receive_message("bob", "b3", "this one goes in an hour", NOW);
    state
}

#[test]
fn disappearing_timer_in_the_title_and_its_line_at_80x24() {
    let state = timer_set_by_bob();
    let terminal = draw(&state, 80, 24);
    assert!(
        row(&terminal, 1).contains("bob (verified) ⏱ 1h "),
        "{}",
        row(&terminal, 1)
    );
    assert!(screen_text(&terminal).contains("14:00 · bob set disappearing messages to 1h"));
    assert_snapshot!(terminal.backend());
}

#[test]
fn disappearing_timer_in_the_title_and_its_line_at_40x12() {
    let state = timer_set_by_bob();
    let terminal = draw(&state, 40, 12);
    assert!(row(&terminal, 1).contains("⏱ 1h"), "{}", row(&terminal, 1));
    assert_snapshot!(terminal.backend());
}

/// bob sent a file; ours is on its way, at 40%.
fn files() -> ChatState {
    let mut state = chat();
    state.receive_message("bob", "b3", "[file] menu.pdf (5242880 bytes)", NOW);
    let menu = crate::tui::state::FileView::new("00112233aabbccdd", "menu.pdf", 5_242_880);
    state.set_file("bob", "b3", menu);
    run(&mut state, "/file /home/alice/map.png");
    state.transfer_progress("sending map.png", 40 * 1024, 100 * 1024);
    state
}

#[test]
fn a_file_line_and_a_send_in_progress_at_80x24() {
    let state = files();
    let terminal = draw(&state, 80, 24);
    let text = screen_text(&terminal);
    assert!(text.contains("bob: 📎  menu.pdf (5.0 MiB)"), "{text}");
    assert!(text.contains("me: sending map.png …"), "{text}");
    assert!(row(&terminal, 19).starts_with("sending map.png: 40% (40.0 KiB of 100.0 KiB)"));
    assert_snapshot!(terminal.backend());
}

#[test]
fn a_file_line_and_a_send_in_progress_at_40x12() {
    let state = files();
    let terminal = draw(&state, 40, 12);
    assert!(screen_text(&terminal).contains("menu.pdf"));
    assert_snapshot!(terminal.backend());
}
