//! Welcomes a send carries again (`resend.rs`, docs/PROTOCOL.md §8.15):
//! a member given a key of ours made at or after its Add on the canonical
//! chain gets none (a key made on a branch a reorganisation dropped does
//! not count), a member that may still lack its welcome gets it, and one
//! Add's welcome is built once for all the members it brought in. The figures for a 1,000-member
//! group (docs/BENCHMARKS.md, "Welcomes sent again after a rotation") are
//! this file's counts: `cargo test -p umbra-client-core --lib
//! groups::tests_resend -- --nocapture`.

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::group::{GroupChange, GroupId, GroupLog, GroupPolicy, NewMember};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

use super::keys::OwnSenderKey;
use super::manager::Group;
use super::resend::{Reached, Welcomes};

fn member(i: usize) -> NewMember {
    NewMember {
        account: AccountId::from_bytes((i as u128 + 1).to_be_bytes()),
        username: Username::parse(&format!("member{i}")).expect("name"),
    }
}

/// Alice (member 0) creates a group with member 1 and then adds
/// `2..total` in Adds of at most 64: the bench's group shape.
fn group(alice: &IdentityKeyPair, total: usize) -> GroupLog {
    let me = member(0).account;
    let create = GroupChange::create(
        alice,
        me,
        GroupId::random(&mut OsRng),
        "bench",
        GroupPolicy {
            members_may_rename: false,
        },
        vec![member(0), member(1)],
    )
    .expect("create");
    let mut log = GroupLog::create(create, &alice.public()).expect("log");
    for chunk in (2..total).collect::<Vec<_>>().chunks(64) {
        let add = GroupChange::add(
            alice,
            me,
            log.state(),
            chunk.iter().map(|i| member(*i)).collect(),
        )
        .expect("add");
        log.apply(add, &alice.public()).expect("applied");
    }
    log
}

/// Bytes of the welcomes `accounts` would be sent, and how many there are.
fn cost(welcomes: &mut Welcomes<'_>, accounts: &[AccountId]) -> (usize, usize) {
    let mut bytes = 0;
    let mut count = 0;
    for account in accounts {
        if let Some(Content::GroupWelcome { state, change }) = welcomes.for_member(account) {
            bytes += state.len() + change.len();
            count += 1;
        }
    }
    (count, bytes)
}

#[test]
fn a_member_given_a_key_made_after_its_add_is_not_welcomed_again() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let me = member(0).account;
    let mut log = group(&alice, 4);
    let (bob, carol, dave) = (member(1).account, member(2).account, member(3).account);
    // First send: a fresh key, nobody had one. Carol and dave came in by
    // our Add and may never have had its welcome; bob by the Create.
    let rec = Group::new(log.clone());
    let mut first = Welcomes::new(&rec, me, Reached::before(None));
    assert!(first.for_member(&bob).is_none());
    assert!(first.for_member(&carol).is_some());
    assert!(first.for_member(&dave).is_some());
    assert_eq!(first.encoded, 1, "one Add, one snapshot");
    // That key (made at the Add's version) went to both.
    let mut key = OwnSenderKey::fresh(log.state());
    key.mark_distributed(&carol, umbra_protocol::wire::DeviceId::PRIMARY);
    key.mark_distributed(&dave, umbra_protocol::wire::DeviceId::PRIMARY);
    // Bob is removed: our next send rotates. Carol and dave had the
    // welcome ahead of the old key; nothing goes again.
    let remove = GroupChange::remove(&alice, me, log.state(), vec![bob]).expect("remove");
    log.apply(remove, &alice.public()).expect("applied");
    let rec = Group::new(log.clone());
    let mut rotated = Welcomes::new(&rec, me, Reached::before(Some(&key)));
    assert!(rotated.for_member(&carol).is_none());
    assert!(rotated.for_member(&dave).is_none());
    assert_eq!(rotated.encoded, 0);
    // A key made before the Add proves nothing of its welcome: it goes.
    let rec_before = Group::new(group(&alice, 4));
    let mut old = OwnSenderKey::fresh(rec_before.log.base());
    old.mark_distributed(&carol, umbra_protocol::wire::DeviceId::PRIMARY);
    let mut early = Welcomes::new(&rec_before, me, Reached::before(Some(&old)));
    assert!(early.for_member(&carol).is_some());
    // Nor does a key that did not reach the member.
    let mut only_carol = OwnSenderKey::fresh(log.state());
    only_carol.mark_distributed(&carol, umbra_protocol::wire::DeviceId::PRIMARY);
    let mut partly = Welcomes::new(&rec, me, Reached::before(Some(&only_carol)));
    assert!(partly.for_member(&carol).is_none());
    assert!(partly.for_member(&dave).is_some());
    // A member our state no longer lists gets none.
    assert!(partly.for_member(&bob).is_none());
}

#[test]
fn the_welcomes_of_a_thousand_member_group_after_a_rotation() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let me = member(0).account;
    let total = 1000;
    let mut log = group(&alice, total);
    let others: Vec<AccountId> = (1..total).map(|i| member(i).account).collect();
    // The first send after the group is built (a fresh key): every added
    // member gets its Add's welcome; before, one snapshot per member.
    let rec = Group::new(log.clone());
    let mut first = Welcomes::new(&rec, me, Reached::before(None));
    let (sent, bytes) = cost(&mut first, &others);
    assert_eq!(sent, total - 2, "all but bob (the Create's)");
    let adds = (total - 2).div_ceil(64);
    assert_eq!(first.encoded, adds, "one snapshot per Add, not per member");
    println!(
        "first send: {sent} welcomes, {bytes} bytes, {} snapshots encoded",
        first.encoded
    );
    // That key went to everyone; a removal rotates it.
    let mut key = OwnSenderKey::fresh(log.state());
    for account in &others {
        key.mark_distributed(account, umbra_protocol::wire::DeviceId::PRIMARY);
    }
    let remove = GroupChange::remove(&alice, me, log.state(), vec![others[0]]).expect("remove");
    log.apply(remove, &alice.public()).expect("applied");
    let rec = Group::new(log);
    let left = &others[1..];
    // What the rule before this change sent: every lacking member again.
    let before: usize = left
        .iter()
        .filter_map(|a| super::sync::welcome_again(&rec, a, &me))
        .map(|c| match c {
            Content::GroupWelcome { state, change } => state.len() + change.len(),
            _ => 0,
        })
        .sum();
    let mut rotated = Welcomes::new(&rec, me, Reached::before(Some(&key)));
    let (sent, bytes) = cost(&mut rotated, left);
    assert_eq!((sent, bytes, rotated.encoded), (0, 0, 0));
    println!(
        "send after a rotation: before {} welcomes, {before} bytes, {} snapshots; now {sent}, {bytes} bytes, {}",
        left.len(),
        left.len(),
        rotated.encoded
    );
}

/// A key made on a branch that lost the fork choice proves nothing of a
/// welcome on the winning one, whatever its version: alice (an admin
/// since 1) adds dave and removes bob on one branch, and makes a key
/// there (at version 3) that dave gets; the creator's concurrent rename
/// wins, and alice makes her Add again on it, at version 3 too. The old
/// rule (epoch 3 >= the Add's version 3) skipped dave, who holds a state
/// of the dropped branch and never had the winning Add's welcome.
#[test]
fn a_key_made_on_a_losing_branch_does_not_skip_the_welcome_after_a_reorg() {
    let (boss, alice) = (
        IdentityKeyPair::generate(&mut OsRng),
        IdentityKeyPair::generate(&mut OsRng),
    );
    let (b, a, bob, dave) = (
        member(9).account,
        member(0).account,
        member(1).account,
        member(3),
    );
    let create = GroupChange::create(
        &boss,
        b,
        GroupId::random(&mut OsRng),
        "reorg",
        GroupPolicy {
            members_may_rename: false,
        },
        vec![member(9), member(0), member(1)],
    )
    .expect("create");
    let mut log = GroupLog::create(create, &boss.public()).expect("log");
    let promote = GroupChange::promote(&boss, b, log.state(), a).expect("promote");
    log.apply(promote, &boss.public()).expect("applied");
    let parent = log.state().clone();
    // Alice's branch: Add dave, Remove bob, and a key made there.
    let add = GroupChange::add(&alice, a, log.state(), vec![dave.clone()]).expect("add");
    log.apply(add, &alice.public()).expect("applied");
    let remove = GroupChange::remove(&alice, a, log.state(), vec![bob]).expect("remove");
    log.apply(remove, &alice.public()).expect("applied");
    let mut losing = OwnSenderKey::fresh(log.state());
    losing.mark_distributed(&dave.account, umbra_protocol::wire::DeviceId::PRIMARY);
    assert_eq!(losing.epoch, 3);
    // The creator outranks her at the branch point: a reorganisation.
    let rename = GroupChange::rename(&boss, b, &parent, "the boss's").expect("rename");
    match log.apply(rename, &boss.public()).expect("applied") {
        umbra_protocol::group::LogOutcome::Applied(moved) => assert_eq!(moved.undone.len(), 2),
        other => panic!("expected a reorganisation: {other:?}"),
    }
    // Alice's Add made again on the winning head, at version 3.
    let again = GroupChange::add(&alice, a, log.state(), vec![dave.clone()]).expect("add");
    log.apply(again.clone(), &alice.public()).expect("applied");
    assert_eq!((log.head(), again.version()), (again.hash(), 3));
    let rec = Group::new(log.clone());
    let mut welcomes = Welcomes::new(&rec, a, Reached::before(Some(&losing)));
    match welcomes.for_member(&dave.account) {
        Some(Content::GroupWelcome { change, .. }) => {
            assert_eq!(change, again.as_bytes(), "the winning Add's welcome")
        }
        other => panic!("dave is welcomed again: {other:?}"),
    }
    // A key made at the winning Add, or later on the chain, does skip him.
    let mut at_add = OwnSenderKey::fresh(log.state());
    at_add.mark_distributed(&dave.account, umbra_protocol::wire::DeviceId::PRIMARY);
    let mut skip = Welcomes::new(&rec, a, Reached::before(Some(&at_add)));
    assert!(skip.for_member(&dave.account).is_none());
    let later = GroupChange::rename(&boss, b, log.state(), "later").expect("rename");
    log.apply(later, &boss.public()).expect("applied");
    let mut after = OwnSenderKey::fresh(log.state());
    after.mark_distributed(&dave.account, umbra_protocol::wire::DeviceId::PRIMARY);
    let rec = Group::new(log);
    let mut skip = Welcomes::new(&rec, a, Reached::before(Some(&after)));
    assert!(skip.for_member(&dave.account).is_none());
    // A key stored before heads were kept proves nothing.
    after.made_at = None;
    let mut legacy = Welcomes::new(&rec, a, Reached::before(Some(&after)));
    assert!(legacy.for_member(&dave.account).is_some());
}
