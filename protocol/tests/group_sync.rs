//! What a group sync answer may send (docs/PROTOCOL.md §8.15): the
//! canonical changes above an asker's head, bounded, and whether a head a
//! peer reports is one the log knows.
//!
//! Must never: hand out a change that is not on the canonical chain, or
//! call a head known that the log never kept.

use umbra_protocol::consts::REORG_WINDOW;
use umbra_protocol::group::{ChangeHash, GroupChange, GroupLog};

mod group_people;

use group_people::People;

#[test]
fn chain_above_gives_the_canonical_changes_above_a_head_oldest_first() {
    let p = People::new();
    let create = p.create(false);
    let mut log = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
    let mut renames = Vec::new();
    for i in 0..3 {
        let rename =
            GroupChange::rename(&p.keys[0], p.account(0), log.state(), &format!("n{i}")).unwrap();
        log.apply(rename.clone(), &p.keys[0].public()).unwrap();
        renames.push(rename);
    }
    let hashes = |v: Vec<&GroupChange>| v.iter().map(|c| *c.hash()).collect::<Vec<_>>();
    let all: Vec<ChangeHash> = renames.iter().map(|c| *c.hash()).collect();
    assert_eq!(
        log.chain_above(create.hash(), 32).map(hashes),
        Some(all.clone())
    );
    assert_eq!(
        log.chain_above(renames[0].hash(), 32).map(hashes),
        Some(all[1..].to_vec())
    );
    assert_eq!(log.chain_above(log.head(), 32).map(hashes), Some(vec![]));
    // Bounded, from the oldest.
    assert_eq!(
        log.chain_above(create.hash(), 2).map(hashes),
        Some(all[..2].to_vec())
    );
    // A head the log does not hold: nothing to build an answer on.
    assert_eq!(log.chain_above(&ChangeHash([7; 32]), 32), None);
    assert!(log.knows_head(create.hash()) && log.knows_head(renames[1].hash()));
    assert!(!log.knows_head(&ChangeHash([7; 32])));
}

#[test]
fn a_head_below_the_window_is_not_known() {
    let p = People::new();
    let create = p.create(false);
    let mut log = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
    for i in 0..=REORG_WINDOW {
        let rename =
            GroupChange::rename(&p.keys[0], p.account(0), log.state(), &format!("n{i}")).unwrap();
        log.apply(rename, &p.keys[0].public()).unwrap();
    }
    // The Create fell out of the window: an asker there gets no chain.
    assert!(!log.knows_head(create.hash()));
    assert_eq!(log.chain_above(create.hash(), usize::MAX), None);
    let base = *log.base().head();
    assert_eq!(
        log.chain_above(&base, usize::MAX).map(|v| v.len()),
        Some(REORG_WINDOW)
    );
}
