//! Snapshot tests of the input box and the screens around it, at 80x24 and
//! 40x12 like the other views: a long draft scrolled to the cursor, a
//! multi-line draft growing the box, the help screen, the discard-draft
//! question and an unknown command's error. The terminal cursor's position
//! is asserted too, since the snapshots do not show it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use ratatui::backend::{Backend, TestBackend};
use ratatui::layout::Position;
use ratatui::Terminal;
use time::macros::datetime;

use crate::output::Trust;
use crate::tui::render_test_support::{draw, NOW};
use crate::tui::state::{ChatState, Connection};

const LONG: &str =
    "the quick brown fox jumps over the lazy dog and then it runs all the way back home again";

fn cursor(terminal: &mut Terminal<TestBackend>) -> Position {
    terminal.backend_mut().get_cursor_position().unwrap()
}

fn press(state: &mut ChatState, code: KeyCode, modifiers: KeyModifiers) {
    state.handle_key(KeyEvent::new(code, modifiers));
}

fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.receive_message(
        "bob",
        "b1",
        "lunch at 12:30?",
        datetime!(2026-11-23 13:58 UTC),
    );
    let _ = state.select("bob");
    state
}

#[test]
fn a_long_draft_at_its_end_shows_the_tail_with_the_cursor_after_it() {
    let mut state = chat();
    state.type_text(LONG);
    let mut terminal = draw(&state, 80, 24);
    // Box rows 20-22, text on row 21; the cursor takes the last inner cell.
    assert_eq!(cursor(&mut terminal), Position::new(78, 21));
    assert!(terminal.backend().buffer().cell((77, 21)).unwrap().symbol() == "n");
    let mut terminal = draw(&state, 40, 12);
    assert_eq!(cursor(&mut terminal), Position::new(38, 9));
}

#[test]
fn long_draft_scrolled_to_a_cursor_in_the_middle_at_80x24() {
    let mut state = chat();
    state.type_text(LONG);
    for _ in 0..2 {
        press(&mut state, KeyCode::Left, KeyModifiers::CONTROL);
    }
    let mut terminal = draw(&state, 80, 24);
    assert_snapshot!(terminal.backend());
    // Two words back from the end is "home", one column past the box's
    // width: the view moved by two and the cursor is on the "h".
    let at = cursor(&mut terminal);
    let cell = terminal
        .backend()
        .buffer()
        .cell((at.x, at.y))
        .unwrap()
        .symbol()
        .to_owned();
    assert_eq!((at.x, at.y, cell.as_str()), (78, 21, "h"));
}

#[test]
fn long_draft_scrolled_to_a_cursor_in_the_middle_at_40x12() {
    let mut state = chat();
    state.type_text(LONG);
    press(&mut state, KeyCode::Home, KeyModifiers::NONE);
    for _ in 0..9 {
        press(&mut state, KeyCode::Right, KeyModifiers::CONTROL);
    }
    let mut terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
    // Nine words right is the space after "dog", in the last column.
    assert_eq!(cursor(&mut terminal), Position::new(38, 9));
}

#[test]
fn home_shows_the_start_of_a_long_draft() {
    let mut state = chat();
    state.type_text(LONG);
    press(&mut state, KeyCode::Home, KeyModifiers::NONE);
    let mut terminal = draw(&state, 40, 12);
    assert_eq!(cursor(&mut terminal), Position::new(1, 9));
    let row: String = (1..10)
        .map(|x| {
            terminal
                .backend()
                .buffer()
                .cell((x, 9))
                .unwrap()
                .symbol()
                .to_owned()
        })
        .collect();
    assert_eq!(row, "the quick");
}

fn multi_line(lines: usize) -> ChatState {
    let mut state = chat();
    let text: Vec<String> = (1..=lines)
        .map(|i| format!("line {i} of the draft"))
        .collect();
    state.paste(&text.join("\n"));
    state
}

#[test]
fn a_three_line_draft_grows_the_box_at_80x24() {
    let mut terminal = draw(&multi_line(3), 80, 24);
    assert_snapshot!(terminal.backend());
    assert_eq!(cursor(&mut terminal), Position::new(20, 21));
}

#[test]
fn a_three_line_draft_grows_the_box_at_40x12() {
    let mut terminal = draw(&multi_line(3), 40, 12);
    assert_snapshot!(terminal.backend());
    assert_eq!(cursor(&mut terminal), Position::new(20, 9));
}

#[test]
fn a_long_draft_stops_growing_and_follows_the_cursor_at_40x12() {
    let mut state = multi_line(7);
    // Up to line 2: the box shows lines 1-4 with the cursor on the second.
    for _ in 0..5 {
        press(&mut state, KeyCode::Home, KeyModifiers::NONE);
        press(&mut state, KeyCode::Left, KeyModifiers::NONE);
    }
    let mut terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
    assert_eq!(cursor(&mut terminal), Position::new(20, 7));
}

#[test]
fn help_screen_at_80x24() {
    let mut state = chat();
    press(&mut state, KeyCode::Char('?'), KeyModifiers::NONE);
    assert_snapshot!(draw(&state, 80, 24).backend());
}

#[test]
fn help_screen_at_40x12() {
    let mut state = chat();
    press(&mut state, KeyCode::Char('?'), KeyModifiers::NONE);
    assert_snapshot!(draw(&state, 40, 12).backend());
}

#[test]
fn help_screen_scrolled_to_the_commands_at_40x12() {
    let mut state = chat();
    press(&mut state, KeyCode::Char('?'), KeyModifiers::NONE);
    for _ in 0..20 {
        press(&mut state, KeyCode::PageDown, KeyModifiers::NONE);
    }
    assert_snapshot!(draw(&state, 40, 12).backend());
}

fn confirming() -> ChatState {
    let mut state = chat();
    state.type_text("half a thought");
    press(&mut state, KeyCode::Esc, KeyModifiers::NONE);
    state
}

#[test]
fn discard_draft_question_at_80x24() {
    assert_snapshot!(draw(&confirming(), 80, 24).backend());
}

#[test]
fn discard_draft_question_at_40x12() {
    assert_snapshot!(draw(&confirming(), 40, 12).backend());
}

fn mistyped_command() -> ChatState {
    let mut state = chat();
    state.type_text("/hepl");
    press(&mut state, KeyCode::Enter, KeyModifiers::NONE);
    state
}

#[test]
fn unknown_command_error_at_80x24() {
    assert_snapshot!(draw(&mistyped_command(), 80, 24).backend());
}

#[test]
fn unknown_command_error_at_40x12() {
    assert_snapshot!(draw(&mistyped_command(), 40, 12).backend());
}

#[test]
fn the_cursor_follows_what_was_drawn_after_wide_and_joined_characters() {
    let mut state = chat();
    // A ZWJ family, a combining accent, CJK: widths as ratatui draws them.
    state.type_text("hi 👨\u{200d}👩\u{200d}👧 e\u{301} 中文 ok");
    let mut terminal = draw(&state, 40, 12);
    let at = cursor(&mut terminal);
    let before = terminal
        .backend()
        .buffer()
        .cell((at.x - 1, at.y))
        .unwrap()
        .symbol()
        .to_owned();
    assert_eq!(
        (at.y, before.as_str()),
        (9, "k"),
        "the cursor stands right after the last cell drawn"
    );
    // And with the line scrolled sideways: the cursor still follows the text.
    state.type_text(&" more".repeat(8));
    let mut terminal = draw(&state, 40, 12);
    let at = cursor(&mut terminal);
    let before = terminal
        .backend()
        .buffer()
        .cell((at.x - 1, at.y))
        .unwrap()
        .symbol()
        .to_owned();
    assert_eq!((at.x, before.as_str()), (38, "e"));
}
