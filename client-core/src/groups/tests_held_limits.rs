//! The limits on items held for membership (docs/PROTOCOL.md §8.15), on
//! [`Held`] alone: each sender's share, fair sharing of a full group (or
//! of the total) by eviction from the sender holding the most, the items
//! of confirmed members never evicted, a completed sync making the items
//! of senders it does not list evict-first (a lagging answerer's loses no
//! new member's key, one-item strangers do not keep one out), and the
//! lifetime.

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
fn a_lagging_answerers_completed_sync_loses_no_new_members_key() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([1; 32]);
    // Dave (5) was added past us: his key is held. Erin (6), added past
    // us too, has a message held, her key not yet come.
    let (dave, erin) = (account(5), account(6));
    assert_eq!(held.hold(&g, &dave, held_key(5, 0), &head, now), Hold::Held);
    assert_eq!(held.hold(&g, &erin, held_key(6, 1), &head, now), Hold::Held);
    // The asked member lags (it never saw either Add): its sync completes
    // at our head with a state listing neither. Nothing is given up.
    let lagging = state_listing(g, &[1]);
    assert_eq!(held.sync_completed(&g, &lagging, &head, now), 2);
    assert_eq!(held.of(&g, &dave), 1);
    assert_eq!(
        held.hold(&g, &dave, held_key(5, 0), &head, now),
        Hold::HeldEvictFirst
    );
    // Erin's key, arriving after, is held too (evict-first, no sync asked).
    assert_eq!(
        held.hold(&g, &erin, held_key(6, 0), &head, now),
        Hold::HeldEvictFirst
    );
    assert_eq!(held.of(&g, &erin), 2);
    // A state that lists them comes: their items are a member's now, and a
    // flood of strangers filling the group evicts none of them.
    held.confirm(&g, &state_listing(g, &[5, 6]));
    let moved = ChangeHash([8; 32]);
    for s in 10..10 + (GROUP_HELD_PER_GROUP / GROUP_HELD_PER_SENDER) as u8 {
        for i in 0..GROUP_HELD_PER_SENDER {
            let _ = held.hold(&g, &account(s), held_key(s, i), &moved, now);
        }
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    assert_eq!(held.of(&g, &dave), 1);
    assert_eq!(held.of(&g, &erin), 2);
    assert_eq!(
        held.hold(&g, &dave, held_key(5, 0), &moved, now),
        Hold::Held
    );
}

#[test]
fn strangers_of_one_item_each_do_not_keep_out_a_new_members_key() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([2; 32]);
    let strangers = GROUP_HELD_PER_GROUP as u8;
    for s in 0..strangers {
        let (sender, key) = (account(100 + s), held_key(100 + s, 0));
        assert_eq!(held.hold(&g, &sender, key, &head, now), Hold::Held);
    }
    // A sync completes: no state lists them. They keep their slots.
    assert_eq!(
        held.sync_completed(&g, &state_listing(g, &[]), &head, now),
        GROUP_HELD_PER_GROUP
    );
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    // Dave (9), added past us after the answer, takes a stranger's slot.
    let dave = account(9);
    assert_eq!(held.hold(&g, &dave, held_key(9, 0), &head, now), Hold::Held);
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    assert_eq!(held.of(&g, &dave), 1);
    // The latest-held stranger gave way; its item is refused when it
    // comes again, and a new item of a known stranger cannot take dave's.
    let last = 100 + strangers - 1;
    assert_eq!(held.of(&g, &account(last)), 0);
    assert_eq!(
        held.hold(&g, &account(last), held_key(last, 0), &head, now),
        Hold::Evicted
    );
    let again = held_key(100, 1);
    assert_eq!(held.hold(&g, &account(100), again, &head, now), Hold::Full);
    // Fresh strangers take the evict-first slots, never dave's.
    for s in 0..strangers {
        let sender = account(200u8.wrapping_add(s));
        let _ = held.hold(&g, &sender, held_key(200u8.wrapping_add(s), 0), &head, now);
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    assert_eq!(held.of(&g, &dave), 1);
    // Once our head moves, a stranger is held ordinarily (and asks).
    let moved = ChangeHash([8; 32]);
    held.release(&held_key(9, 0));
    assert_eq!(
        held.hold(&g, &account(101), held_key(101, 7), &moved, now),
        Hold::Held
    );
}

#[test]
fn strangers_a_sync_saw_take_only_their_like_and_ask_again_once_the_head_moves() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([3; 32]);
    // Strangers 1-3 hold 16 each, 4 holds 14 and 6 one: 63 in all.
    let fill = |sender: u8, count: usize| {
        for i in 0..count {
            let key = held_key(sender, i);
            assert_eq!(held.hold(&g, &account(sender), key, &head, now), Hold::Held);
        }
    };
    for s in 1..=3 {
        fill(s, GROUP_HELD_PER_SENDER);
    }
    fill(4, GROUP_HELD_PER_SENDER - 2);
    fill(6, 1);
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP - 1);
    // A sync completes listing none of them: all evict-first.
    let none = state_listing(g, &[]);
    assert_eq!(
        held.sync_completed(&g, &none, &head, now),
        GROUP_HELD_PER_GROUP - 1
    );
    // Dave (9), whom the sync did not see, takes the last free slot as an
    // ordinary item, which asks a sync.
    let dave = account(9);
    assert_eq!(held.hold(&g, &dave, held_key(9, 0), &head, now), Hold::Held);
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    // Stranger 6, seen by the sync, takes an evict-first slot from one
    // holding two more than it (3, which held latest of the sixteens),
    // and asks nothing.
    assert_eq!(
        held.hold(&g, &account(6), held_key(6, 1), &head, now),
        Hold::HeldEvictFirst
    );
    assert_eq!(held.of(&g, &account(3)), GROUP_HELD_PER_SENDER - 1);
    // However many more they send, the strangers the sync saw never take
    // dave's slot: they are refused, or take one of their like.
    for i in 2..GROUP_HELD_PER_SENDER {
        let outcome = held.hold(&g, &account(6), held_key(6, i), &head, now);
        assert!(
            matches!(outcome, Hold::HeldEvictFirst | Hold::Full),
            "{outcome:?}"
        );
        let more = held.hold(&g, &account(4), held_key(4, 100 + i), &head, now);
        assert!(
            matches!(more, Hold::HeldEvictFirst | Hold::Full),
            "{more:?}"
        );
        assert_eq!(held.of(&g, &dave), 1);
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    // Our head moves (the stranger may have been added): its item, still
    // evict-first, asks a sync when it comes again.
    let moved = ChangeHash([8; 32]);
    assert_eq!(
        held.hold(&g, &account(1), held_key(1, 0), &moved, now),
        Hold::Held
    );
    // A fresh stranger takes an evict-first slot, never dave's.
    assert_eq!(
        held.hold(&g, &account(20), held_key(20, 0), &moved, now),
        Hold::Held
    );
    assert_eq!(held.of(&g, &dave), 1);
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
}

#[test]
fn a_stranger_a_sync_saw_never_takes_an_ordinary_slot() {
    let held = Held::default();
    let (now, head) = (1_000_000, ChangeHash([7; 32]));
    let g = GroupId([4; 32]);
    // Sixty-one strangers of one item each, then a sync without them.
    let strangers = GROUP_HELD_PER_GROUP as u8 - 3;
    for s in 0..strangers {
        let (sender, key) = (account(100 + s), held_key(100 + s, 0));
        assert_eq!(held.hold(&g, &sender, key, &head, now), Hold::Held);
    }
    held.sync_completed(&g, &state_listing(g, &[]), &head, now);
    // Dave (9), unseen by it, fills the group with three ordinary items.
    let dave = account(9);
    for i in 0..3 {
        assert_eq!(held.hold(&g, &dave, held_key(9, i), &head, now), Hold::Held);
    }
    assert_eq!(held.len(), GROUP_HELD_PER_GROUP);
    // A stranger the sync saw holds one; dave holds two more than it, but
    // an evict-first newcomer takes only evict-first slots: refused.
    let eve = account(100);
    assert_eq!(
        held.hold(&g, &eve, held_key(100, 1), &head, now),
        Hold::Full
    );
    assert_eq!(held.of(&g, &dave), 3);
}
