//! The fixed people and the group they start, shared by the group-log
//! suites (`group_log.rs`, `group_log_props.rs`).
#![allow(dead_code)] // each suite uses part of it

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use umbra_protocol::group::{ChangeHash, GroupChange, GroupId, GroupPolicy, LogOutcome, NewMember};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::wire::{AccountId, Username};

/// Five people with fixed identities; account i is `[i + 1; 16]`, so the
/// account order is the index order.
pub struct People {
    pub keys: Vec<IdentityKeyPair>,
}

const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

impl People {
    pub fn new() -> Self {
        let keys = (0..NAMES.len())
            .map(|i| IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([i as u8 + 1; 32])))
            .collect();
        Self { keys }
    }
    pub fn account(&self, i: usize) -> AccountId {
        AccountId::from_bytes([i as u8 + 1; 16])
    }
    pub fn member(&self, i: usize) -> NewMember {
        NewMember {
            account: self.account(i),
            username: Username::parse(NAMES[i]).unwrap(),
        }
    }
    pub fn public(&self, account: AccountId) -> IdentityPublic {
        let i = usize::from(account.as_bytes()[0]) - 1;
        self.keys[i].public()
    }
    /// Alice creates a group of alice, bob, carol (bob and carol members).
    pub fn create(&self, may_rename: bool) -> GroupChange {
        GroupChange::create(
            &self.keys[0],
            self.account(0),
            GroupId([7; 32]),
            "book club",
            GroupPolicy {
                members_may_rename: may_rename,
            },
            vec![self.member(2), self.member(0), self.member(1)],
        )
        .unwrap()
    }
}

pub fn applied(outcome: LogOutcome) -> Vec<ChangeHash> {
    match outcome {
        LogOutcome::Applied(moved) => moved.applied.iter().map(|c| *c.hash()).collect(),
        other => panic!("expected Applied, got {other:?}"),
    }
}
