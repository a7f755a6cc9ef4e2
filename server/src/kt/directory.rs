//! Each node's in-memory key-transparency directory (docs/PROTOCOL.md 16):
//! the map ([`KtMap`]), the epoch log and the newest signed head, rebuilt
//! from the store at start and then kept up to date from every epoch any
//! node publishes; the epoch's seal (new versions, map root, signed head)
//! when this node is the one publishing; and the proofs the frames serve.
//!
//! Must never: serve a root, head or proof of an epoch the database has not
//! committed (the state's lock is held across the publishing transaction);
//! keep serving from a state that may differ from the database (a failed
//! publication or an inconsistent row marks it stale, and it is rebuilt);
//! or sign a head whose time is before the previous head's.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Mutex};
use umbra_wire::kt::{
    ConsistencyProof, EpochEntry, EpochLog, HistoryProof, InclusionProof, KtError, KtLabel, KtMap,
    LeafIndex, LeafValue, LookupProof, SignedEpochHead,
};

use super::key_file::KtKeys;
use crate::store::kt::{KtBatch, KtEpochRow, KtLabelState, KtPublishInput, KtVersionRow};
use crate::store::{SharedStore, StoreError};

/// What a node holds of the published directory.
#[derive(Default)]
struct State {
    map: KtMap,
    log: EpochLog,
    /// Every epoch's entry, epoch `e` at `e`.
    entries: Vec<EpochEntry>,
    /// The newest epoch's head.
    head: Option<SignedEpochHead>,
    /// Set when this state may differ from the database.
    stale: bool,
}

impl State {
    fn latest(&self) -> Option<u64> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The newest head, unless this state may differ from the database:
    /// a failed seal or catch-up can leave an epoch in memory that never
    /// committed, and a head of it served now would be contradicted by the
    /// one the next round signs for the same epoch (a fork, to a client).
    /// Until a round rebuilds, readers answer as if no epoch existed.
    fn served_head(&self) -> Option<&SignedEpochHead> {
        if self.stale {
            return None;
        }
        self.head.as_ref()
    }

    /// Applies committed rows (epoch order), checking that they rebuild
    /// every stored entry's map root.
    fn apply(
        &mut self,
        versions: &[KtVersionRow],
        epochs: &[KtEpochRow],
    ) -> Result<(), StoreError> {
        let corrupt = StoreError::Corrupt;
        let mut versions = versions.iter().peekable();
        for row in epochs {
            let entry = EpochEntry::decode(&row.entry)
                .map_err(|_| corrupt("stored kt epoch entry malformed"))?;
            if entry.epoch != row.epoch
                || Some(row.epoch) != self.latest().map_or(Some(0), |l| l.checked_add(1))
            {
                return Err(corrupt("stored kt epochs are not numbered without gaps"));
            }
            while let Some(v) = versions.next_if(|v| v.epoch == row.epoch) {
                let (value, rest) =
                    LeafValue::take(&v.value).map_err(|_| corrupt("stored kt value malformed"))?;
                if !rest.is_empty() {
                    return Err(corrupt("stored kt value malformed"));
                }
                let record = self
                    .map
                    .publish(LeafIndex(v.index), value, v.epoch)
                    .map_err(|_| corrupt("stored kt version out of order"))?;
                if record.version != v.version {
                    return Err(corrupt("stored kt versions are not numbered without gaps"));
                }
            }
            if self.map.root() != entry.map_root {
                return Err(corrupt(
                    "stored kt versions do not give the epoch's map root",
                ));
            }
            let head = SignedEpochHead::decode(&row.head)
                .map_err(|_| corrupt("stored kt head malformed"))?;
            if head.entry != entry {
                return Err(corrupt("stored kt head is not of its epoch's entry"));
            }
            self.log.push(&row.entry);
            self.entries.push(entry);
            self.head = Some(head);
        }
        if versions.next().is_some() {
            return Err(corrupt("stored kt version of an epoch not stored"));
        }
        Ok(())
    }

    /// That the newest stored head is one this relay signed, over the log
    /// the stored entries give: the map roots alone (checked by `apply`)
    /// would let a database restored under another key file, or a head
    /// row rewritten, be served and extended as if it were ours.
    fn check_newest_head(&self, keys: &KtKeys) -> Result<(), StoreError> {
        let Some(head) = &self.head else {
            return Ok(());
        };
        let corrupt = StoreError::Corrupt;
        head.verify(&keys.public().0)
            .map_err(|_| corrupt("the newest stored kt head is not signed by this key file"))?;
        let root = self
            .log
            .root(head.entry.epoch.saturating_add(1))
            .map_err(|_| corrupt("stored kt entries do not give the newest head's log"))?;
        if root != head.log_root {
            return Err(corrupt(
                "the newest stored kt head's log root is not the stored entries' log",
            ));
        }
        Ok(())
    }
}

/// A node's key-transparency directory.
pub struct KtDirectory {
    keys: KtKeys,
    state: Mutex<State>,
    /// The newest epoch this node holds, for whoever waits for one.
    epochs: watch::Sender<Option<u64>>,
}

impl std::fmt::Debug for KtDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtDirectory").finish_non_exhaustive()
    }
}

/// What a publishing round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Nothing new anywhere.
    Idle,
    /// Caught up with epochs other nodes published, up to this one.
    CaughtUp(u64),
    /// Published this epoch.
    Published(u64),
}

impl KtDirectory {
    /// The directory of `keys`, empty until [`sync`](Self::sync) or a round.
    pub fn new(keys: KtKeys) -> Self {
        Self {
            keys,
            state: Mutex::new(State {
                stale: true,
                ..State::default()
            }),
            epochs: watch::Sender::new(None),
        }
    }

    /// Changes to the newest epoch this node holds (an event to wait on,
    /// instead of polling the store).
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.epochs.subscribe()
    }

    /// The keys (their public halves are what clients pin).
    pub fn keys(&self) -> &KtKeys {
        &self.keys
    }

    /// One round of the publisher: rebuilds a stale state, catches up with
    /// epochs other nodes published, and publishes the next epoch if any
    /// label is pending (or no epoch exists yet).
    pub async fn round(&self, store: &SharedStore) -> Result<Round, StoreError> {
        let outcome = self.round_locked(store).await;
        let latest = self.state.lock().await.latest();
        self.epochs.send_if_modified(|held| {
            let changed = *held != latest;
            *held = latest;
            changed
        });
        outcome
    }

    async fn round_locked(&self, store: &SharedStore) -> Result<Round, StoreError> {
        // An idle round (the common case) reads the store without holding
        // the state, so it never makes a proof wait for the database.
        let (stored, pending) = store.kt_status().await?;
        {
            let state = self.state.lock().await;
            if !state.stale && !pending && stored.is_some() && stored == state.latest() {
                return Ok(Round::Idle);
            }
        }
        let mut state = self.state.lock().await;
        if state.stale {
            let (versions, epochs) = store.kt_since(None).await?;
            let mut fresh = State::default();
            fresh.apply(&versions, &epochs)?;
            fresh.check_newest_head(&self.keys)?;
            *state = fresh;
        }
        let (stored, pending) = store.kt_status().await?;
        let mut outcome = Round::Idle;
        if stored > state.latest() {
            let (versions, epochs) = store.kt_since(state.latest()).await?;
            if let Err(e) = state
                .apply(&versions, &epochs)
                .and_then(|()| state.check_newest_head(&self.keys))
            {
                state.stale = true;
                return Err(e);
            }
            if let Some(latest) = state.latest() {
                outcome = Round::CaughtUp(latest);
            }
        }
        if !pending && stored.is_some() {
            return Ok(outcome);
        }
        let after = state.latest();
        let keys = &self.keys;
        // Whether the seal ran: a failure before it (waiting for another
        // node's publication past the statement timeout) changed nothing in
        // memory, and must not make the next round rebuild the whole map.
        let mut sealed = false;
        let published = store
            .kt_publish(after, &mut |input| {
                sealed = true;
                seal(&mut state, keys, input)
            })
            .await;
        match published {
            Ok(Some(epoch)) => Ok(Round::Published(epoch)),
            Ok(None) => Ok(match state.latest() {
                Some(latest) if Some(latest) != after => Round::CaughtUp(latest),
                _ => outcome,
            }),
            Err(e) => {
                // The seal may have changed the map for an epoch that did
                // not commit (or did: a commit whose answer was lost).
                if sealed {
                    state.stale = true;
                }
                Err(e)
            }
        }
    }

    /// The newest epoch this node knows.
    pub async fn latest_epoch(&self) -> Option<u64> {
        let state = self.state.lock().await;
        state.served_head().map(|h| h.entry.epoch)
    }

    /// The newest head, encoded.
    pub async fn latest_head(&self) -> Option<Vec<u8>> {
        self.state.lock().await.served_head().map(|h| h.encode())
    }

    /// The newest head with the consistency proof from epoch `from`'s head
    /// (`None` for a client that has none) and the inclusion proof of
    /// epoch `entry_of`'s entry, with that entry.
    pub async fn head_with_proofs(
        &self,
        from: Option<u64>,
        entry_of: Option<u64>,
    ) -> Result<HeadAnswer, KtError> {
        let state = self.state.lock().await;
        let head = state.served_head().ok_or(KtError::BadLogSize)?;
        let size = head.entry.epoch + 1;
        let consistency = from
            .map(|a| {
                state
                    .log
                    .consistency_proof(a.checked_add(1).ok_or(KtError::BadLogSize)?, size)
            })
            .transpose()?;
        let inclusion = entry_of
            .map(|e| {
                let entry = *state
                    .entries
                    .get(usize::try_from(e).map_err(|_| KtError::BadLogSize)?)
                    .ok_or(KtError::BadLogSize)?;
                Ok::<_, KtError>((entry, state.log.inclusion_proof(e, size)?))
            })
            .transpose()?;
        Ok(HeadAnswer {
            head: head.clone(),
            consistency,
            inclusion,
        })
    }

    /// The lookup proof of `label` in the newest epoch, with that epoch's
    /// head (encoded): one lock, so the two are of the same epoch.
    pub async fn lookup(&self, label: &KtLabel) -> Option<(Vec<u8>, LookupProof)> {
        let mut state = self.state.lock().await;
        let head = state.served_head()?.encode();
        Some((head, state.map.prove_lookup(self.keys.vrf(), label)))
    }

    /// The history proof of `label` from version `first`, with the head.
    pub async fn history(
        &self,
        label: &KtLabel,
        first: u64,
    ) -> Option<Result<(Vec<u8>, HistoryProof), KtError>> {
        let mut state = self.state.lock().await;
        let head = state.served_head()?.encode();
        Some(
            state
                .map
                .prove_history(self.keys.vrf(), label, first)
                .map(|p| (head, p)),
        )
    }

    /// The newest version number of `label`, `None` if never published.
    pub async fn latest_version(&self, label: &KtLabel) -> Option<u64> {
        let (index, _) = self.keys.vrf().evaluate(label);
        let state = self.state.lock().await;
        state.served_head()?;
        state.map.latest(&index).map(|r| r.version)
    }
}

/// The head and proofs [`KtDirectory::head_with_proofs`] answers.
#[derive(Debug, Clone)]
pub struct HeadAnswer {
    /// The newest head.
    pub head: SignedEpochHead,
    /// From the head the client named to it.
    pub consistency: Option<ConsistencyProof>,
    /// An older entry and its inclusion in the newest log.
    pub inclusion: Option<(EpochEntry, InclusionProof)>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The value a label's state commits to, and whether it says "nothing"
/// (no identity, no list; or no holder), which a label never published
/// does not need a version for.
fn value_of(state: &KtLabelState) -> (KtLabel, LeafValue, bool) {
    match state {
        KtLabelState::Account {
            account,
            identity,
            device_list,
        } => (
            KtLabel::Account(*account),
            LeafValue::account(identity.as_deref(), device_list.as_deref()),
            identity.is_none() && device_list.is_none(),
        ),
        KtLabelState::Username { name, holder } => (
            KtLabel::Username(name.clone()),
            LeafValue::Username { account: *holder },
            holder.is_none(),
        ),
    }
}

/// The publishing transaction's callback: catch up, add the epoch's
/// versions, sign its head.
fn seal(
    state: &mut State,
    keys: &KtKeys,
    input: KtPublishInput,
) -> Result<Option<KtBatch>, StoreError> {
    let corrupt = StoreError::Corrupt;
    state.apply(&input.versions, &input.epochs)?;
    let epoch = input.next_epoch;
    if state.latest().map_or(0, |l| l + 1) != epoch {
        return Err(corrupt("kt publication is not for the next epoch"));
    }
    let mut versions = Vec::new();
    for label_state in &input.labels {
        let (label, value, says_nothing) = value_of(label_state);
        let (index, _) = keys.vrf().evaluate(&label);
        match state.map.latest(&index) {
            Some(last) if last.value == value => continue,
            None if says_nothing => continue,
            _ => {}
        }
        let record = state
            .map
            .publish(index, value, epoch)
            .map_err(|_| corrupt("kt version could not be added to the map"))?;
        versions.push(KtVersionRow {
            index: index.0,
            version: record.version,
            epoch,
            value: value.encode(),
        });
    }
    if versions.is_empty() && epoch > 0 {
        return Ok(None);
    }
    let previous = state.entries.last().map_or(0, |e| e.published_at_ms);
    let entry = EpochEntry {
        epoch,
        published_at_ms: now_ms().max(previous),
        map_root: state.map.root(),
    };
    let encoded = entry.encode();
    state.log.push(&encoded);
    state.entries.push(entry);
    let head = keys
        .directory()
        .sign_head(&entry, &state.log)
        .map_err(|_| corrupt("kt head could not be signed"))?;
    let head_bytes = head.encode();
    state.head = Some(head);
    Ok(Some(KtBatch {
        versions,
        epoch: KtEpochRow {
            epoch,
            entry: encoded.to_vec(),
            head: head_bytes,
        },
    }))
}
