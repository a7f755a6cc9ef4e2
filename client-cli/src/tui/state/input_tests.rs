//! Tests of editing the draft, the slash commands, the help screen and the
//! discard-draft question, driven through `handle_key` and `paste` as the
//! event loop calls them.

use super::*;
use crate::output::Trust;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::macros::datetime;

fn state() -> ChatState {
    let mut state = ChatState::new(
        "alice",
        "http://127.0.0.1:7878",
        datetime!(2026-11-23 12:00 UTC),
    );
    state.add_contact("bob", Trust::Unverified);
    let _ = state.select("bob");
    state
}

fn press(state: &mut ChatState, code: KeyCode, modifiers: KeyModifiers) -> Option<Action> {
    state.handle_key(KeyEvent::new(code, modifiers))
}

fn key(state: &mut ChatState, code: KeyCode) -> Option<Action> {
    press(state, code, KeyModifiers::NONE)
}

fn ctrl(state: &mut ChatState, c: char) -> Option<Action> {
    press(state, KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn alt(state: &mut ChatState, c: char) -> Option<Action> {
    press(state, KeyCode::Char(c), KeyModifiers::ALT)
}

fn typed(state: &mut ChatState, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c));
    }
}

/// The draft with `|` where the cursor is.
fn shown(state: &ChatState) -> String {
    let text = state.input.text();
    let at = state.input.cursor();
    format!("{}|{}", &text[..at], &text[at..])
}

fn sent_body(action: Option<Action>) -> Option<String> {
    match action {
        Some(Action::Send { body, .. }) => Some(body),
        _ => None,
    }
}

#[test]
fn cursor_moves_and_typing_inserts_at_it() {
    let mut s = state();
    typed(&mut s, "helo");
    key(&mut s, KeyCode::Left);
    typed(&mut s, "l");
    assert_eq!(shown(&s), "hell|o");
    key(&mut s, KeyCode::Home);
    assert_eq!(shown(&s), "|hello");
    key(&mut s, KeyCode::Left);
    assert_eq!(shown(&s), "|hello", "Left at the start stays");
    key(&mut s, KeyCode::End);
    assert_eq!(shown(&s), "hello|");
    key(&mut s, KeyCode::Right);
    assert_eq!(shown(&s), "hello|", "Right at the end stays");
    key(&mut s, KeyCode::Home);
    ctrl(&mut s, 'e');
    assert_eq!(shown(&s), "hello|", "Ctrl-E is End");
}

#[test]
fn backspace_and_delete_work_at_the_cursor() {
    let mut s = state();
    typed(&mut s, "abcd");
    key(&mut s, KeyCode::Left);
    key(&mut s, KeyCode::Left);
    key(&mut s, KeyCode::Backspace);
    assert_eq!(shown(&s), "a|cd");
    key(&mut s, KeyCode::Delete);
    assert_eq!(shown(&s), "a|d");
    key(&mut s, KeyCode::End);
    key(&mut s, KeyCode::Delete);
    assert_eq!(shown(&s), "ad|", "Delete at the end does nothing");
    key(&mut s, KeyCode::Home);
    key(&mut s, KeyCode::Backspace);
    assert_eq!(shown(&s), "|ad", "Backspace at the start does nothing");
}

#[test]
fn word_jumps_with_ctrl_arrows_and_alt_letters() {
    let mut s = state();
    typed(&mut s, "one  two three");
    press(&mut s, KeyCode::Left, KeyModifiers::CONTROL);
    assert_eq!(shown(&s), "one  two |three");
    alt(&mut s, 'b');
    assert_eq!(shown(&s), "one  |two three");
    alt(&mut s, 'b');
    assert_eq!(shown(&s), "|one  two three");
    press(&mut s, KeyCode::Right, KeyModifiers::CONTROL);
    assert_eq!(shown(&s), "one|  two three");
    alt(&mut s, 'f');
    assert_eq!(shown(&s), "one  two| three");
    assert_eq!(s.input, "one  two three", "Alt letters are not typed");
}

#[test]
fn ctrl_w_and_ctrl_u_delete_before_the_cursor() {
    let mut s = state();
    typed(&mut s, "one two three");
    press(&mut s, KeyCode::Left, KeyModifiers::CONTROL);
    ctrl(&mut s, 'w');
    assert_eq!(shown(&s), "one |three");
    typed(&mut s, "2 ");
    ctrl(&mut s, 'u');
    assert_eq!(shown(&s), "|three");
}

#[test]
fn editing_never_splits_a_grapheme() {
    let mut s = state();
    // e + combining acute, a family emoji (ZWJ sequence), a CJK character.
    s.type_text("e\u{301}👨\u{200d}👩\u{200d}👧中");
    key(&mut s, KeyCode::Left);
    assert_eq!(shown(&s), "e\u{301}👨\u{200d}👩\u{200d}👧|中");
    key(&mut s, KeyCode::Left);
    assert_eq!(shown(&s), "e\u{301}|👨\u{200d}👩\u{200d}👧中");
    key(&mut s, KeyCode::Delete);
    assert_eq!(shown(&s), "e\u{301}|中", "the whole family goes at once");
    key(&mut s, KeyCode::Backspace);
    assert_eq!(shown(&s), "|中", "the accent goes with its letter");
    key(&mut s, KeyCode::End);
    typed(&mut s, "e\u{301}");
    assert_eq!(shown(&s), "中e\u{301}|");
}

#[test]
fn history_recalls_sent_lines_and_gives_back_the_draft() {
    let mut s = state();
    typed(&mut s, "first");
    assert!(key(&mut s, KeyCode::Enter).is_some());
    typed(&mut s, "second");
    key(&mut s, KeyCode::Enter);
    typed(&mut s, "draft");
    ctrl(&mut s, 'p');
    assert_eq!(shown(&s), "second|");
    ctrl(&mut s, 'p');
    assert_eq!(s.input, "first");
    ctrl(&mut s, 'p');
    assert_eq!(s.input, "first", "the oldest line stays");
    ctrl(&mut s, 'n');
    assert_eq!(s.input, "second");
    ctrl(&mut s, 'n');
    assert_eq!(shown(&s), "draft|", "the draft comes back");
    ctrl(&mut s, 'n');
    assert_eq!(s.input, "draft");
    // Resending a recalled line works and it is not duplicated.
    s.input.clear();
    ctrl(&mut s, 'p');
    assert_eq!(
        sent_body(key(&mut s, KeyCode::Enter)).as_deref(),
        Some("second")
    );
    ctrl(&mut s, 'p');
    ctrl(&mut s, 'p');
    assert_eq!(s.input, "first");
}

#[test]
fn up_and_down_still_switch_conversations() {
    let mut s = state();
    s.add_contact("carol", Trust::Unverified);
    typed(&mut s, "kept");
    let before = s.selected.clone();
    key(&mut s, KeyCode::Down);
    assert_ne!(s.selected, before);
    assert_eq!(s.input, "kept");
}

#[test]
fn a_paste_keeps_its_lines_and_is_sent_as_one_message() {
    let mut s = state();
    s.paste("line one\r\nline two\n\x1b[31mthree");
    assert_eq!(s.input, "line one\nline two\nthree");
    assert_eq!(
        sent_body(key(&mut s, KeyCode::Enter)).as_deref(),
        Some("line one\nline two\nthree")
    );
    let body = &s.open().unwrap().messages[0].body;
    assert_eq!(body.lines().count(), 3);
}

#[test]
fn alt_enter_and_shift_enter_insert_a_line_break() {
    let mut s = state();
    typed(&mut s, "a");
    press(&mut s, KeyCode::Enter, KeyModifiers::ALT);
    typed(&mut s, "b");
    press(&mut s, KeyCode::Enter, KeyModifiers::SHIFT);
    typed(&mut s, "c");
    assert_eq!(s.input, "a\nb\nc");
    key(&mut s, KeyCode::Home);
    assert_eq!(shown(&s), "a\nb\n|c", "Home goes to the start of this line");
    key(&mut s, KeyCode::Left);
    key(&mut s, KeyCode::Home);
    key(&mut s, KeyCode::End);
    assert_eq!(shown(&s), "a\nb|\nc", "End goes to the end of this line");
    assert_eq!(
        sent_body(key(&mut s, KeyCode::Enter)).as_deref(),
        Some("a\nb\nc")
    );
}

#[test]
fn typed_keys_never_carry_a_line_break() {
    let mut s = state();
    s.type_text("a\nb");
    assert_eq!(s.input, "a b");
}

#[test]
fn an_unknown_command_is_an_error_and_never_sent() {
    let mut s = state();
    typed(&mut s, "/hepl");
    assert_eq!(key(&mut s, KeyCode::Enter), None);
    assert!(s.open().unwrap().messages.is_empty(), "nothing was sent");
    let notice = s.notice.as_ref().expect("an error is shown");
    assert_eq!(notice.severity, Severity::Error);
    assert!(notice.text.as_str().contains("unknown command /hepl"));
    assert_eq!(s.input, "/hepl", "the line is kept for fixing");
}

#[test]
fn a_double_slash_sends_a_literal_slash() {
    let mut s = state();
    typed(&mut s, "//shrug");
    assert_eq!(
        sent_body(key(&mut s, KeyCode::Enter)).as_deref(),
        Some("/shrug")
    );
}

#[test]
fn a_bare_open_is_a_usage_error() {
    let mut s = state();
    typed(&mut s, "/open");
    assert_eq!(key(&mut s, KeyCode::Enter), None);
    assert!(s.open().unwrap().messages.is_empty());
    assert!(s
        .notice
        .as_ref()
        .unwrap()
        .text
        .as_str()
        .contains("usage: /open"));
}

#[test]
fn slash_devices_asks_for_the_list_and_takes_no_arguments() {
    let mut s = state();
    typed(&mut s, "/devices");
    assert_eq!(key(&mut s, KeyCode::Enter), Some(Action::ListDevices));
    assert!(s.open().unwrap().messages.is_empty());
    typed(&mut s, "/devices remove 2");
    assert_eq!(key(&mut s, KeyCode::Enter), None);
    assert!(s
        .notice
        .as_ref()
        .unwrap()
        .text
        .as_str()
        .contains("usage: /devices"));
}

#[test]
fn help_opens_with_question_mark_or_slash_help_and_closes_with_esc() {
    let mut s = state();
    key(&mut s, KeyCode::Char('?'));
    assert_eq!(s.help, Some(0));
    assert_eq!(
        key(&mut s, KeyCode::Esc),
        None,
        "Esc closes help, not the app"
    );
    assert_eq!(s.help, None);
    typed(&mut s, "/help");
    key(&mut s, KeyCode::Enter);
    assert_eq!(s.help, Some(0));
    assert!(s.input.is_empty());
    key(&mut s, KeyCode::PageDown);
    assert_eq!(s.help, Some(5));
    key(&mut s, KeyCode::Char('q'));
    assert_eq!(s.help, None);
    // With a draft, ? is just a character.
    typed(&mut s, "why?");
    assert_eq!(s.input, "why?");
    assert_eq!(s.help, None);
}

#[test]
fn every_command_is_in_the_help_table() {
    for command in COMMANDS {
        assert!(command.usage().starts_with(&format!("/{}", command.name)));
    }
    assert!(COMMANDS.iter().any(|c| c.name == "open"));
    assert!(COMMANDS.iter().any(|c| c.name == "help"));
}

#[test]
fn quitting_with_a_draft_asks_first() {
    let mut s = state();
    typed(&mut s, "unsent words");
    assert_eq!(key(&mut s, KeyCode::Esc), None);
    assert!(s.confirm_discard);
    assert_eq!(key(&mut s, KeyCode::Char('n')), None);
    assert!(!s.confirm_discard);
    assert_eq!(s.input, "unsent words", "no keeps the draft");
    ctrl(&mut s, 'q');
    assert!(s.confirm_discard, "Ctrl-Q asks too");
    assert_eq!(key(&mut s, KeyCode::Esc), None, "Esc answers no");
    assert_eq!(s.input, "unsent words");
    key(&mut s, KeyCode::Esc);
    assert_eq!(key(&mut s, KeyCode::Char('y')), Some(Action::Quit));
    assert_eq!(ctrl(&mut s, 'c'), None, "Ctrl-C asks too");
    assert_eq!(ctrl(&mut s, 'c'), Some(Action::Quit), "Ctrl-C twice quits");
}

#[test]
fn quitting_with_an_empty_draft_does_not_ask() {
    let mut s = state();
    assert_eq!(key(&mut s, KeyCode::Esc), Some(Action::Quit));
}
