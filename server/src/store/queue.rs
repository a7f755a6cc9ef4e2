//! The message queue role: one ordered queue of opaque sealed envelopes per
//! recipient device, and the notifications that wake its connection.
//!
//! Must never: store a sender next to an envelope, reuse a sequence number,
//! announce a message before (or unless) its transaction commits, or put
//! ciphertext in an announcement.

use async_trait::async_trait;
use tokio::sync::broadcast;
use umbra_wire::Address;

use super::batch::{BatchPart, PartOutcome};
use super::{EnqueueOutcome, NewMessage, QueueEvent, Seq, StoreError, StoredMessage, UnixSeconds};

/// Store-and-forward queues.
#[async_trait]
pub trait MessageQueue: Send + Sync + 'static {
    /// Queues a batch in ONE transaction: each accepted message gets the next
    /// sequence number of its recipient, in slice order; a message that would
    /// overflow its recipient's queue or has no such recipient is refused
    /// alone (`rules::admit_message`). Nothing about the sender reaches the
    /// store (its budget is kept in memory, `crate::sender_budget`). Returns
    /// one outcome per input, in order, only after commit.
    async fn enqueue_batch(
        &self,
        messages: &[NewMessage],
    ) -> Result<Vec<EnqueueOutcome>, StoreError>;

    /// [`MessageQueue::enqueue_batch`] and, in the same transaction, the
    /// deletions of several [`MessageQueue::ack`]s (`(recipient, seqs)`):
    /// what the group committer commits at once, so acknowledgements share
    /// the enqueues' commit (one fsync on SQLite) instead of each taking
    /// its own. Returns the enqueue outcomes and, per ack, how many
    /// messages it deleted, only after commit.
    async fn enqueue_and_ack(
        &self,
        messages: &[NewMessage],
        acks: &[(Address, Vec<Seq>)],
    ) -> Result<(Vec<EnqueueOutcome>, Vec<u64>), StoreError>;

    /// What the group committer commits: every part's messages and ack in
    /// ONE transaction, after re-checking, in that transaction, the token
    /// of each part made under one (valid at `now` and still its device's;
    /// a part that fails gets [`PartOutcome::TokenRefused`] and stores
    /// nothing). One outcome per part, in order, only after commit.
    ///
    /// The statements before the commit may take `bound` in all, then the
    /// commit as long again: a database that stops answering fails the
    /// batch with [`StoreError::Unavailable`] (rolled back, nothing stored)
    /// or, during the commit, [`StoreError::CommitOutcomeUnknown`], instead
    /// of holding every submitter until the request deadline.
    async fn commit_parts(
        &self,
        parts: &[BatchPart<'_>],
        now: UnixSeconds,
        bound: std::time::Duration,
    ) -> Result<Vec<PartOutcome>, StoreError>;

    /// Up to `limit` unexpired messages with `seq > after`, in seq order.
    async fn fetch_after(
        &self,
        recipient: Address,
        after: Seq,
        limit: u32,
        now: UnixSeconds,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Deletes the listed messages (acknowledged by the recipient). Unknown
    /// seqs are ignored. Returns how many were deleted.
    async fn ack(&self, recipient: Address, seqs: &[Seq]) -> Result<u64, StoreError>;

    /// Deletes every message with `seq <= up_to`.
    async fn ack_up_to(&self, recipient: Address, up_to: Seq) -> Result<u64, StoreError>;

    /// Deletes messages with `expires_at <= now`.
    async fn purge_expired_messages(&self, now: UnixSeconds) -> Result<u64, StoreError>;

    /// Messages waiting for one recipient (expired-but-unpurged included).
    async fn queue_depth(&self, recipient: Address) -> Result<u64, StoreError>;

    /// Messages waiting in all queues (for metrics).
    async fn total_queued(&self) -> Result<u64, StoreError>;

    /// Queue notifications: every committed enqueue, on this node and (for
    /// PostgreSQL) on every node sharing the database. A
    /// `RecvError::Lagged` must be treated like [`QueueEvent::Resync`].
    fn subscribe(&self) -> broadcast::Receiver<QueueEvent>;
}

/// The [`MessageQueue`] SQL, expanded by `impl_store!` for each backend
/// (its steps: `queue_steps.rs`).
macro_rules! impl_queue {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl MessageQueue for $store {
            async fn enqueue_batch(
                &self,
                messages: &[NewMessage],
            ) -> Result<Vec<EnqueueOutcome>, StoreError> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(self.enqueue_and_ack(messages, &[]).await?.0)
            }

            async fn enqueue_and_ack(
                &self,
                messages: &[NewMessage],
                acks: &[(Address, Vec<Seq>)],
            ) -> Result<(Vec<EnqueueOutcome>, Vec<u64>), StoreError> {
                use $crate::store::batch::{BatchPart, PartOutcome};
                if messages.is_empty() && acks.iter().all(|(_, seqs)| seqs.is_empty()) {
                    return Ok((Vec::new(), vec![0; acks.len()]));
                }
                let parts: Vec<BatchPart<'_>> = std::iter::once(BatchPart {
                    messages,
                    ack: None,
                    under: None,
                })
                .chain(acks.iter().map(|ack| BatchPart {
                    messages: &[],
                    ack: Some(ack),
                    under: None,
                }))
                .collect();
                let mut outcomes = Vec::new();
                let mut deleted = Vec::with_capacity(acks.len());
                let bound = $crate::store::batch::NO_WRITE_BOUND;
                for (i, part) in self.commit_parts(&parts, 0, bound).await?.into_iter().enumerate() {
                    match part {
                        PartOutcome::Committed { outcomes: mine, .. } if i == 0 => outcomes = mine,
                        PartOutcome::Committed { acked, .. } => deleted.push(acked),
                        // No part was made under a token.
                        PartOutcome::TokenRefused { .. } => {
                            return Err(StoreError::Corrupt("a part without a token was refused"))
                        }
                    }
                }
                Ok((outcomes, deleted))
            }

            async fn commit_parts(
                &self,
                parts: &[$crate::store::batch::BatchPart<'_>],
                now: UnixSeconds,
                bound: std::time::Duration,
            ) -> Result<Vec<$crate::store::batch::PartOutcome>, StoreError> {
                use $crate::store::batch;
                let written = async {
                    let mut tx = self.write_tx().await?;
                    // The queues first (account rows before any other row,
                    // `lock_batch`), then the tokens, before anything is
                    // written: a part whose token was revoked stores
                    // nothing, and the token rows stay locked until the
                    // commit (`batch`).
                    let mut queues = lock_batch(&mut tx, parts).await?;
                    let hashes = batch::token_hashes(parts);
                    let infos = if hashes.is_empty() {
                        Vec::new()
                    } else {
                        lock_token_infos(&mut tx, &hashes).await?
                    };
                    let refused = batch::refusals(parts, &infos, now);
                    let (messages, acks) = batch::admitted(parts, &refused);
                    let (outcomes, rows, dirty, committed) =
                        admit(&mut queues, &messages, &self.limits)?;
                    let deleted =
                        dialect!(write_batch)(&mut tx, &rows, &dirty, &acks, &committed).await?;
                    Ok::<_, StoreError>((tx, refused, outcomes, committed, deleted))
                };
                // Cut off before COMMIT was sent: the dropped transaction
                // rolls back, so nothing was stored.
                let (tx, refused, outcomes, committed, deleted) =
                    match tokio::time::timeout(bound, written).await {
                        Ok(written) => written?,
                        Err(_) => {
                            return Err(StoreError::Unavailable {
                                cause: format!(
                                    "the batch's statements took over {} ms",
                                    bound.as_millis()
                                ),
                            })
                        }
                    };
                match tokio::time::timeout(bound, tx.commit()).await {
                    Ok(done) => done.map_err(StoreError::from_commit)?,
                    Err(_) => {
                        return Err(StoreError::CommitOutcomeUnknown {
                            cause: format!("COMMIT took over {} ms", bound.as_millis()),
                        })
                    }
                }
                self.announce_committed(committed);
                Ok(batch::deal(parts, refused, outcomes, deleted))
            }

            async fn fetch_after(
                &self,
                recipient: Address,
                after: Seq,
                limit: u32,
                now: UnixSeconds,
            ) -> Result<Vec<StoredMessage>, StoreError> {
                let found = sqlx::query(
                    "SELECT seq, envelope, COALESCE(received_at_ms, received_at * 1000) FROM messages \
                     WHERE account_id = $1 AND device_id = $2 AND seq > $3 AND expires_at > $4 \
                     ORDER BY seq LIMIT $5",
                )
                .bind(recipient.account.as_bytes().as_slice())
                .bind(device_param(recipient))
                .bind(db_u64(after))
                .bind(db_time(now))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                found
                    .into_iter()
                    .map(|row| {
                        Ok(StoredMessage {
                            seq: rows::unsigned(row.try_get(0)?, "negative seq")?,
                            envelope: row.try_get(1)?,
                            received_at_ms: rows::unix_ms(row.try_get(2)?)?,
                        })
                    })
                    .collect()
            }

            async fn ack(&self, recipient: Address, seqs: &[Seq]) -> Result<u64, StoreError> {
                if seqs.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.write_tx().await?;
                let deleted = delete_acked(&mut tx, recipient, seqs).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(deleted)
            }

            async fn ack_up_to(&self, recipient: Address, up_to: Seq) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM messages WHERE account_id = $1 AND device_id = $2 AND seq <= $3",
                )
                .bind(recipient.account.as_bytes().as_slice())
                .bind(device_param(recipient))
                .bind(db_u64(up_to))
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected())
            }

            async fn purge_expired_messages(&self, now: UnixSeconds) -> Result<u64, StoreError> {
                // In batches, each its own short statement: one DELETE of
                // every expired row could outlast the request statement
                // timeout on PostgreSQL and hold SQLite's write lock for
                // as long (`PURGE_BATCH_ROWS`).
                let mut purged = 0;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM messages WHERE (account_id, device_id, seq) IN \
                         (SELECT account_id, device_id, seq FROM messages \
                          WHERE expires_at <= $1 LIMIT $2)",
                    )
                    .bind(db_time(now))
                    .bind($crate::store::limits::PURGE_BATCH_ROWS)
                    .execute(self.writer())
                    .await?;
                    purged += done.rows_affected();
                    if done.rows_affected() < $crate::store::limits::PURGE_BATCH_ROWS as u64 {
                        return Ok(purged);
                    }
                }
            }

            async fn queue_depth(&self, recipient: Address) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2",
                )
                .bind(recipient.account.as_bytes().as_slice())
                .bind(device_param(recipient))
                .fetch_one(self.reader())
                .await?;
                rows::unsigned(n, "negative row count")
            }

            async fn total_queued(&self) -> Result<u64, StoreError> {
                // A count of the whole table: a bulk statement, not held to
                // the request statement timeout.
                let mut tx = self.reader().begin().await?;
                Self::bulk_statements(&mut tx).await?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows::unsigned(n, "negative row count")
            }

            fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
                self.events.subscribe()
            }
        }
    };
}
pub(crate) use impl_queue;
