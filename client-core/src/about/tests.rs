//! The §10.6 rule on its own: windows at their edges, the newest edit
//! winning, the reaction set and its bound, and deletes erasing.

use umbra_protocol::wire::AccountId;

use super::*;
use crate::conversation::{HistoryEntry, MessageAbout};

const T: u64 = 1_795_000_000_000;

fn author() -> AccountId {
    AccountId::from_bytes([1; 16])
}

fn other() -> AccountId {
    AccountId::from_bytes([2; 16])
}

fn text() -> HistoryEntry {
    HistoryEntry::incoming(MessageId([7; 16]), "hello".into(), T, T + 5, None)
}

fn reference(at: u64, change: Change) -> Reference {
    Reference {
        id: MessageId([8; 16]),
        target: MessageId([7; 16]),
        sent_at_ms: at,
        change,
    }
}

fn edit(at: u64, body: &str) -> Reference {
    reference(
        at,
        Change::Edit {
            body: body.to_owned(),
        },
    )
}

fn react(emoji: &str, remove: bool) -> Reference {
    reference(
        T,
        Change::React {
            emoji: emoji.to_owned(),
            remove,
        },
    )
}

/// `reference` from `sender` on `entry`, a text `sender` wrote if `own`.
fn on(
    entry: &mut HistoryEntry,
    sender: AccountId,
    own: bool,
    r: &Reference,
) -> Result<bool, ChangeRefusal> {
    let target = Target {
        entry,
        by_sender: own,
        is_text: true,
    };
    apply(target, &sender, r)
}

#[test]
fn an_edit_is_taken_within_the_window_on_the_authors_clock_only() {
    let mut entry = text();
    assert_eq!(
        on(&mut entry, author(), true, &edit(T - 1, "early")),
        Err(ChangeRefusal::OutsideEditWindow)
    );
    assert_eq!(
        on(
            &mut entry,
            author(),
            true,
            &edit(T + EDIT_WINDOW_MS + 1, "late")
        ),
        Err(ChangeRefusal::OutsideEditWindow)
    );
    assert_eq!(entry, text(), "a refusal changes nothing");
    assert_eq!(
        on(
            &mut entry,
            author(),
            true,
            &edit(T + EDIT_WINDOW_MS, "last")
        ),
        Ok(true)
    );
    assert_eq!(entry.body, "last");
    assert_eq!(entry.about.edited_at_ms, Some(T + EDIT_WINDOW_MS));
}

#[test]
fn the_newest_edit_wins_and_only_the_author_edits() {
    let mut entry = text();
    assert_eq!(
        on(&mut entry, other(), false, &edit(T + 1, "theirs")),
        Err(ChangeRefusal::NotTheAuthor)
    );
    assert_eq!(
        on(&mut entry, author(), true, &edit(T + 2, "two")),
        Ok(true)
    );
    for at in [T + 1, T + 2] {
        assert_eq!(
            on(&mut entry, author(), true, &edit(at, "older")),
            Err(ChangeRefusal::Superseded)
        );
    }
    assert_eq!(
        on(&mut entry, author(), true, &edit(T + 3, "three")),
        Ok(true)
    );
    assert_eq!(entry.body, "three");
}

#[test]
fn reactions_are_a_set_per_reactor_and_bounded() {
    let mut entry = text();
    assert_eq!(
        on(&mut entry, other(), false, &react("👍", false)),
        Ok(true)
    );
    assert_eq!(
        on(&mut entry, other(), false, &react("👍", false)),
        Ok(false)
    );
    assert_eq!(
        on(&mut entry, author(), true, &react("👍", false)),
        Ok(true)
    );
    assert_eq!(
        on(&mut entry, other(), false, &react("🎉", true)),
        Ok(false)
    );
    assert_eq!(on(&mut entry, other(), false, &react("👍", true)), Ok(true));
    assert_eq!(
        entry.about.reactions,
        vec![Reaction {
            by: author(),
            emoji: "👍".into()
        }]
    );
    for n in 1..MAX_REACTIONS_PER_REACTOR {
        let emoji = format!("e{n}");
        assert_eq!(
            on(&mut entry, author(), true, &react(&emoji, false)),
            Ok(true)
        );
    }
    assert_eq!(
        on(&mut entry, author(), true, &react("one-more", false)),
        Err(ChangeRefusal::TooManyReactions)
    );
    // Another reactor has its own allowance.
    assert_eq!(on(&mut entry, other(), false, &react("x", false)), Ok(true));
}

#[test]
fn a_delete_erases_the_text_and_reactions_and_ends_every_change() {
    let mut entry = text();
    on(&mut entry, other(), false, &react("👍", false)).expect("reacts");
    let delete = reference(T + 10, Change::Delete);
    assert_eq!(
        on(&mut entry, other(), false, &delete),
        Err(ChangeRefusal::NotTheAuthor)
    );
    assert_eq!(
        on(
            &mut entry,
            author(),
            true,
            &reference(T + DELETE_WINDOW_MS + 1, Change::Delete)
        ),
        Err(ChangeRefusal::OutsideDeleteWindow)
    );
    assert_eq!(on(&mut entry, author(), true, &delete), Ok(true));
    assert_eq!(entry.body, "");
    assert_eq!(
        entry.about,
        MessageAbout {
            deleted: true,
            ..MessageAbout::default()
        }
    );
    assert_eq!(on(&mut entry, author(), true, &delete), Ok(false));
    assert_eq!(
        on(&mut entry, author(), true, &edit(T + 11, "back")),
        Err(ChangeRefusal::NotEditable)
    );
    assert_eq!(
        on(&mut entry, other(), false, &react("👍", false)),
        Err(ChangeRefusal::TargetDeleted)
    );
}

#[test]
fn a_file_is_reacted_to_but_never_edited_or_deleted() {
    let mut entry = text();
    let file = |entry: &mut HistoryEntry, r: &Reference| {
        let target = Target {
            entry,
            by_sender: true,
            is_text: false,
        };
        apply(target, &author(), r)
    };
    assert_eq!(
        file(&mut entry, &edit(T + 1, "x")),
        Err(ChangeRefusal::NotEditable)
    );
    assert_eq!(
        file(&mut entry, &reference(T + 1, Change::Delete)),
        Err(ChangeRefusal::NotEditable)
    );
    assert_eq!(file(&mut entry, &react("📎", false)), Ok(true));
}

#[test]
fn references_round_trip_through_their_content() {
    for change in [
        Change::Delete,
        Change::Edit { body: "b".into() },
        Change::React {
            emoji: "👍".into(),
            remove: true,
        },
    ] {
        let r = reference(T, change);
        assert_eq!(Reference::of(&r.content()), Some(r));
    }
    assert_eq!(
        Reference::of(&umbra_protocol::content::Content::Typing { started: true }),
        None
    );
}
