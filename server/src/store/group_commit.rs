//! Group commit: many senders' messages share one enqueue transaction.
//!
//! Under load, every accepted message costs a durable commit (an fsync on
//! SQLite, a WAL flush on PostgreSQL). Submissions go through a channel to a
//! worker that takes whatever is already waiting (up to a message budget),
//! enqueues it all in ONE [`MessageQueue::enqueue_batch`](super::MessageQueue::enqueue_batch) call, and answers each
//! submitter with its own outcomes. A lone sender is never delayed: the
//! worker only drains what is already queued and never waits on a timer.
//!
//! Must never: hold a lock across the database await, reorder one
//! submission's messages, let one submitter's failing batch fail another's,
//! or answer before the transaction has committed.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use super::{EnqueueOutcome, NewMessage, SharedStore, Store, StoreError};

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
    reply: oneshot::Sender<Result<Vec<EnqueueOutcome>, StoreError>>,
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
        let (reply, answer) = oneshot::channel();
        self.submissions
            .send(Submission { messages, reply })
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
async fn next_batch(
    receiver: &Mutex<mpsc::Receiver<Submission>>,
    carried: &mut Option<Submission>,
    budget: usize,
) -> Option<Vec<Submission>> {
    let mut receiver = receiver.lock().await;
    let first = match carried.take() {
        Some(first) => first,
        None => receiver.recv().await?,
    };
    let mut size = first.messages.len();
    let mut batch = vec![first];
    while size < budget {
        let Ok(next) = receiver.try_recv() else { break };
        if size + next.messages.len() > budget {
            // Over budget: it leads this worker's next batch instead.
            *carried = Some(next);
            break;
        }
        size += next.messages.len();
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
/// own sender only. If the commit itself may have happened
/// ([`StoreError::CommitOutcomeUnknown`]) nothing is retried: a retry could
/// store every message a second time (PROTOCOL.md 11.6); every submitter
/// hears the outcome is unknown. A submission whose submitter already gave
/// up (its request's deadline passed and it was answered "may have been
/// carried out") is not committed at all. The messages are moved into the
/// combined batch, not copied (envelopes are most of it).
async fn commit(store: &dyn Store, mut batch: Vec<Submission>) {
    batch.retain(|submission| !submission.reply.is_closed());
    let mut lengths = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    let mut combined = Vec::with_capacity(batch.iter().map(|s| s.messages.len()).sum());
    for submission in batch {
        lengths.push(submission.messages.len());
        combined.extend(submission.messages);
        replies.push(submission.reply);
    }
    if replies.len() > 1 {
        match store.enqueue_batch(&combined).await {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (len, reply) in lengths.into_iter().zip(replies) {
                    let mine: Vec<EnqueueOutcome> = outcomes.by_ref().take(len).collect();
                    // A submitter that gave up waiting is not an error here.
                    let _ = reply.send(Ok(mine));
                }
                return;
            }
            Err(StoreError::CommitOutcomeUnknown { cause }) => {
                for reply in replies {
                    let cause = cause.clone();
                    let _ = reply.send(Err(StoreError::CommitOutcomeUnknown { cause }));
                }
                return;
            }
            // Rolled back: nothing of it was stored.
            Err(_) => {}
        }
    }
    let mut rest = combined.into_iter();
    for (len, reply) in lengths.into_iter().zip(replies) {
        let mine: Vec<NewMessage> = rest.by_ref().take(len).collect();
        let result = store.enqueue_batch(&mine).await;
        let _ = reply.send(result);
    }
}
