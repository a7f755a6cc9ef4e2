//! The group message index (`history_index.rs`): a lookup finds entries
//! through it, entries stored before it existed are still found (and
//! indexed once), a stale location finds nothing, and the work one
//! reaction costs does not grow with the group's history. Work is counted
//! as `GroupHistory` records the backend hands the vault to open, never
//! timed.

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::wire::AccountId;

use crate::conversation::HistoryEntry;
use crate::history::Counters;
use crate::records;
use crate::store::{ClientStore, CountingStore, KdfParams, Txn, Vault};
use crate::MessageId;

use super::history::{append, entries_with_id, GroupHistoryRecord};
use super::GroupId;

struct Fixture {
    store: Arc<CountingStore>,
    vault: Vault,
    group: GroupId,
    counters: Counters,
}

impl Fixture {
    async fn new() -> Self {
        let store = Arc::new(CountingStore::default());
        let backend: Arc<dyn ClientStore> = store.clone();
        let owner = AccountId::random(&mut OsRng);
        let params = KdfParams::insecure_for_tests();
        let vault = Vault::create(backend, b"pw", params, owner, &mut OsRng)
            .await
            .expect("vault");
        Self {
            store,
            vault,
            group: GroupId([3; 32]),
            counters: Counters::default(),
        }
    }

    fn opened(&self) -> usize {
        self.store.take_group_history_rows()
    }

    /// Appends one message `id` by `author` as the code does (indexed).
    async fn append(&mut self, author: &AccountId, id: MessageId) -> u64 {
        let seq = self.counters.next_history_seq;
        let entry = HistoryEntry::incoming(id, "hi".into(), 1, 2, None);
        let mut txn = Txn::new();
        let (vault, counters) = (&self.vault, &mut self.counters);
        append(
            vault,
            &mut txn,
            counters,
            &self.group,
            (author, "m"),
            &entry,
        )
        .await
        .expect("append");
        self.vault.commit(txn).await.expect("commit");
        seq
    }

    /// Writes message `id` by `author` as a version before the index did:
    /// the entry alone.
    async fn append_unindexed(&mut self, author: &AccountId, id: MessageId) -> u64 {
        let seq = self.counters.next_history_seq;
        self.counters.next_history_seq += 1;
        let entry = HistoryEntry::incoming(id, "old".into(), 1, 2, None);
        let record = GroupHistoryRecord::new(author, "m", &entry);
        let slot = records::group::history_entry(&self.vault, &self.group, seq);
        let mut txn = Txn::new();
        self.vault.save(&mut txn, slot, &record).expect("save");
        self.vault.commit(txn).await.expect("commit");
        seq
    }

    /// The lookup as an inbound reference makes it (indexing the group if
    /// it is not yet): each entry's (sequence, author).
    async fn lookup(&self, id: &MessageId) -> Vec<(u64, AccountId)> {
        let mut txn = Txn::new();
        let found = entries_with_id(&self.vault, &self.group, id, Some(&mut txn))
            .await
            .expect("lookup");
        self.vault.commit(txn).await.expect("commit");
        found.iter().map(|f| (f.seq, f.from_account)).collect()
    }
}

fn id(n: u8) -> MessageId {
    MessageId([n; 16])
}

#[tokio::test]
async fn an_entry_is_found_through_the_index() {
    let mut f = Fixture::new().await;
    let (alice, bob) = (AccountId::random(&mut OsRng), AccountId::random(&mut OsRng));
    let first = f.append(&alice, id(1)).await;
    f.append(&bob, id(2)).await;
    // Bob reuses Alice's id: both are found, Alice's (older) first.
    let reused = f.append(&bob, id(1)).await;
    // Alice reuses her own: only her oldest counts.
    f.append(&alice, id(1)).await;
    assert_eq!(f.lookup(&id(1)).await, vec![(first, alice), (reused, bob)]);
    f.opened();
    // Indexed now: the two entries named are all that is opened.
    assert_eq!(f.lookup(&id(1)).await, vec![(first, alice), (reused, bob)]);
    assert_eq!(f.opened(), 2);
    assert_eq!(f.lookup(&id(9)).await, vec![]);
    assert_eq!(f.opened(), 0);
    // A later entry is indexed as it is written.
    let late = f.append(&bob, id(7)).await;
    f.opened();
    assert_eq!(f.lookup(&id(7)).await, vec![(late, bob)]);
    assert_eq!(f.opened(), 1);
}

#[tokio::test]
async fn an_entry_stored_before_the_index_is_still_found() {
    let mut f = Fixture::new().await;
    let alice = AccountId::random(&mut OsRng);
    let old = f.append_unindexed(&alice, id(1)).await;
    f.append_unindexed(&alice, id(2)).await;
    f.append_unindexed(&alice, id(3)).await;
    // One written after the upgrade, in a group not indexed yet.
    let new = f.append(&alice, id(4)).await;
    f.opened();
    // The first lookup scans the group once and indexes it...
    assert_eq!(f.lookup(&id(1)).await, vec![(old, alice)]);
    assert_eq!(f.opened(), 4);
    // ...so the old entries are found through the index after.
    assert_eq!(f.lookup(&id(1)).await, vec![(old, alice)]);
    assert_eq!(f.lookup(&id(4)).await, vec![(new, alice)]);
    assert_eq!(f.opened(), 2);
    // A lookup that does not index (our own send's check) still finds it.
    let mut g = Fixture::new().await;
    let old = g.append_unindexed(&alice, id(1)).await;
    let found = entries_with_id(&g.vault, &g.group, &id(1), None)
        .await
        .expect("lookup");
    assert_eq!(found.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![old]);
}

#[tokio::test]
async fn a_removed_entrys_location_finds_nothing() {
    let mut f = Fixture::new().await;
    let (alice, bob) = (AccountId::random(&mut OsRng), AccountId::random(&mut OsRng));
    let gone = f.append(&alice, id(1)).await;
    f.append(&bob, id(2)).await;
    f.lookup(&id(1)).await;
    // No code prunes group history today; a row removed from the store
    // (by a future pruning, or by hand) leaves its location behind.
    let mut txn = Txn::new();
    let slot = records::group::history_entry(&f.vault, &f.group, gone);
    f.vault.remove(&mut txn, slot);
    f.vault.commit(txn).await.expect("commit");
    assert_eq!(f.lookup(&id(1)).await, vec![]);
    // Another entry in its sequence (never written: sequences only grow,
    // but a location must not trust it) is not taken for it either.
    let mut txn = Txn::new();
    let other = HistoryEntry::incoming(id(5), "x".into(), 1, 2, None);
    let record = GroupHistoryRecord::new(&alice, "m", &other);
    let slot = records::group::history_entry(&f.vault, &f.group, gone);
    f.vault.save(&mut txn, slot, &record).expect("save");
    f.vault.commit(txn).await.expect("commit");
    assert_eq!(f.lookup(&id(1)).await, vec![]);
}

#[tokio::test]
async fn one_reaction_opens_the_same_records_however_long_the_history() {
    let mut opened = Vec::new();
    for n in [8u8, 64, 200] {
        let mut f = Fixture::new().await;
        let (alice, bob) = (AccountId::random(&mut OsRng), AccountId::random(&mut OsRng));
        let target = f.append(&alice, id(0)).await;
        for i in 1..n {
            f.append(&bob, id(i)).await;
        }
        // The group's first lookup ever (a new group: already indexed
        // entry by entry, only the mark is missing) scans once.
        f.lookup(&id(0)).await;
        f.opened();
        for _ in 0..3 {
            assert_eq!(f.lookup(&id(0)).await, vec![(target, alice)]);
            assert_eq!(f.lookup(&id(250)).await, vec![]);
        }
        opened.push(f.opened());
    }
    // Three lookups of the target (one entry each) and three misses.
    assert_eq!(opened, vec![3, 3, 3]);
}

#[test]
fn the_stored_bytes_are_those_of_protocol_12_9() {
    use super::history_index::{GroupIndexRecord, GroupMessageLocation};
    let locations = GroupIndexRecord::Locations(vec![GroupMessageLocation {
        author: [1; 16],
        seq: 300,
    }]);
    let mut expected = vec![0x00, 0x01]; // format 0, one location
    expected.extend_from_slice(&[1; 16]); // author: a plain array
    expected.extend_from_slice(&[0xac, 0x02]); // seq 300
    assert_eq!(postcard::to_stdvec(&locations).unwrap(), expected);
    assert_eq!(
        postcard::to_stdvec(&GroupIndexRecord::Complete).unwrap(),
        [0x01]
    );
}
