//! Snapshot tests of the chat screen on deterministic data, drawn with
//! ratatui's TestBackend (no terminal needed). Snapshots live in
//! `snapshots/` next to this file; regenerate with `INSTA_UPDATE=always`
//! after an intended change and review the diff.

use insta::assert_snapshot;
use ratatui::style::Color;
use time::macros::datetime;

use crate::output::{Delivery, Trust};
use crate::tui::render_test_support::{draw, row, screen_text, NOW};
use crate::tui::state::{ChatState, Connection};

/// Every Unicode bidirectional control (UAX #9): ALM, LRM, RLM, the
/// embeddings and overrides LRE..RLO with PDF, and the isolates LRI..PDI.
/// Any of them can reorder what the user reads (`evil\u{202e}gnp.exe`).
const BIDI_CONTROLS: [char; 12] = [
    '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

fn is_bidi_control(c: char) -> bool {
    BIDI_CONTROLS.contains(&c)
}

const SAFETY_NUMBER: &str =
    "05211 39474 28193 50023 81930 71288 33019 48201 66120 90382 11734 52816";

/// alice talking to bob (open) and carol (two unread), one older chat.
fn conversation() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.add_contact("dave", Trust::Unverified);
    state.receive_message(
        "dave",
        "d1",
        "see you next week",
        datetime!(2026-11-20 18:40 UTC),
    );
    state.select("bob");
    state.receive_message(
        "bob",
        "b1",
        "are we still on for lunch?",
        datetime!(2026-11-23 13:58 UTC),
    );
    state.type_text("yes, 12:30 at the usual place. I will bring the documents we talked about");
    state.now = datetime!(2026-11-23 14:01 UTC);
    let action = state.handle_key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    ));
    assert!(matches!(
        action,
        Some(crate::tui::state::Action::Send { .. })
    ));
    state.message_sent("bob", "local-1", "m1");
    state.receipt("bob", "m1", Delivery::Read);
    state.type_text("great");
    state.now = datetime!(2026-11-23 14:02 UTC);
    state.handle_key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    ));
    state.message_sent("bob", "local-2", "m2");
    state.receipt("bob", "m2", Delivery::Delivered);
    state.type_text("see");
    state.now = datetime!(2026-11-23 14:03 UTC);
    state.handle_key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    ));
    state.message_sent("bob", "local-3", "m3");
    state.receive_message("carol", "c1", "hi alice", datetime!(2026-11-23 14:03 UTC));
    state.receive_message(
        "carol",
        "c2",
        "did you get my file?",
        datetime!(2026-11-23 14:04 UTC),
    );
    state.type_text("typing a reply");
    state.now = NOW;
    state
}

#[test]
fn chat_at_80x24() {
    let terminal = draw(&conversation(), 80, 24);
    assert_snapshot!(terminal.backend());
}

#[test]
fn chat_at_40x12_hides_the_list_and_counts_unread() {
    let terminal = draw(&conversation(), 40, 12);
    assert_snapshot!(terminal.backend());
}

#[test]
fn key_change_banner_at_80x24() {
    let mut state = conversation();
    state.key_changed("bob", SAFETY_NUMBER);
    let terminal = draw(&state, 80, 24);
    assert_snapshot!(terminal.backend());

    // The banner is red: it must not read like ordinary text.
    let buffer = terminal.backend().buffer();
    let banner_cell = &buffer[(2, 1)];
    assert_eq!(banner_cell.bg, Color::Red);
    assert!(buffer.content().iter().any(|c| c.symbol() == "⚠"));
}

#[test]
fn key_change_banner_survives_a_narrow_terminal() {
    let mut state = conversation();
    state.key_changed("bob", SAFETY_NUMBER);
    let terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
    let first_banner_row: String = (0..40)
        .map(|x| terminal.backend().buffer()[(x, 1)].symbol().to_owned())
        .collect();
    assert!(
        first_banner_row.contains("KEY CHANGED"),
        "{first_banner_row}"
    );
}

#[test]
fn replaced_by_another_client_shows_a_status_line_at_80x24() {
    let mut state = conversation();
    state.connection_ended(
        Connection::Replaced,
        "another umbra for this account connected",
    );
    // A later notice must not push the explanation off the screen.
    state.set_notice(
        crate::tui::state::Severity::Error,
        "could not decrypt a message",
    );
    let terminal = draw(&state, 80, 24);
    assert_snapshot!(terminal.backend());
    let status = row(&terminal, 1);
    assert!(status.contains("DISCONNECTED"), "{status}");
    assert!(status.contains("another umbra"), "{status}");
    assert_eq!(terminal.backend().buffer()[(2, 1)].bg, Color::Red);
    assert!(row(&terminal, 0).contains("replaced"));
}

#[test]
fn replaced_status_line_survives_a_narrow_terminal_above_the_key_banner() {
    let mut state = conversation();
    state.key_changed("bob", SAFETY_NUMBER);
    state.connection_ended(
        Connection::Replaced,
        "another umbra for this account connected",
    );
    let terminal = draw(&state, 40, 12);
    assert_snapshot!(terminal.backend());
    let status = row(&terminal, 1);
    assert!(status.contains("DISCONNECTED"), "{status}");
}

#[test]
fn escape_sequences_in_messages_are_drawn_inert() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("mallory\x1b[8m", Trust::Unverified);
    state.receive_message(
        "mallory\x1b[8m",
        "x1",
        "\x1b]0;pwned\x07\x1b[2Jclick \x1b]8;;http://evil.example\x1b\\here\x1b]8;;\x1b\\ \u{202e}gnp.exe\u{9b}31m\r\nfake: line",
        datetime!(2026-11-23 14:00 UTC),
    );
    let terminal = draw(&state, 80, 24);
    for cell in terminal.backend().buffer().content() {
        for c in cell.symbol().chars() {
            assert!(!c.is_control(), "control {c:?} reached the screen");
            assert_ne!(c, '\u{202e}');
        }
    }
    assert_snapshot!(terminal.backend());
}

#[test]
fn a_message_sent_from_another_device_is_drawn_as_ours_with_its_mark() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Unverified);
    state.sent_elsewhere(
        "bob",
        "m1",
        "\x1b]0;pwned\x07from the \u{202e}laptop",
        datetime!(2026-11-23 14:00 UTC),
    );
    let terminal = draw(&state, 80, 24);
    let screen = screen_text(&terminal);
    assert!(
        screen.contains("me (other device): from the laptop ✓"),
        "{screen}"
    );
    assert!(!screen.chars().any(|c| c.is_control() || is_bidi_control(c)));
}

#[test]
fn no_bidi_control_reaches_the_screen() {
    for bidi in BIDI_CONTROLS {
        let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
        state.connection = Connection::Online;
        let name = format!("mal{bidi}lory");
        state.add_contact(&name, Trust::Unverified);
        state.receive_message(
            &name,
            "x1",
            &format!("click{bidi}gnp.exe"),
            datetime!(2026-11-23 14:00 UTC),
        );
        let screen = screen_text(&draw(&state, 80, 24));
        // Positive control: the text around the control is drawn.
        assert!(screen.contains("clickgnp.exe"), "{bidi:?}: {screen}");
        assert!(screen.contains("mallory"), "{bidi:?}: {screen}");
        assert!(
            !screen.chars().any(is_bidi_control),
            "bidi control {bidi:?} reached the screen"
        );
    }
}

#[test]
fn pending_failed_and_typing_states_at_60x16() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.add_contact("bob", Trust::Unverified);
    state.set_connection(
        Connection::Connecting,
        Some("relay connection lost (refused); retrying in 4s"),
    );
    for text in ["queued while offline", "this one was refused"] {
        state.type_text(text);
        state.handle_key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        ));
    }
    state.message_queued("bob", "local-1", "m1");
    state.message_queued("bob", "local-2", "m2");
    state.refused("bob", "m2", "recipient queue full");
    state.typing("bob", true);
    let terminal = draw(&state, 60, 16);
    assert_snapshot!(terminal.backend());
}

#[test]
fn empty_state_explains_how_to_start() {
    let state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    let terminal = draw(&state, 80, 24);
    assert_snapshot!(terminal.backend());
}

#[test]
fn tiny_terminal_does_not_panic() {
    for (w, h) in [(1, 1), (10, 5), (19, 30), (30, 7), (20, 8)] {
        let _ = draw(&conversation(), w, h);
    }
}

mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    fn hostile_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\x1b[".to_owned()),
            Just("\x1b]0;".to_owned()),
            Just("\u{9b}".to_owned()),
            proptest::sample::select(BIDI_CONTROLS.to_vec()).prop_map(String::from),
            Just("\r\n".to_owned()),
            Just("日本".to_owned()),
            Just("😀".to_owned()),
            "[a-z ]{0,12}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a contact sends, and whatever the screen size, drawing
        /// neither panics nor puts a control character on screen.
        #[test]
        fn screen_never_shows_controls(
            name in hostile_text(),
            body in hostile_text(),
            number in hostile_text(),
            width in 1u16..100,
            height in 1u16..30,
        ) {
            let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
            state.receive_message(&name, "x1", &body, NOW);
            state.key_changed(&name, &number);
            state.type_text(&body);
            let terminal = draw(&state, width, height);
            for cell in terminal.backend().buffer().content() {
                for c in cell.symbol().chars() {
                    prop_assert!(!c.is_control(), "control {:?} on screen", c);
                    prop_assert!(!is_bidi_control(c), "bidi control {:?} on screen", c);
                }
            }
        }
    }
}
