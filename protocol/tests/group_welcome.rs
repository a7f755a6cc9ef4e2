//! Welcomes (docs/PROTOCOL.md §8.11) whose snapshot does not fit its Add:
//! the checks a new member makes before trusting an adder's snapshot.

mod group_people;

use group_people::{applied, People};
use umbra_protocol::group::{GroupChange, GroupChangeError, GroupLog, GroupWelcome};

/// The snapshot bytes with dave (account `[4; 16]`, added at version 1)
/// made an admin since version 1: a state that keeps every invariant of
/// 8.7 (one admin per version, none above the state's), so it decodes,
/// but no Add produces it.
fn with_dave_an_admin(state: &[u8]) -> Vec<u8> {
    let mut entry = vec![4u8; 16];
    entry.extend_from_slice(b"\x04dave\x00");
    let at = state
        .windows(entry.len())
        .position(|w| w == entry.as_slice())
        .expect("dave's entry, not an admin");
    let mut out = state[..at + entry.len() - 1].to_vec();
    out.extend_from_slice(&[0x01, 0x01]); // Some(1)
    out.extend_from_slice(&state[at + entry.len()..]);
    out
}

#[test]
fn a_welcome_whose_snapshot_makes_an_added_account_an_admin_is_refused() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let add = GroupChange::add(&p.keys[0], p.account(0), log.state(), vec![p.member(3)]).unwrap();
    applied(log.apply(add.clone(), &p.keys[0].public()).unwrap());
    let honest = GroupWelcome::new(log.state().clone(), add).unwrap();
    let forged_state = with_dave_an_admin(&honest.state_bytes());
    // The forged snapshot is a valid state on its own...
    let state = umbra_protocol::group::GroupState::from_bytes(&forged_state).unwrap();
    assert!(state.is_admin(&p.account(3)));
    // ...but not one the Add made: refused, whoever receives it.
    let refused = GroupWelcome::from_parts(&forged_state, honest.change_bytes()).unwrap_err();
    assert_eq!(
        refused,
        GroupChangeError::BadWelcome("the snapshot makes an account the Add adds an admin")
    );
    assert!(GroupWelcome::new(state, honest.add().clone()).is_err());
    // The honest one still starts dave's log, with dave no admin.
    let received = GroupWelcome::from_parts(&honest.state_bytes(), honest.change_bytes()).unwrap();
    let dave =
        GroupLog::from_welcome(&received, p.account(0), &p.keys[0].public(), p.account(3)).unwrap();
    assert!(!dave.state().is_admin(&p.account(3)));
}
