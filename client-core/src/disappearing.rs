//! Disappearing messages (docs/PROTOCOL.md §10.8, §12.18): each 1:1
//! conversation's (and each group's, `group.rs`) timer, the expiry every message stored under it gets,
//! and the sweep that deletes expired messages from the store.
//!
//! - The timer is a conversation setting (kind `DisappearingTimer`), set
//!   by an `ExpirationTimer` content either side sends; of two changes the
//!   larger `(sent_at_ms, id)` wins, so both sides converge whatever order
//!   the changes crossed in. The setter applies its change at once and
//!   sends it to our other devices as a sent transcript (§10.7), which
//!   they apply by the same rule.
//! - Each history entry appended while the timer is on gets an `Expiry`
//!   record: this device's clock when it stored the entry (ours when
//!   queued, the contact's on receipt: not on read, as Signal does, which
//!   would need a read state this client does not keep for every
//!   interface) plus the timer.
//! - The sweep deletes what expired: the history entry, every index slot
//!   naming it, the summary's copy (`Timeline::remove_expired`), its file
//!   record and the expiry record, then says which went
//!   ([`Event::MessagesExpired`]). It runs when the engine opens (for what
//!   expired while the client was closed) and then in a background task,
//!   woken at the next expiry or when a new one is stamped.
//!
//! Must never: keep a message's text after its expiry passed and a sweep
//! ran, delete a message that got no expiry, or take a change older than
//! the one held.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use umbra_protocol::consts::{MAX_EXPIRATION_TIMER_SECS, MIN_EXPIRATION_TIMER_SECS};
use umbra_protocol::content::Content;
use umbra_protocol::wire::Username;

use crate::conversation::{Direction, HistoryEntry};
use crate::engine::{now_ms, Engine, QueuedContent};
use crate::error::LogSafe;
use crate::records::{self, Prefix};
use crate::store::{StoreError, Txn, Vault};
use crate::trust::ContactRecord;
use crate::{Client, Error, Event, InvalidMessage, MessageId, PeerRef};

/// The longest the sweep task sleeps without looking: a stamp it was not
/// told of (a failed commit's notification is harmless, a lost one is
/// caught here) waits at most this long past its expiry.
const MAX_SWEEP_WAIT: Duration = Duration::from_secs(60);

/// A conversation's timer as stored (kind `DisappearingTimer`). An enum:
/// the variant index is the format.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredTimer {
    /// Format 0.
    V1 {
        /// 0 off, else the timer in seconds.
        seconds: u32,
        /// The winning change's `sent_at_ms` and id (the tie-break).
        sent_at_ms: u64,
        id: MessageId,
    },
}

/// When one history entry is deleted (kind `Expiry`). An enum: the
/// variant index is the format.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredExpiry {
    /// Format 0.
    V1 {
        account: [u8; 16],
        seq: u64,
        id: MessageId,
        outgoing: bool,
        expires_at_ms: u64,
    },
    /// Format 1: an entry of a group's history (`group.rs`).
    Group {
        group: [u8; 32],
        seq: u64,
        id: MessageId,
        expires_at_ms: u64,
    },
}

/// The earliest expiry stamped since the sweep last looked, and the bell
/// that wakes it (shared by the timeline, which stamps, and the task).
#[derive(Debug)]
pub(crate) struct Due {
    next_ms: AtomicU64,
    wake: Notify,
}

impl Default for Due {
    fn default() -> Self {
        Self {
            next_ms: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
        }
    }
}

impl Due {
    fn note(&self, expires_at_ms: u64) {
        if self.next_ms.fetch_min(expires_at_ms, Ordering::SeqCst) > expires_at_ms {
            self.wake.notify_one();
        }
    }
}

/// The timer held for `account`: 0 when off or never set.
pub(crate) async fn timer_of(vault: &Vault, account: &[u8; 16]) -> Result<u32, StoreError> {
    timer_at(vault, &records::disappearing::timer(vault, account)).await
}

/// The timer held at `slot`: 0 when off or never set.
pub(crate) async fn timer_at(
    vault: &Vault,
    slot: &records::Slot<records::disappearing::Timers>,
) -> Result<u32, StoreError> {
    Ok(match vault.load(slot).await? {
        Some(StoredTimer::V1 { seconds, .. }) => seconds,
        None => 0,
    })
}

/// Adds to `txn` the expiry of `account`'s entry `seq` if the
/// conversation's timer is on (the timeline calls it for every entry it
/// appends), and rings `due`.
pub(crate) async fn stamp(
    vault: &Vault,
    due: &Due,
    txn: &mut Txn,
    account: &[u8; 16],
    seq: u64,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let seconds = timer_of(vault, account).await?;
    if seconds == 0 {
        return Ok(());
    }
    let expires_at_ms = now_ms().saturating_add(u64::from(seconds) * 1000);
    vault.save(
        txn,
        records::disappearing::expiry(vault, account, seq),
        &StoredExpiry::V1 {
            account: *account,
            seq,
            id: entry.id,
            outgoing: entry.direction == Direction::Outgoing,
            expires_at_ms,
        },
    )?;
    due.note(expires_at_ms);
    Ok(())
}

/// Adds to `txn` the change `(seconds, sent_at_ms, id)` for `account` if
/// it wins over the one held (§10.8). Whether it did.
async fn apply_change(
    vault: &Vault,
    txn: &mut Txn,
    account: &[u8; 16],
    seconds: u32,
    sent_at_ms: u64,
    id: MessageId,
) -> Result<bool, StoreError> {
    let slot = records::disappearing::timer(vault, account);
    apply_change_at(vault, txn, slot, (seconds, sent_at_ms, id)).await
}

/// [`apply_change`] on the timer at `slot` (a contact's or a group's).
pub(crate) async fn apply_change_at(
    vault: &Vault,
    txn: &mut Txn,
    slot: records::Slot<records::disappearing::Timers>,
    (seconds, sent_at_ms, id): (u32, u64, MessageId),
) -> Result<bool, StoreError> {
    if let Some(StoredTimer::V1 {
        sent_at_ms: held_at,
        id: held_id,
        ..
    }) = vault.load(&slot).await?
    {
        if (sent_at_ms, id.0) <= (held_at, held_id.0) {
            return Ok(false);
        }
    }
    vault.save(
        txn,
        slot,
        &StoredTimer::V1 {
            seconds,
            sent_at_ms,
            id,
        },
    )?;
    Ok(true)
}

/// An `ExpirationTimer` from the contact (`by_peer`) or, in a transcript,
/// from another device of ours (inbound dispatch): applied if it wins,
/// with the event naming it; an older or repeated change is dropped.
pub(crate) async fn accept(
    engine: &Engine,
    txn: &mut Txn,
    contact: &ContactRecord,
    from: &str,
    content: Content,
    by_peer: bool,
) -> Result<Vec<Event>, Error> {
    let Content::ExpirationTimer {
        id,
        seconds,
        sent_at_ms,
    } = content
    else {
        return Ok(Vec::new());
    };
    if !apply_change(
        &engine.vault,
        txn,
        &contact.account,
        seconds,
        sent_at_ms,
        id,
    )
    .await?
    {
        return Ok(Vec::new());
    }
    Ok(vec![Event::DisappearingTimerChanged {
        with: from.to_owned(),
        by_peer,
        seconds,
    }])
}

/// Whether `seconds` is a timer a user may set: 0 (off) or within the
/// content limits.
pub(crate) fn check_seconds(seconds: u32) -> Result<(), Error> {
    if seconds == 0 || (MIN_EXPIRATION_TIMER_SECS..=MAX_EXPIRATION_TIMER_SECS).contains(&seconds) {
        return Ok(());
    }
    Err(
        InvalidMessage::Content(umbra_protocol::content::ContentError::TimerOutOfRange {
            seconds,
            min: MIN_EXPIRATION_TIMER_SECS,
            max: MAX_EXPIRATION_TIMER_SECS,
        })
        .into(),
    )
}

impl Client {
    /// Sets the disappearing-message timer of the conversation with `with`
    /// to `seconds` (0 turns it off) here and, through the outbox, on the
    /// contact's devices (docs/PROTOCOL.md §10.8, §12.18). Messages stored
    /// from now on are deleted from this device's store `seconds` after
    /// they were sent or received; those already stored keep what they
    /// had. Needs a contact we may send to.
    /// Returns the change's message id, whose `Sent` or `SendFailed`
    /// event follows as for a text.
    pub async fn set_disappearing(
        &self,
        with: &Username,
        seconds: u32,
    ) -> Result<MessageId, Error> {
        self.inner.set_disappearing(with, seconds).await
    }

    /// The conversation's disappearing-message timer in seconds, 0 when
    /// off.
    pub async fn disappearing_timer(&self, peer: &PeerRef) -> Result<u32, Error> {
        let contact = self.inner.known_contact(peer).await?;
        Ok(timer_of(&self.inner.vault, &contact.account).await?)
    }

    /// Deletes every message whose disappearing timer ran out now, rather
    /// than at the background sweep's next turn. How many were deleted.
    pub async fn sweep_expired(&self) -> Result<usize, Error> {
        Ok(self.inner.sweep_expired().await?.0)
    }
}

impl Engine {
    async fn set_disappearing(
        self: &Arc<Self>,
        with: &Username,
        seconds: u32,
    ) -> Result<MessageId, Error> {
        self.check_open()?;
        check_seconds(seconds)?;
        let id = MessageId::random(&mut OsRng);
        let sent_at_ms = now_ms();
        self.ensure_connected()?;
        let (shown, account, content) = {
            let (_guard, contact, mut records, _) = self.session_for_sending(with).await?;
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            let content = Content::ExpirationTimer {
                id,
                seconds,
                sent_at_ms,
            };
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut records,
                QueuedContent {
                    content: content.clone(),
                    id,
                    // Its `Sent` / `SendFailed` tell the caller it went.
                    visible: true,
                },
            )?;
            self.names.put_contact(&mut txn, &contact).await?;
            let account = contact.account;
            apply_change(&self.vault, &mut txn, &account, seconds, sent_at_ms, id).await?;
            self.put_counters(&mut txn, &counters)?;
            self.vault.commit(txn).await?;
            (self.names.display_name(&contact).await?, account, content)
        };
        self.outbox_wake.notify_one();
        // Our other devices apply it too (§15.8), once it is durable here,
        // so every device of ours deletes on the same schedule.
        self.sync_sent(account, &content).await;
        self.emit(Event::DisappearingTimerChanged {
            with: shown,
            by_peer: false,
            seconds,
        });
        Ok(id)
    }

    /// Deletes what expired by the engine's clock (see the module docs), in
    /// one transaction. How many entries went, and the next expiry left.
    pub(crate) async fn sweep_expired(&self) -> Result<(usize, Option<u64>), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        // Whatever was stamped until now is in the store or never will be.
        self.timeline.due.next_ms.store(u64::MAX, Ordering::SeqCst);
        let now = self.clock.now_ms();
        let all = Prefix::<records::disappearing::Expiries>::all();
        let mut txn = Txn::new();
        let mut expired: BTreeMap<[u8; 16], HashSet<(MessageId, bool)>> = BTreeMap::new();
        let mut in_groups = group::Expired::default();
        let mut next: Option<u64> = None;
        for (slot, stored) in self.vault.load_all(&all).await? {
            let expires_at_ms = match &stored {
                StoredExpiry::V1 { expires_at_ms, .. }
                | StoredExpiry::Group { expires_at_ms, .. } => *expires_at_ms,
            };
            if expires_at_ms > now {
                next = Some(next.map_or(expires_at_ms, |n| n.min(expires_at_ms)));
                continue;
            }
            match stored {
                StoredExpiry::V1 {
                    account,
                    id,
                    outgoing,
                    ..
                } => {
                    expired.entry(account).or_default().insert((id, outgoing));
                }
                StoredExpiry::Group { group, seq, id, .. } => in_groups.note(group, seq, id),
            }
            self.vault.remove(&mut txn, slot);
        }
        if expired.is_empty() && in_groups.is_empty() {
            return Ok((0, next));
        }
        let (group_count, group_events) = in_groups.erase(self, &mut txn).await?;
        let mut erased_count = group_count;
        let mut gone: Vec<([u8; 16], Vec<MessageId>)> = Vec::new();
        for (account, ids) in &expired {
            let erased = self.timeline.remove_expired(&mut txn, account, ids).await?;
            gone.push((*account, erased.iter().map(|e| e.id).collect()));
            for entry in &erased {
                let local = crate::files::local_id(entry.direction, account, &entry.id);
                let slot = records::file::slot(&self.vault, &local);
                if self.vault.load(&slot).await?.is_some() {
                    self.vault.remove(&mut txn, slot);
                }
            }
            erased_count += erased.len();
        }
        self.vault.commit(txn).await?;
        tracing::debug!(erased = erased_count, "disappearing messages deleted");
        // An open view drops them too; a contact no longer known has no
        // conversation on screen to drop them from.
        for event in group_events {
            self.emit(event);
        }
        for (account, ids) in gone {
            if ids.is_empty() {
                continue;
            }
            if let Some(contact) = self.contact_by_account(&account).await? {
                let with = self.names.display_name(&contact).await?;
                self.emit(Event::MessagesExpired { with, ids });
            }
        }
        Ok((erased_count, next))
    }

    /// Starts the background sweep (the engine calls it once it opened).
    pub(crate) fn start_expiry_sweep(self: &Arc<Self>) {
        let due = self.timeline.due.clone();
        // Only inside a runtime (every caller of the async API is).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_task(Arc::downgrade(self), due));
        }
    }
}

/// Sweeps, then sleeps until the next expiry (at most [`MAX_SWEEP_WAIT`])
/// or a new stamp; ends when the engine is dropped or closed.
async fn sweep_task(engine: Weak<Engine>, due: Arc<Due>) {
    loop {
        let wait = {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            match engine.sweep_expired().await {
                Ok((_, next)) => next.map_or(MAX_SWEEP_WAIT, |at| {
                    Duration::from_millis(at.saturating_sub(engine.clock.now_ms()))
                        .min(MAX_SWEEP_WAIT)
                }),
                Err(Error::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %LogSafe(&e), "disappearing-message sweep failed");
                    MAX_SWEEP_WAIT
                }
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = due.wake.notified() => {}
        }
    }
}

pub(crate) mod group;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_group;
