//! Group commit: many senders' messages and recipients' acknowledgements
//! share one transaction.
//!
//! Under load, every accepted message costs a durable commit (an fsync on
//! SQLite, a WAL flush on PostgreSQL), and so did every acknowledgement.
//! Submissions (a Send's messages, or one Ack's seqs) go through a channel
//! to a worker that takes whatever is already waiting (up to a budget of
//! messages plus acked seqs), commits it all in ONE
//! [`MessageQueue::commit_parts`](super::MessageQueue::commit_parts) call,
//! and answers each submitter with its own outcomes. A lone sender is never
//! delayed: the worker only drains what is already queued and never waits
//! on a timer.
//!
//! On SQLite with a database file the worker is a dedicated thread that
//! owns a synchronous writer connection ([`DedicatedWriter`],
//! `sqlite_writer`): a batch costs one wake-up of that thread instead of
//! two per SQL statement. Elsewhere (PostgreSQL, in-memory SQLite) async
//! workers call the store.
//!
//! Once a batch has committed, each accepted envelope whose recipient is
//! connected to this node is handed to that connection ([`HandOff`]), so
//! the delivery loop need not read it back; the queue stays the source of
//! truth (the message is deleted only by the recipient's Ack, and a
//! connection that misses a hand-off reads its queue).
//!
//! A submission may carry the session token of the request that made it:
//! the store looks it up INSIDE the batch's transaction, before writing
//! anything, and keeps the token row locked until the commit (`batch`), so
//! a submission whose token was revoked or has expired stores nothing
//! ([`GroupCommitError::TokenRefused`]) and no revocation commits between
//! the check and the commit. That is the re-check every state-changing
//! request gets (PROTOCOL.md, error code 16). A submission with nothing to
//! write but a token (a Send whose every envelope was refused before the
//! store) is committed too, so that every Send and Ack hears the same rule.
//!
//! The committer's own store call is bounded ([`GroupCommitter::spawn_with`],
//! a share of the request deadline): a database that stops answering before
//! the commit fails the batch as unavailable (nothing stored), one that
//! stops answering during `COMMIT` as an unknown outcome. (The dedicated
//! SQLite writer's waits are bounded by SQLite's busy timeout instead: a
//! synchronous call cannot be cut off.)
//!
//! Waiting submissions are bounded in number and in envelope bytes; beyond
//! that a submission is refused at once ([`GroupCommitError::Busy`],
//! nothing stored) instead of holding memory while the database is slow.
//!
//! Must never: hold a lock across the database await, reorder one
//! submission's messages, let one submitter's failing batch fail another's,
//! or answer before the transaction has committed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Mutex};

use umbra_wire::Address;

use crate::auth::tokens::unix_now;

pub use super::batch::SubmittedUnder;
use super::batch::{BatchPart, PartOutcome};
use super::{
    EnqueueOutcome, NewMessage, QueueEvent, Seq, SharedStore, StoreError, UnixMillis, UnixSeconds,
};

/// Submissions that may wait for a worker; beyond this `submit` answers
/// [`GroupCommitError::Busy`].
const CHANNEL_CAPACITY: usize = 1024;

/// Envelope bytes that may wait for a worker (the memory a stalled
/// database can hold here); beyond this `submit` answers
/// [`GroupCommitError::Busy`].
pub const MAX_WAITING_BYTES: usize = 64 << 20;

/// A synchronous writer connection the committer drives from its own thread
/// (see the module doc).
pub trait DedicatedWriter: Send + 'static {
    /// [`MessageQueue::commit_parts`](super::MessageQueue::commit_parts),
    /// without announcing anything.
    fn commit_parts(
        &mut self,
        parts: &[BatchPart<'_>],
        now: UnixSeconds,
    ) -> Result<Vec<PartOutcome>, StoreError>;

    /// Announces committed messages to the queue's subscribers.
    fn announce(&self, committed: Vec<QueueEvent>);

    /// The lock it takes turns with another writer of the same database
    /// by (SQLite's writer pool), held for each batch's transaction.
    fn write_turn(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        None
    }
}

/// How long a batch waits for its [`DedicatedWriter::write_turn`] before
/// committing without it (only a closed pool connection holds it so long).
pub const TURN_WAIT: Duration = Duration::from_millis(500);

/// How long the committer's store call may take when the relay gives no
/// bound of its own ([`GroupCommitter::spawn`]; the relay passes a share of
/// its request deadline to [`GroupCommitter::spawn_with`]).
pub const DEFAULT_WRITE_BOUND: Duration = Duration::from_secs(1);

/// Where committed envelopes go for a connected recipient.
pub trait HandOff: Send + Sync + 'static {
    /// Offers `recipient`'s committed message `seq` to its connection on
    /// this node, if any; never waits.
    fn hand_off(&self, recipient: Address, seq: Seq, received_at_ms: UnixMillis, envelope: Vec<u8>);
}

/// No connections to hand anything to (store tests).
#[derive(Debug, Default)]
pub struct NoHandOff;

impl HandOff for NoHandOff {
    fn hand_off(&self, _: Address, _: Seq, _: UnixMillis, _: Vec<u8>) {}
}

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
    /// Too much is already waiting for the database: the submission was
    /// refused before anything of it was stored; retry later.
    #[error("too many writes are waiting for the database; nothing was stored")]
    Busy,
    /// The submission's token was revoked (`expired: false`) or has expired:
    /// nothing of it was stored.
    #[error("the session token is no longer valid; nothing was stored")]
    TokenRefused {
        /// The token still exists for this device but its expiry passed.
        expired: bool,
    },
}

struct Submission {
    messages: Vec<NewMessage>,
    /// An acknowledgement: the recipient and the seqs to delete.
    ack: Option<(Address, Vec<Seq>)>,
    /// The token to re-check before committing (see the module doc).
    under: Option<SubmittedUnder>,
    reply: oneshot::Sender<Result<Committed, GroupCommitError>>,
    /// Its envelope bytes, counted in [`GroupCommitter::waiting_bytes`]
    /// until a worker takes it.
    bytes: usize,
}

impl Submission {
    /// Its part of a batch's transaction.
    fn part(&self) -> BatchPart<'_> {
        BatchPart {
            messages: &self.messages,
            ack: self.ack.as_ref(),
            under: self.under,
        }
    }

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
    waiting_bytes: Arc<AtomicUsize>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// [`GroupCommitter::spawn_with`] with [`DEFAULT_WRITE_BOUND`].
    pub fn spawn(
        store: SharedStore,
        max_batch_messages: usize,
        workers: usize,
        hand_off: Arc<dyn HandOff>,
    ) -> Self {
        Self::spawn_with(
            store,
            max_batch_messages,
            workers,
            hand_off,
            DEFAULT_WRITE_BOUND,
        )
    }

    /// Starts the committer, each transaction taking up to
    /// `max_batch_messages` messages: one thread owning the store's
    /// [`DedicatedWriter`] if it has one, else `workers` async workers (at
    /// least one) on the current Tokio runtime. SQLite gains nothing from
    /// more than one writer; on PostgreSQL a few workers let commits
    /// overlap. Committed envelopes are offered to `hand_off`. An async
    /// worker's transaction may take `write_bound` before its commit and as
    /// long again for the commit (see the module doc); the dedicated
    /// writer's waits are bounded by SQLite's busy timeout instead.
    pub fn spawn_with(
        store: SharedStore,
        max_batch_messages: usize,
        workers: usize,
        hand_off: Arc<dyn HandOff>,
        write_bound: Duration,
    ) -> Self {
        let (submissions, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting_bytes = Arc::new(AtomicUsize::new(0));
        let budget = max_batch_messages.max(1);
        let dedicated = store.dedicated_writer().unwrap_or_else(|error| {
            tracing::error!(%error, "cannot open the dedicated SQLite writer; committing through the pool");
            None
        });
        if let Some(writer) = dedicated {
            let runtime = tokio::runtime::Handle::current();
            let worker = Worker {
                backend: Backend::Dedicated(writer),
                receiver,
                budget,
                hand_off,
                waiting_bytes: Arc::clone(&waiting_bytes),
            };
            let spawned = std::thread::Builder::new()
                .name("umbra-sqlite-writer".into())
                .spawn(move || runtime.block_on(worker.run()));
            if let Err(error) = spawned {
                // Nothing is committed then: every submission answers Stopped.
                tracing::error!(%error, "cannot start the SQLite writer thread");
            }
        } else {
            for _ in 0..workers.max(1) {
                let worker = Worker {
                    backend: Backend::Pool(Arc::clone(&store), write_bound),
                    receiver: Arc::clone(&receiver),
                    budget,
                    hand_off: Arc::clone(&hand_off),
                    waiting_bytes: Arc::clone(&waiting_bytes),
                };
                tokio::spawn(worker.run());
            }
        }
        Self {
            submissions,
            waiting_bytes,
        }
    }

    /// Whether any worker still takes submissions (not after the writer
    /// thread or every worker ended: then each submission gets `Stopped`).
    pub fn is_running(&self) -> bool {
        !self.submissions.is_closed()
    }

    /// Queues `messages` (in order) and returns one outcome per message once
    /// the transaction holding them has committed.
    pub async fn submit(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<EnqueueOutcome>, GroupCommitError> {
        self.submit_under(messages, None).await
    }

    /// [`GroupCommitter::submit`], refused unless `under`'s token is still
    /// valid for its device when the batch is committed. Under a token an
    /// empty `messages` is committed too (the token is re-checked all the
    /// same: the rule is one for every Send, module doc).
    pub async fn submit_under(
        &self,
        messages: Vec<NewMessage>,
        under: Option<SubmittedUnder>,
    ) -> Result<Vec<EnqueueOutcome>, GroupCommitError> {
        if messages.is_empty() && under.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.submit_work(messages, None, under).await?.outcomes)
    }

    /// Deletes `recipient`'s messages `seqs` (an Ack) in the next shared
    /// transaction; returns how many were deleted, once it has committed.
    pub async fn submit_ack(
        &self,
        recipient: Address,
        seqs: Vec<Seq>,
    ) -> Result<u64, GroupCommitError> {
        self.submit_ack_under(recipient, seqs, None).await
    }

    /// [`GroupCommitter::submit_ack`] under a token, as in
    /// [`GroupCommitter::submit_under`] (an empty ack under a token is
    /// re-checked too).
    pub async fn submit_ack_under(
        &self,
        recipient: Address,
        seqs: Vec<Seq>,
        under: Option<SubmittedUnder>,
    ) -> Result<u64, GroupCommitError> {
        if seqs.is_empty() && under.is_none() {
            return Ok(0);
        }
        Ok(self
            .submit_work(Vec::new(), Some((recipient, seqs)), under)
            .await?
            .acked)
    }

    async fn submit_work(
        &self,
        messages: Vec<NewMessage>,
        ack: Option<(Address, Vec<Seq>)>,
        under: Option<SubmittedUnder>,
    ) -> Result<Committed, GroupCommitError> {
        let (reply, answer) = oneshot::channel();
        let bytes: usize = messages.iter().map(|m| m.envelope.len()).sum();
        let waiting = self.waiting_bytes.fetch_add(bytes, Ordering::Relaxed);
        if waiting.saturating_add(bytes) > MAX_WAITING_BYTES && waiting > 0 {
            self.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(GroupCommitError::Busy);
        }
        let submission = Submission {
            messages,
            ack,
            under,
            reply,
            bytes,
        };
        if let Err(error) = self.submissions.try_send(submission) {
            self.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(match error {
                TrySendError::Full(_) => GroupCommitError::Busy,
                TrySendError::Closed(_) => GroupCommitError::Stopped,
            });
        }
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

/// What a worker commits through.
enum Backend {
    /// The store's own async `commit_parts` (it announces itself), with
    /// the bound of its store call.
    Pool(SharedStore, Duration),
    /// A synchronous connection owned by this worker's thread.
    Dedicated(Box<dyn DedicatedWriter>),
}

impl Backend {
    async fn commit_parts(
        &mut self,
        parts: &[BatchPart<'_>],
    ) -> Result<Vec<PartOutcome>, StoreError> {
        let now = unix_now();
        match self {
            Backend::Pool(store, bound) => store.commit_parts(parts, now, *bound).await,
            Backend::Dedicated(writer) => {
                let _turn = match writer.write_turn() {
                    Some(turn) => tokio::time::timeout(TURN_WAIT, turn.lock_owned())
                        .await
                        .ok(),
                    None => None,
                };
                writer.commit_parts(parts, now)
            }
        }
    }
}

/// One committing loop (see [`GroupCommitter::spawn`]).
struct Worker {
    backend: Backend,
    receiver: Arc<Mutex<mpsc::Receiver<Submission>>>,
    budget: usize,
    hand_off: Arc<dyn HandOff>,
    waiting_bytes: Arc<AtomicUsize>,
}

/// One submission's share of a part outcome, as its submitter hears it.
fn answer(outcome: PartOutcome) -> Result<Committed, GroupCommitError> {
    match outcome {
        PartOutcome::Committed { outcomes, acked } => Ok(Committed { outcomes, acked }),
        PartOutcome::TokenRefused { expired } => Err(GroupCommitError::TokenRefused { expired }),
    }
}

impl Worker {
    async fn run(mut self) {
        let mut carried = None;
        while let Some(batch) = next_batch(&self.receiver, &mut carried, self.budget).await {
            let bytes: usize = batch.iter().map(|s| s.bytes).sum();
            self.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.commit(batch).await;
        }
    }

    /// After a successful commit: offers every accepted envelope of a
    /// submission to its recipient's connection (moved, not copied), then
    /// announces them (the dedicated writer's subscribers; a pool store
    /// has announced already), so a delivery loop that got the envelope by
    /// hand need not be woken to read it back.
    fn committed(&self, messages: Vec<NewMessage>, outcomes: &[EnqueueOutcome]) {
        if outcomes.len() != messages.len() {
            return;
        }
        let mut events = Vec::with_capacity(outcomes.len());
        for (message, outcome) in messages.into_iter().zip(outcomes) {
            if let Ok(seq) = outcome {
                events.push(QueueEvent::Enqueued {
                    recipient: message.recipient,
                    seq: *seq,
                });
                self.hand_off.hand_off(
                    message.recipient,
                    *seq,
                    message.received_at_ms,
                    message.envelope,
                );
            }
        }
        if let Backend::Dedicated(writer) = &self.backend {
            writer.announce(events);
        }
    }

    /// Answers `submission` with its part's outcome, handing off what it
    /// committed.
    fn settle(&self, submission: Submission, outcome: PartOutcome) {
        if let PartOutcome::Committed { outcomes, .. } = &outcome {
            self.committed(submission.messages, outcomes);
        }
        // A submitter that gave up waiting is not an error here.
        let _ = submission.reply.send(answer(outcome));
    }

    /// Commits a batch and answers every submitter. If the combined
    /// transaction fails before its commit (so it rolled back), each
    /// submission is retried alone so one bad submission (or a transient
    /// conflict) is reported to its own sender only, unless the database is
    /// unavailable: then every submitter hears so at once, since each retry
    /// would fail the same way. If the commit itself may have happened
    /// ([`StoreError::CommitOutcomeUnknown`]) nothing is retried: a retry
    /// could store every message a second time (PROTOCOL.md 11.6); every
    /// submitter hears the outcome is unknown. A submission whose submitter
    /// already gave up (its request's deadline passed and it was answered
    /// "may have been carried out") is not committed at all, not even by a
    /// solo retry. The messages are borrowed by the transaction, not copied
    /// (envelopes are most of it), and then moved to the hand-off.
    async fn commit(&mut self, mut batch: Vec<Submission>) {
        batch.retain(|submission| !submission.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        if batch.len() > 1 {
            let parts: Vec<BatchPart<'_>> = batch.iter().map(Submission::part).collect();
            let result = self.backend.commit_parts(&parts).await;
            drop(parts);
            match result {
                Ok(outcomes) if outcomes.len() == batch.len() => {
                    for (submission, outcome) in batch.into_iter().zip(outcomes) {
                        self.settle(submission, outcome);
                    }
                    return;
                }
                // Committed, but not one outcome per part: nobody can be
                // told what was stored.
                Ok(_) => {
                    let cause = "the store returned the wrong number of batch outcomes";
                    return fail_all(batch, |_| StoreError::CommitOutcomeUnknown {
                        cause: cause.into(),
                    });
                }
                Err(StoreError::CommitOutcomeUnknown { cause }) => {
                    return fail_all(batch, |_| StoreError::CommitOutcomeUnknown {
                        cause: cause.clone(),
                    });
                }
                // Rolled back because the database cannot be used: a solo retry
                // would only wait out the pool's acquire timeout again, once
                // per submission (review finding 2). Nothing was stored; every
                // submitter hears so now and may retry.
                Err(error) if error.is_unavailable() => {
                    let cause = error.to_string();
                    return fail_all(batch, |_| StoreError::Unavailable {
                        cause: cause.clone(),
                    });
                }
                // Rolled back: nothing of it was stored.
                Err(_) => {}
            }
        }
        for submission in batch {
            // Its submitter may have given up while earlier parts were retried.
            if submission.reply.is_closed() {
                continue;
            }
            let result = self.backend.commit_parts(&[submission.part()]).await;
            match result {
                Ok(mut outcomes) if outcomes.len() == 1 => {
                    let outcome = outcomes.remove(0);
                    self.settle(submission, outcome);
                }
                Ok(_) => {
                    let _ = submission.reply.send(Err(StoreError::CommitOutcomeUnknown {
                        cause: "the store returned the wrong number of batch outcomes".into(),
                    }
                    .into()));
                }
                Err(error) => {
                    let _ = submission.reply.send(Err(error.into()));
                }
            }
        }
    }
}

/// Answers every submission of `batch` with the error `error` makes.
fn fail_all(batch: Vec<Submission>, error: impl Fn(&Submission) -> StoreError) {
    for submission in batch {
        let error = error(&submission);
        let _ = submission.reply.send(Err(error.into()));
    }
}
