//! The outbox pump: hands each queued message's envelopes, one per device
//! of its contact (docs/PROTOCOL.md §12.4, §15.3), to the relay in as few
//! `Send` frames as fit (packed as group fan-outs are,
//! `groups::fanout::pack_lengths`), and settles what the relay answered per
//! device.
//!
//! An accepted envelope leaves its entry; one refused for good leaves it
//! too and is remembered as a refusal; one the relay could not take now
//! stays. The entry is finished only when every envelope is settled:
//! `Sent` when every device accepted, a `SendFailed` per refused device
//! otherwise (and `Failed` if no device accepted). A device the relay no
//! longer knows (`UnknownRecipient`) makes the pump fetch the contact's
//! device list (§15.3 rule 1); a refusal of a device the newer list no
//! longer names is not reported (the device was removed).
//!
//! Must never: drop an envelope the relay did not settle, re-encrypt an
//! entry, or lose a device's refusal without reporting it.

use std::sync::Arc;
use std::time::Duration;

use umbra_protocol::wire::{
    AccountId, Address, DeviceId, ErrorCode, OutgoingEnvelope, Request, Response, SendOutcome,
    MAX_FRAME_BYTES, MAX_RECIPIENTS_PER_SEND,
};

use crate::conversation::DeliveryStatus;
use crate::engine::Engine;
use crate::failure::RelayMisbehaved;
use crate::groups::fanout::{outgoing_len, pack_lengths};
use crate::outbox::{DeviceEnvelope, DeviceRefusal, OutboxEntry, PendingMessage};
use crate::records::{self, Prefix, Slot};
use crate::store::{Durability, Txn};
use crate::{Error, Event, SendFailure};

/// What one attempt at an entry's envelopes did.
struct Attempt {
    /// Envelopes the relay did not settle, in order.
    left: Vec<DeviceEnvelope>,
    /// Why the attempt stopped early, if it did (the rest stays queued).
    stopped: Option<Error>,
    /// A retryable refusal of some envelope (they stay queued).
    busy: Option<ErrorCode>,
    /// Whether a device was refused as unknown (its list may be newer).
    unknown_device: bool,
}

impl Engine {
    pub(crate) async fn pending_outbox(&self) -> Result<Vec<PendingMessage>, Error> {
        Ok(self
            .vault
            .load_all(&Prefix::<records::outbox::Outbox>::all())
            .await?
            .into_iter()
            .map(|(_, e)| e.describe())
            .collect())
    }

    /// Hands queued envelopes to the relay, oldest message first, until
    /// the outbox is empty or the relay cannot take more right now.
    pub(crate) async fn pump_outbox(self: &Arc<Self>) -> Result<(), Error> {
        loop {
            let first = self
                .vault
                .load_all(&Prefix::<records::outbox::Outbox>::all())
                .await?
                .into_iter()
                .next();
            let Some((slot, mut entry)) = first else {
                // Then the group fan-outs, which may hold sender keys and
                // changes queued after these pairwise entries.
                self.pump_fanouts().await?;
                self.outbox_changed.send_modify(|n| *n += 1);
                return Ok(());
            };
            let before = entry.envelopes.len();
            let attempt = self.send_envelopes(&mut entry).await?;
            if attempt.unknown_device {
                self.drop_refusals_of_removed(&mut entry).await;
            }
            if !attempt.left.is_empty() {
                entry.envelopes = attempt.left;
                if entry.envelopes.len() != before {
                    // Some devices were settled: they are not sent again.
                    self.keep_outbox_entry(slot, &entry).await?;
                    self.outbox_changed.send_modify(|n| *n += 1);
                }
                return Err(match (attempt.stopped, attempt.busy) {
                    (Some(e), _) => e,
                    (None, Some(code)) => Error::relay(code, "relay busy; will retry".into(), None),
                    (None, None) => Error::Protocol(RelayMisbehaved::EmptySendResult),
                });
            }
            entry.envelopes.clear();
            self.finish_sent(slot, &entry).await?;
            self.outbox_changed.send_modify(|n| *n += 1);
        }
    }

    /// Sends `entry`'s envelopes, frame by frame, counting the accepted
    /// and refused ones into it; returns what is left.
    async fn send_envelopes(self: &Arc<Self>, entry: &mut OutboxEntry) -> Result<Attempt, Error> {
        let account = AccountId::from_bytes(entry.to_account);
        let lens: Vec<usize> = entry
            .envelopes
            .iter()
            .map(|e| outgoing_len(e.envelope.len()))
            .collect();
        let runs = pack_lengths(&lens, MAX_FRAME_BYTES, MAX_RECIPIENTS_PER_SEND);
        let envelopes = std::mem::take(&mut entry.envelopes);
        let mut attempt = Attempt {
            left: Vec::new(),
            stopped: None,
            busy: None,
            unknown_device: false,
        };
        for run in runs {
            let batch = &envelopes[run];
            if attempt.stopped.is_some() {
                attempt.left.extend_from_slice(batch);
                continue;
            }
            let request = Request::Send {
                messages: batch
                    .iter()
                    .map(|e| OutgoingEnvelope {
                        to: Address {
                            account,
                            device: DeviceId(e.device),
                        },
                        envelope: e.envelope.clone(),
                    })
                    .collect(),
            };
            let refuse =
                |entry: &mut OutboxEntry, attempt: &mut Attempt, e: &DeviceEnvelope, code| {
                    attempt.unknown_device |= code == ErrorCode::UnknownRecipient;
                    entry
                        .refused
                        .push(DeviceRefusal::new(DeviceId(e.device), code));
                };
            match self.request(request).await {
                Ok(Response::SendResult { results }) if results.len() == batch.len() => {
                    for (e, result) in batch.iter().zip(results) {
                        match result {
                            SendOutcome::Accepted { .. } => entry.accepted += 1,
                            SendOutcome::Rejected { code } if code.is_retryable() => {
                                attempt.busy = Some(code);
                                attempt.left.push(e.clone())
                            }
                            SendOutcome::Rejected { code } => refuse(entry, &mut attempt, e, code),
                        }
                    }
                }
                Ok(Response::SendResult { .. }) => {
                    attempt.stopped = Some(Error::Protocol(RelayMisbehaved::EmptySendResult));
                    attempt.left.extend_from_slice(batch);
                }
                Ok(other) => {
                    attempt.stopped = Some(crate::error::unexpected("SendResult", &other));
                    attempt.left.extend_from_slice(batch);
                }
                Err(Error::Relay { code, .. }) if !code.is_retryable() => {
                    // The whole frame was refused for good (a limit).
                    for e in batch {
                        refuse(entry, &mut attempt, e, code);
                    }
                }
                Err(Error::Store(e)) => return Err(Error::Store(e)),
                Err(e) => {
                    attempt.stopped = Some(e);
                    attempt.left.extend_from_slice(batch);
                }
            }
        }
        Ok(attempt)
    }

    /// §15.3 rule 1: the relay does not know a device we wrote to, so the
    /// contact's list is fetched; a refusal of a device the list no longer
    /// names is dropped (it was removed; the message reached the others).
    /// A fetch that fails keeps every refusal.
    async fn drop_refusals_of_removed(self: &Arc<Self>, entry: &mut OutboxEntry) {
        let account = AccountId::from_bytes(entry.to_account);
        let held = match self.refresh_device_list(&account).await {
            Ok(Some(held)) => held,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %crate::error::LogSafe(&e), "device list refresh failed");
                return;
            }
        };
        entry
            .refused
            .retain(|r| r.code() != ErrorCode::UnknownRecipient || held.allows(DeviceId(r.device)));
    }

    /// Rewrites an entry that still has envelopes waiting.
    async fn keep_outbox_entry(
        &self,
        slot: Slot<records::outbox::Outbox>,
        entry: &OutboxEntry,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault.save(&mut txn, slot, entry)?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// Finishes an entry every envelope of which is settled: its status and
    /// events by what the devices answered.
    async fn finish_sent(
        &self,
        slot: Slot<records::outbox::Outbox>,
        entry: &OutboxEntry,
    ) -> Result<(), Error> {
        let status = if entry.accepted > 0 {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Failed
        };
        self.finish_outbox_entry(slot, entry, status).await?;
        if !entry.visible {
            return Ok(());
        }
        let to = entry.to_username.clone();
        match (entry.accepted, entry.refused.as_slice()) {
            (_, []) => self.emit(Event::Sent { to, id: entry.id }),
            // No device took it: the message failed, as for one device.
            (0, [first, ..]) => self.emit(Event::SendFailed {
                to,
                id: entry.id,
                reason: SendFailure::Refused(first.code()),
            }),
            // Some devices have it: each refused one is reported.
            (_, refused) => {
                for r in refused {
                    self.emit(Event::SendFailed {
                        to: to.clone(),
                        id: entry.id,
                        reason: SendFailure::Device {
                            device: r.device,
                            code: r.code(),
                        },
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn finish_outbox_entry(
        &self,
        slot: Slot<records::outbox::Outbox>,
        entry: &OutboxEntry,
        status: DeliveryStatus,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault.remove(&mut txn, slot);
        if entry.visible {
            self.timeline
                .update_status(&mut txn, &entry.to_account, &entry.id, status)
                .await?;
        }
        // Durable with the next batch, not before the answer: losing this
        // one in a power cut only sends the same ciphertext again, which
        // the recipient drops as a repeat; the sync it saves is one of the
        // three on a send's path (docs/BENCHMARKS.md, "Daemon").
        self.vault.commit_with(txn, Durability::WithNext).await?;
        Ok(())
    }

    pub(crate) async fn flush_outbox(self: &Arc<Self>, timeout: Duration) -> Result<(), Error> {
        let mut changed = self.outbox_changed.subscribe();
        let wait = async {
            loop {
                if self
                    .vault
                    .load_all(&Prefix::<records::outbox::Outbox>::all())
                    .await?
                    .is_empty()
                    && !self.fanouts_pending().await?
                {
                    return Ok(());
                }
                self.ensure_connected()?;
                self.outbox_wake.notify_one();
                let ended = self.conn_state.borrow().ended_because();
                if let Some(reason) = ended {
                    return Err(self.connection_ended(reason));
                }
                // Re-check at least every second: the connection state may change too.
                let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}
