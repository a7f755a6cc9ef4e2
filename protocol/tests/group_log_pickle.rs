//! The stored form of a group log keeps what decides later changes
//! (docs/PROTOCOL.md §8.13): a side change dropped with the window is
//! remembered as a loser after a reload too, so a change built on it is
//! `Superseded` at once instead of waiting pending; and a log stored
//! before the losers were kept still loads.

use umbra_protocol::group::{GroupChange, GroupLog, LogOutcome};

mod group_people;

use group_people::People;

/// A log whose side change `lost` (a rename by bob, beaten by alice's
/// concurrent one) fell below the window, and a child of it.
fn with_a_dropped_loser(p: &People) -> (GroupLog, GroupChange, GroupChange) {
    let mut log = GroupLog::create(p.create(true), &p.keys[0].public()).unwrap();
    let parent = log.state().clone();
    let winner = GroupChange::rename(&p.keys[0], p.account(0), &parent, "alice's").unwrap();
    log.apply(winner, &p.keys[0].public()).unwrap();
    let lost = GroupChange::rename(&p.keys[1], p.account(1), &parent, "bob's").unwrap();
    let child = {
        let after = parent.apply(&lost).unwrap();
        GroupChange::rename(&p.keys[1], p.account(1), &after, "bob's again").unwrap()
    };
    assert!(matches!(
        log.apply(lost.clone(), &p.keys[1].public()).unwrap(),
        LogOutcome::Superseded { .. }
    ));
    // 32 more changes: the window moves past the branch point.
    for i in 0..32 {
        let rename = GroupChange::rename(&p.keys[0], p.account(0), log.state(), &format!("{i}"));
        log.apply(rename.unwrap(), &p.keys[0].public()).unwrap();
    }
    assert!(log.state_after(lost.hash()).is_none(), "dropped");
    assert!(log.knows_head(lost.hash()), "remembered");
    (log, lost, child)
}

#[test]
fn a_dropped_loser_is_remembered_across_a_reload() {
    let p = People::new();
    let (log, lost, child) = with_a_dropped_loser(&p);
    let mut reloaded = GroupLog::from_pickle(&log.to_pickle()).unwrap();
    assert!(reloaded.knows_head(lost.hash()));
    let outcome = reloaded.apply(child.clone(), &p.keys[1].public()).unwrap();
    assert_eq!(
        outcome,
        LogOutcome::Superseded {
            hash: *child.hash()
        }
    );
    assert_eq!(reloaded.pending_len(), 0);
    assert_eq!(reloaded.head(), log.head());
    // The same bytes again: one stored form for one log.
    assert_eq!(
        GroupLog::from_pickle(&log.to_pickle()).unwrap().to_pickle(),
        log.to_pickle()
    );
}

#[test]
fn a_log_stored_without_losers_loads_with_none() {
    let p = People::new();
    let (log, lost, child) = with_a_dropped_loser(&p);
    // §8.13 before the losers: the same fields without the last one (this
    // log keeps no side change, so its changes are its chain's).
    let base = serde_bytes::ByteBuf::from(log.base().to_bytes());
    let changes: Vec<serde_bytes::ByteBuf> = log
        .chain_above(log.base().head(), usize::MAX)
        .unwrap()
        .iter()
        .map(|c| serde_bytes::ByteBuf::from(c.as_bytes()))
        .collect();
    let pending: Vec<serde_bytes::ByteBuf> = Vec::new();
    let mut without = vec![umbra_protocol::pickle::PICKLE_VERSION];
    without.extend(postcard::to_stdvec(&(base, changes, pending)).unwrap());
    assert!(
        log.to_pickle().starts_with(&without),
        "a prefix of the new form"
    );
    let mut old = GroupLog::from_pickle(&without).unwrap();
    assert_eq!(old.state(), log.state());
    assert!(!old.knows_head(lost.hash()));
    // What that costs: the child waits as pending, it is never applied.
    let outcome = old.apply(child.clone(), &p.keys[1].public()).unwrap();
    assert_eq!(
        outcome,
        LogOutcome::Pending {
            hash: *child.hash()
        }
    );
    assert_eq!(old.head(), log.head());
}
