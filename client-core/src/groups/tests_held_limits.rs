//! The limits on items held for membership (docs/PROTOCOL.md §8.15), on
//! [`Held`] alone: each sender's share, fair sharing of a full group (or
//! of the total) by eviction from the sender holding the most, the items
//! of confirmed members never evicted, a completed sync giving up the
//! items of senders it does not list, and the lifetime.

use rand::rngs::OsRng;
use umbra_protocol::group::{
    ChangeHash, GroupChange, GroupLog, GroupPolicy, GroupState, NewMember,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::AccountId;

use crate::consts::{
    GROUP_HELD_LIFETIME, GROUP_HELD_PER_GROUP, GROUP_HELD_PER_SENDER, GROUP_HELD_TOTAL,
};

use super::{Held, Hold};
use crate::groups::GroupId;

fn held_key(sender: u8, n: usize) -> [u8; 32] {
    let mut k = [sender; 32];
    k[..8].copy_from_slice(&(n as u64).to_le_bytes());
    k
}

fn account(n: u8) -> AccountId {
    AccountId::from_bytes([n; 16])
}

/// A state of `group` whose members are the creator (account 0xee) and
/// `members`.
fn state_listing(group: GroupId, members: &[u8]) -> GroupState {
    let key = IdentityKeyPair::generate(&mut OsRng);
    let listed = std::iter::once(0xee)
        .chain(members.iter().copied())
        .map(|n| NewMember {
            account: account(n),
            username: format!("member{n}").parse().expect("name"),
        })
        .collect();
    let policy = GroupPolicy {
        members_may_rename: false,
    };
    let create =
        GroupChange::create(&key, account(0xee), group, "g", policy, listed).expect("create");
    GroupLog::create(create, &key.public())
        .expect("own create")
        .state()
        .clone()
}

#[test]
fn the_hold_limits_hold_and_a_full_group_is_shared_fairly() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([1; 32]);
    // Per sender: its own share only; a redelivery takes nothing more.
    for i in 0..GROUP_HELD_PER_SENDER {
        assert_eq!(
            held.hold(&g, &account(1), held_key(1, i), &head, now),
            Hold::Held
        );
    }
    let over = held_key(1, GROUP_HELD_PER_SENDER);
    assert_eq!(held.hold(&g, &account(1), over, &head, now), Hold::Full);
    assert_eq!(
        held.hold(&g, &account(1), held_key(1, 0), &head, now),
        Hold::Held
    );
    // Four strangers fill the group; a fifth sender is still held: the
    // latest item of the pair that held latest (sender 4) gives way.
    let per_group_senders = (GROUP_HELD_PER_GROUP / GROUP_HELD_PER_SENDER) as u8;
    for s in 2..=per_group_senders {
        for i in 0..GROUP_HELD_PER_SENDER {
            assert_eq!(
                held.hold(&g, &account(s), held_key(s, i), &head, now),
                Hold::Held
            );
        }
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    let new = account(9);
    assert_eq!(held.hold(&g, &new, held_key(9, 0), &head, now), Hold::Held);
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    assert_eq!(held.of(&g, &account(4)), GROUP_HELD_PER_SENDER - 1);
    // The evicted item, when it comes again, is refused (acknowledged
    // with why), once; then it is an ordinary newcomer that may not evict.
    let evicted = held_key(4, GROUP_HELD_PER_SENDER - 1);
    assert_eq!(
        held.hold(&g, &account(4), evicted, &head, now),
        Hold::Evicted
    );
    assert_eq!(held.hold(&g, &account(4), evicted, &head, now), Hold::Full);
    // The newcomer takes slots while someone holds two more than it.
    for i in 1..GROUP_HELD_PER_SENDER {
        let _ = held.hold(&g, &new, held_key(9, i), &head, now);
    }
    let mine = held.of(&g, &new);
    assert!(mine >= GROUP_HELD_PER_GROUP / 5, "{mine}");
    for s in 1..=per_group_senders {
        assert!(held.of(&g, &account(s)) <= mine + 1);
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    // Sixty-four senders of one item each: a newcomer cannot take a slot
    // (it would leave the victim with fewer than itself).
    let g2 = GroupId([2; 32]);
    for s in 0..GROUP_HELD_PER_GROUP as u8 {
        let (sender, key) = (account(100 + s), held_key(100 + s, 0));
        assert_eq!(held.hold(&g2, &sender, key, &head, now), Hold::Held);
    }
    assert_eq!(
        held.hold(&g2, &account(99), held_key(99, 0), &head, now),
        Hold::Full
    );
    // In all: two more groups fill the total; a newcomer elsewhere takes
    // a slot from the pair holding the most, in any group.
    for (n, g) in [(3u8, GroupId([3; 32])), (4, GroupId([4; 32]))] {
        for s in 0..per_group_senders {
            for i in 0..GROUP_HELD_PER_SENDER {
                let key = held_key(n * 16 + s, i);
                assert_eq!(held.hold(&g, &account(s), key, &head, now), Hold::Held);
            }
        }
    }
    assert_eq!(held.len(), GROUP_HELD_TOTAL);
    let g5 = GroupId([5; 32]);
    assert_eq!(
        held.hold(&g5, &account(5), held_key(250, 0), &head, now),
        Hold::Held
    );
    assert_eq!(held.len(), GROUP_HELD_TOTAL);
    // A release makes room.
    held.release(&held_key(1, 1));
    assert_eq!(held.len(), GROUP_HELD_TOTAL - 1);
    // After the lifetime an item comes again expired, and the others are
    // forgotten by the next hold.
    let later = now + crate::consts::millis(GROUP_HELD_LIFETIME);
    let key = held_key(1, 2);
    assert_eq!(held.hold(&g, &account(1), key, &head, later), Hold::Expired);
    assert_eq!(
        held.hold(&g5, &account(9), held_key(251, 0), &head, later),
        Hold::Held
    );
    assert_eq!(held.len(), 1);
}

#[test]
fn items_of_confirmed_members_are_never_evicted() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([1; 32]);
    let per_group_senders = (GROUP_HELD_PER_GROUP / GROUP_HELD_PER_SENDER) as u8;
    for s in 1..=per_group_senders {
        for i in 0..GROUP_HELD_PER_SENDER {
            assert_eq!(
                held.hold(&g, &account(s), held_key(s, i), &head, now),
                Hold::Held
            );
        }
    }
    // Their Add came: they open when they come again, nothing evicts them.
    let members: Vec<u8> = (1..=per_group_senders).collect();
    held.confirm(&g, &state_listing(g, &members));
    assert_eq!(
        held.hold(&g, &account(9), held_key(9, 0), &head, now),
        Hold::Full
    );
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
}

#[test]
fn a_completed_sync_gives_up_the_items_of_senders_it_does_not_list() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([1; 32]);
    for s in [1, 2, 3] {
        for i in 0..3 {
            assert_eq!(
                held.hold(&g, &account(s), held_key(s, i), &head, now),
                Hold::Held
            );
        }
    }
    // Sender 1 is listed by the state the sync brought; 2 and 3 are not.
    let state = state_listing(g, &[1]);
    assert_eq!(held.sync_completed(&g, &state, &head, now), 6);
    assert_eq!(held.len(), 3);
    assert_eq!(held.of(&g, &account(1)), 3);
    // Their items are refused when they come again, and so is anything
    // new from them while our head stays where the sync left it.
    assert_eq!(
        held.hold(&g, &account(2), held_key(2, 0), &head, now),
        Hold::NotMember
    );
    assert_eq!(
        held.hold(&g, &account(2), held_key(2, 9), &head, now),
        Hold::NotMember
    );
    // Once our head moves, it may have been added: held (and asked) again.
    let moved = ChangeHash([8; 32]);
    assert_eq!(
        held.hold(&g, &account(3), held_key(3, 9), &moved, now),
        Hold::Held
    );
}
