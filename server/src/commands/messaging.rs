//! Store-and-forward: queuing sealed envelopes, acknowledging them, and
//! forwarding ephemeral frames to whoever is online.
//!
//! Must never: answer a Send before its batch has committed, log envelope
//! bytes or a sender next to a recipient, or reveal through an ephemeral
//! reply whether the recipient is online.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use umbra_wire::{AccountId, Address, ErrorCode, OutgoingEnvelope, Response, SendOutcome};

use super::{Handled, Refusal};
use crate::app::AppState;
use crate::auth::tokens::{unix_now, unix_now_ms};
use crate::metrics::Metrics;
use crate::store::group_commit::SubmittedUnder;
use crate::store::{EnqueueRejection, NewMessage};

/// Queues a batch; each envelope gets its own outcome, in order. `me`'s
/// account is charged for the bytes in this node's memory (the sender
/// budget, `crate::sender_budget`) before the store sees them, and never
/// reaches the store: a total written with the messages would link them to
/// their sender. An envelope the store then refuses is refunded, so refused
/// envelopes are not charged; so is every envelope of a Send that fails or
/// is cut off by the request deadline (`HeldCharges` refunds on drop), so
/// a Send repeated after an unknown outcome is charged once.
pub(super) async fn send(
    state: &AppState,
    me: Address,
    under: SubmittedUnder,
    messages: Vec<OutgoingEnvelope>,
) -> Handled {
    // One clock reading: the acceptance time the recipient is shown
    // (milliseconds, 10.x `Deliver`) and the seconds the expiry and the
    // sender budget count in.
    let now_ms = unix_now_ms();
    let now = now_ms / 1000;
    let expires_at = now.saturating_add(state.limits.message_ttl.as_secs());
    let mut results: Vec<Option<SendOutcome>> = Vec::with_capacity(messages.len());
    let mut batch = Vec::with_capacity(messages.len());
    let current = current_devices(state, &messages).await?;
    let mut charges = state.sender_budgets.hold(me.account);
    for message in messages {
        let refusal = if message.envelope.len() > state.limits.max_envelope_bytes {
            Err(ErrorCode::EnvelopeTooLarge)
        } else if !current.contains(&message.to) {
            // A removed device, or one never enrolled (PROTOCOL.md 15.5):
            // refused as a nonexistent account is, so nothing is stored
            // for it.
            Err(ErrorCode::UnknownRecipient)
        } else if charges.charge(message.envelope.len() as u64, now) {
            Ok(())
        } else {
            Err(ErrorCode::RateLimited)
        };
        match refusal {
            Err(code) => results.push(Some(SendOutcome::Rejected { code })),
            Ok(()) => {
                results.push(None);
                batch.push(NewMessage {
                    recipient: message.to,
                    envelope: message.envelope,
                    received_at_ms: now_ms,
                    expires_at,
                });
            }
        }
    }
    let expected = batch.len();
    // Even with every envelope refused above, the batch goes to the
    // committer: its token is re-checked there like every Send's (an empty
    // batch under a revoked token is answered TokenExpired, not per-envelope
    // refusals).
    let outcomes = {
        let enqueued = state.enqueue(batch, under).await;
        let outcomes = match enqueued {
            Ok(outcomes) if outcomes.len() == expected => outcomes,
            // Committed, but the outcomes cannot be matched to the
            // envelopes: the client must hear "may have been stored", not
            // "nothing was stored" (PROTOCOL.md 9.6, `Internal`).
            Ok(_) => {
                return Err(Refusal::outcome_unknown(
                    "store returned the wrong number of enqueue outcomes",
                ))
            }
            // Not stored, or not known to be: every charge is given back
            // as `charges` drops (the budget errs towards the sender, never
            // charging an envelope twice for one retry).
            Err(error) => return Err(error.into()),
        };
        charges.settle(outcomes.iter().map(Result::is_ok), unix_now());
        outcomes
    };
    let mut outcomes = outcomes.into_iter();
    let mut accepted = 0u64;
    let results = results
        .into_iter()
        .map(|slot| match slot {
            Some(done) => done,
            None => match outcomes.next() {
                Some(Ok(seq)) => {
                    accepted += 1;
                    SendOutcome::Accepted { seq }
                }
                Some(Err(EnqueueRejection::QueueFull)) => SendOutcome::Rejected {
                    code: ErrorCode::QueueFull,
                },
                Some(Err(EnqueueRejection::UnknownRecipient)) | None => SendOutcome::Rejected {
                    code: ErrorCode::UnknownRecipient,
                },
            },
        })
        .collect();
    state
        .metrics
        .messages_relayed
        .fetch_add(accepted, Ordering::Relaxed);
    Ok(Response::SendResult { results })
}

/// Which of the batch's recipients are current devices of existing
/// accounts: one store read per `MAX_IN` distinct accounts. A device
/// removed between this read and the commit may still get an envelope
/// stored; it expires with its queue's TTL and is never delivered (the
/// device has no token left).
async fn current_devices(
    state: &AppState,
    messages: &[OutgoingEnvelope],
) -> Result<HashSet<Address>, Refusal> {
    let mut accounts: Vec<AccountId> = messages.iter().map(|m| m.to.account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    Ok(state
        .store
        .current_devices(&accounts)
        .await?
        .into_iter()
        .collect())
}

/// Deletes delivered messages from this device's queue.
/// The deletion shares the group committer's transaction with concurrent
/// sends and acks (one commit for all), and is answered after it commits.
/// Its token is re-checked by the committer (`under`), like a Send's.
pub(super) async fn ack(
    state: &AppState,
    me: Address,
    under: SubmittedUnder,
    seqs: Vec<u64>,
) -> Handled {
    let n = state.ack(me, seqs, under).await?;
    state.metrics.messages_acked.fetch_add(n, Ordering::Relaxed);
    Ok(Response::Ok)
}

/// Forwards an ephemeral frame to the recipient's live connection, if any,
/// within the sender's ephemeral budget.
pub(super) fn ephemeral(state: &AppState, me: Address, to: Address, payload: Vec<u8>) -> Handled {
    state.rate_limits.check_ephemeral(me.account)?;
    if state.hub.send_ephemeral(to, payload) {
        Metrics::inc(&state.metrics.ephemeral_forwarded);
    }
    // The same answer whether or not it was delivered: presence is not
    // revealed through this reply.
    Ok(Response::Ok)
}
