//! Snapshot tests of group conversations on the chat screen, at 80x24 and
//! 40x12 like the 1:1 views (render_tests.rs): the list marks groups, the
//! title counts members, a line lists them (and says when any member may
//! rename the group), senders are named and
//! membership changes are drawn inline; a group we left blocks the input.

use insta::assert_snapshot;
use ratatui::style::Color;
use time::macros::datetime;

use crate::output::{Delivery, Trust};
use crate::tui::render_test_support::{draw, row, NOW};
use crate::tui::state::{group_key, ChatState, Connection, MemberInput};

const FAMILY: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
const CLIMBING: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn member(name: &str, admin: bool, me: bool) -> MemberInput<'_> {
    MemberInput { name, admin, me }
}

/// alice in "family" (open) with bob, carol and dave, a quiet group, and
/// a 1:1 chat with bob.
fn group_chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.receive_message(
        "bob",
        "b1",
        "see you there",
        datetime!(2026-11-23 11:20 UTC),
    );
    state.set_group(
        CLIMBING,
        "climbing",
        &[member("alice", false, true), member("erin", true, false)],
        true,
    );
    state.set_group(
        FAMILY,
        "family",
        &[
            member("alice", true, true),
            member("bob", false, false),
            member("carol", false, false),
        ],
        true,
    );
    // Its policy lets any member rename it: the members line says so.
    state.set_group_policy(FAMILY, true);
    state.select(&group_key(FAMILY));
    state.group_change(
        FAMILY,
        "alice created the group with bob, carol",
        datetime!(2026-11-23 13:50 UTC),
    );
    state.receive_group_message(
        FAMILY,
        "bob",
        "g1",
        "who is bringing dessert on sunday?",
        datetime!(2026-11-23 13:55 UTC),
    );
    state.type_text("I will");
    state.now = datetime!(2026-11-23 13:58 UTC);
    state.handle_key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    ));
    state.message_queued(&group_key(FAMILY), "local-1", "m1");
    state.receipt(&group_key(FAMILY), "m1", Delivery::Sent);
    state.group_change(FAMILY, "alice added dave", datetime!(2026-11-23 14:00 UTC));
    state.set_group(
        FAMILY,
        "family",
        &[
            member("alice", true, true),
            member("bob", false, false),
            member("carol", false, false),
            member("dave", false, false),
        ],
        true,
    );
    state.receive_group_message(
        FAMILY,
        "dave",
        "g2",
        "thanks for adding me",
        datetime!(2026-11-23 14:02 UTC),
    );
    state.receive_group_message(
        CLIMBING,
        "erin",
        "c1",
        "saturday?",
        datetime!(2026-11-23 14:04 UTC),
    );
    state.now = NOW;
    state
}

#[test]
fn group_chat_at_80x24() {
    let terminal = draw(&group_chat(), 80, 24);
    assert_snapshot!(terminal.backend());
    // The list marks groups; the title counts members; a line lists them.
    assert!(
        row(&terminal, 2).contains("# climbing"),
        "{}",
        row(&terminal, 2)
    );
    assert!(row(&terminal, 1).contains("(group, 4 members)"));
    assert!(
        row(&terminal, 2).contains("alice★, bob, carol, dave")
            || row(&terminal, 2).contains("you★")
    );
    // A change is dim, not a message of anyone's.
    let change_row = (0..24)
        .find(|y| row(&terminal, *y).contains("alice added dave"))
        .expect("the change is shown");
    let x = row(&terminal, change_row).find("alice added").unwrap();
    let x = u16::try_from(row(&terminal, change_row)[..x].chars().count()).unwrap();
    assert_eq!(
        terminal.backend().buffer()[(x, change_row)].fg,
        Color::DarkGray
    );
}

#[test]
fn group_chat_at_40x12() {
    let terminal = draw(&group_chat(), 40, 12);
    assert_snapshot!(terminal.backend());
    assert!(
        row(&terminal, 1).contains("family"),
        "{}",
        row(&terminal, 1)
    );
}

fn left_group() -> ChatState {
    let mut state = group_chat();
    state.group_change(
        FAMILY,
        "bob removed you (alice): you get no more messages from this group",
        NOW,
    );
    state.set_group(
        FAMILY,
        "family",
        &[member("bob", true, false), member("carol", false, false)],
        false,
    );
    state.type_text("wait");
    state
}

#[test]
fn a_group_we_are_out_of_blocks_the_input_at_80x24() {
    let terminal = draw(&left_group(), 80, 24);
    assert_snapshot!(terminal.backend());
    assert!(
        row(&terminal, 20).contains("no longer a member"),
        "{}",
        row(&terminal, 20)
    );
    assert!(
        row(&terminal, 1).contains("(not a member)"),
        "{}",
        row(&terminal, 1)
    );
}

#[test]
fn a_group_we_are_out_of_blocks_the_input_at_40x12() {
    let terminal = draw(&left_group(), 40, 12);
    assert_snapshot!(terminal.backend());
}

#[test]
fn hostile_group_and_member_names_are_drawn_inert() {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    let name = "fam\x1b]0;pwned\x07\u{202e}ily\r\nfake: line";
    state.set_group(
        FAMILY,
        name,
        &[member("mal\x1b[8mlory\u{2066}", true, false)],
        true,
    );
    state.receive_group_message(FAMILY, "mal\u{202e}lory", "x1", "\x1b[2Jhi", NOW);
    state.group_change(FAMILY, "mal\x1b[31mlory added \u{202e}eve", NOW);
    for (width, height) in [(80, 24), (40, 12)] {
        let terminal = draw(&state, width, height);
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(screen.contains("mallory"), "{screen}");
        for c in screen.chars() {
            assert!(!c.is_control(), "control {c:?} on screen");
            assert!(!matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'));
        }
    }
}

#[test]
fn members_typing_in_a_group_show_in_its_title() {
    let mut state = group_chat();
    state.group_typing(FAMILY, "bob", true);
    let terminal = draw(&state, 80, 24);
    assert!(
        row(&terminal, 1).contains("(group, 4 members) bob typing…"),
        "{}",
        row(&terminal, 1)
    );
    state.group_typing(FAMILY, "dave", true);
    let terminal = draw(&state, 80, 24);
    assert!(
        row(&terminal, 1).contains("bob, dave typing…"),
        "{}",
        row(&terminal, 1)
    );
    state.group_typing(FAMILY, "carol", true);
    let terminal = draw(&state, 80, 24);
    assert!(
        row(&terminal, 1).contains("3 typing…"),
        "{}",
        row(&terminal, 1)
    );
    // Typing in the group is not bob's 1:1 typing.
    state.select("bob");
    let terminal = draw(&state, 80, 24);
    assert!(
        !row(&terminal, 1).contains("typing"),
        "{}",
        row(&terminal, 1)
    );
}
