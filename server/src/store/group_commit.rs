//! Group commit: many senders' messages and recipients' acknowledgements
//! share one transaction.
//!
//! Under load, every accepted message costs a durable commit (an fsync on
//! SQLite, a WAL flush on PostgreSQL), and so did every acknowledgement.
//! Submissions (a Send's messages, or one Ack's seqs) go through a channel
//! to a worker that takes whatever is already waiting (up to a budget of
//! messages plus acked seqs), commits it all in ONE
//! [`MessageQueue::enqueue_and_ack`](super::MessageQueue::enqueue_and_ack)
//! call, and answers each submitter with its own outcomes. A lone sender is never delayed: the
//! worker only drains what is already queued and never waits on a timer.
//!
//! Must never: hold a lock across the database await, reorder one
//! submission's messages, let one submitter's failing batch fail another's,
//! or answer before the transaction has committed.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use umbra_wire::Address;

use super::{EnqueueOutcome, NewMessage, Seq, SharedStore, Store, StoreError};

/// Submissions that may wait for a worker before `submit` applies
/// back-pressure to its caller.
const CHANNEL_CAPACITY: usize = 1024;

/// Why a submission got no outcomes.
#[derive(Debug, thiserror::Error)]
pub enum GroupCommitError {
    /// The store failed to commit this submission (nothing of it was stored).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The committer has shut down (its workers ended) before it took the
    /// submission: nothing of it was stored.
    #[error("group committer has stopped")]
    Stopped,
    /// The worker holding the submission ended without answering (its task
    /// was cancelled or panicked): it may have committed it.
    #[error("group committer ended while committing; the outcome is unknown")]
    Lost,
}

struct Submission {
    messages: Vec<NewMessage>,
    /// An acknowledgement: the recipient and the seqs to delete.
    ack: Option<(Address, Vec<Seq>)>,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

impl Submission {
    /// What it counts against a batch's budget.
    fn size(&self) -> usize {
        self.messages.len() + self.ack.as_ref().map_or(0, |(_, seqs)| seqs.len())
    }
}

/// One submission's share of a committed transaction.
struct Committed {
    outcomes: Vec<EnqueueOutcome>,
    acked: u64,
}

/// A handle for submitting messages; clone it freely. Workers stop when the
/// last handle is dropped.
#[derive(Clone)]
pub struct GroupCommitter {
    submissions: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Starts `workers` workers (at least one) on the current Tokio runtime,
    /// each committing up to `max_batch_messages` messages per transaction.
    /// SQLite gains nothing from more than one worker (one writer); on
    /// PostgreSQL a few workers let commits overlap.
    pub fn spawn(store: SharedStore, max_batch_messages: usize, workers: usize) -> Self {
        let (submissions, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            tokio::spawn(work(
                Arc::clone(&store),
                Arc::clone(&receiver),
                max_batch_messages.max(1),
            ));
        }
        Self { submissions }
    }

    /// Queues `messages` (in order) and returns one outcome per message once
    /// the transaction holding them has committed.
    pub async fn submit(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<EnqueueOutcome>, GroupCommitError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.submit_work(messages, None).await?.outcomes)
    }

    /// Deletes `recipient`'s messages `seqs` (an Ack) in the next shared
    /// transaction; returns how many were deleted, once it has committed.
    pub async fn submit_ack(
        &self,
        recipient: Address,
        seqs: Vec<Seq>,
    ) -> Result<u64, GroupCommitError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        Ok(self
            .submit_work(Vec::new(), Some((recipient, seqs)))
            .await?
            .acked)
    }

    async fn submit_work(
        &self,
        messages: Vec<NewMessage>,
        ack: Option<(Address, Vec<Seq>)>,
    ) -> Result<Committed, GroupCommitError> {
        let (reply, answer) = oneshot::channel();
        self.submissions
            .send(Submission {
                messages,
                ack,
                reply,
            })
            .await
            .map_err(|_| GroupCommitError::Stopped)?;
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(GroupCommitError::Lost),
        }
    }
}

/// Takes the next batch: waits for one submission, then adds whatever is
/// already waiting while the budget lasts. The receiver lock is released
/// before the caller touches the database.
///
/// A submission carried over from the previous batch leads this one and
/// never waits for the lock: an idle worker holds it across `recv().await`
/// until *new* work arrives, which in a quiet relay may be never (review
/// finding 1). So the lock is only tried; if another worker has it, the
/// carried submission is committed alone.
async fn next_batch(
    receiver: &Mutex<mpsc::Receiver<Submission>>,
    carried: &mut Option<Submission>,
    budget: usize,
) -> Option<Vec<Submission>> {
    let (first, mut receiver) = match carried.take() {
        Some(first) => match receiver.try_lock() {
            Ok(receiver) => (first, receiver),
            Err(_) => return Some(vec![first]),
        },
        None => {
            let mut receiver = receiver.lock().await;
            let first = receiver.recv().await?;
            (first, receiver)
        }
    };
    let mut size = first.size();
    let mut batch = vec![first];
    while size < budget {
        let Ok(next) = receiver.try_recv() else { break };
        if size + next.size() > budget {
            // Over budget: it leads this worker's next batch instead.
            *carried = Some(next);
            break;
        }
        size += next.size();
        batch.push(next);
    }
    Some(batch)
}

async fn work(store: SharedStore, receiver: Arc<Mutex<mpsc::Receiver<Submission>>>, budget: usize) {
    let mut carried = None;
    while let Some(batch) = next_batch(&receiver, &mut carried, budget).await {
        commit(store.as_ref(), batch).await;
    }
}

/// Commits a batch and answers every submitter. If the combined transaction
/// fails before its commit (so it rolled back), each submission is retried
/// alone so one bad submission (or a transient conflict) is reported to its
/// own sender only, unless the database is unavailable: then every
/// submitter hears so at once, since each retry would fail the same way. If the commit itself may have happened
/// ([`StoreError::CommitOutcomeUnknown`]) nothing is retried: a retry could
/// store every message a second time (PROTOCOL.md 11.6); every submitter
/// hears the outcome is unknown. A submission whose submitter already gave
/// up (its request's deadline passed and it was answered "may have been
/// carried out") is not committed at all, not even by a solo retry. The messages are moved into the
/// combined batch, not copied (envelopes are most of it).
async fn commit(store: &dyn Store, mut batch: Vec<Submission>) {
    batch.retain(|submission| !submission.reply.is_closed());
    let mut parts = Vec::with_capacity(batch.len());
    let mut combined = Vec::with_capacity(batch.iter().map(|s| s.messages.len()).sum());
    let mut acks = Vec::new();
    for submission in batch {
        let ack_index = submission.ack.is_some().then_some(acks.len());
        parts.push((submission.messages.len(), ack_index, submission.reply));
        combined.extend(submission.messages);
        acks.extend(submission.ack);
    }
    if parts.len() > 1 {
        match store.enqueue_and_ack(&combined, &acks).await {
            Ok((outcomes, acked)) => {
                let mut outcomes = outcomes.into_iter();
                for (len, ack_index, reply) in parts {
                    let outcomes: Vec<EnqueueOutcome> = outcomes.by_ref().take(len).collect();
                    let acked = ack_index.and_then(|i| acked.get(i).copied()).unwrap_or(0);
                    // A submitter that gave up waiting is not an error here.
                    let _ = reply.send(Ok(Committed { outcomes, acked }));
                }
                return;
            }
            Err(StoreError::CommitOutcomeUnknown { cause }) => {
                for (_, _, reply) in parts {
                    let cause = cause.clone();
                    let _ = reply.send(Err(StoreError::CommitOutcomeUnknown { cause }));
                }
                return;
            }
            // Rolled back because the database cannot be used: a solo retry
            // would only wait out the pool's acquire timeout again, once
            // per submission (review finding 2). Nothing was stored; every
            // submitter hears so now and may retry.
            Err(error) if error.is_unavailable() => {
                let cause = error.to_string();
                for (_, _, reply) in parts {
                    let cause = cause.clone();
                    let _ = reply.send(Err(StoreError::Unavailable { cause }));
                }
                return;
            }
            // Rolled back: nothing of it was stored.
            Err(_) => {}
        }
    }
    let mut rest = combined.into_iter();
    let mut acks = acks.into_iter();
    for (len, ack_index, reply) in parts {
        let mine: Vec<NewMessage> = rest.by_ref().take(len).collect();
        let ack: Vec<(Address, Vec<Seq>)> =
            ack_index.and_then(|_| acks.next()).into_iter().collect();
        // Its submitter may have given up while earlier parts were retried.
        if reply.is_closed() {
            continue;
        }
        let result = store
            .enqueue_and_ack(&mine, &ack)
            .await
            .map(|(outcomes, acked)| Committed {
                outcomes,
                acked: acked.first().copied().unwrap_or(0),
            });
        let _ = reply.send(result);
    }
}
