//! The message queue role: one ordered queue of opaque sealed envelopes per
//! recipient device, and the notifications that wake its connection.
//!
//! Must never: store a sender next to an envelope, reuse a sequence number,
//! announce a message before (or unless) its transaction commits, or put
//! ciphertext in an announcement.

use async_trait::async_trait;
use tokio::sync::broadcast;
use umbra_wire::Address;

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

/// The [`MessageQueue`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_queue {
    ($store:ty, $db:ty) => {
        /// Locks one recipient's queue counter for this transaction (a
        /// counter row is created at 0 first, so there is a row to lock) and
        /// reads its depth: `None` if the account does not exist.
        async fn lock_queue(
            tx: &mut sqlx::Transaction<'_, $db>,
            recipient: Address,
        ) -> Result<Option<QueueState>, StoreError> {
            if !account_exists(tx, recipient.account).await? {
                return Ok(None);
            }
            let account = recipient.account.as_bytes().as_slice();
            sqlx::query(
                "INSERT INTO queue_counters (account_id, device_id, last_seq) VALUES ($1, $2, 0) \
                 ON CONFLICT (account_id, device_id) DO NOTHING",
            )
            .bind(account)
            .bind(device_param(recipient))
            .execute(&mut **tx)
            .await?;
            let last: i64 = sqlx::query_scalar(concat!(
                "SELECT last_seq FROM queue_counters WHERE account_id = $1 AND device_id = $2",
                dialect!(for_update)
            ))
            .bind(account)
            .bind(device_param(recipient))
            .fetch_one(&mut **tx)
            .await?;
            let depth: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2",
            )
            .bind(account)
            .bind(device_param(recipient))
            .fetch_one(&mut **tx)
            .await?;
            Ok(Some(QueueState::new(
                rows::unsigned(last, "negative queue counter")?,
                rows::unsigned(depth, "negative row count")?,
            )))
        }

        #[async_trait]
        impl MessageQueue for $store {
            async fn enqueue_batch(
                &self,
                messages: &[NewMessage],
            ) -> Result<Vec<EnqueueOutcome>, StoreError> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.write_tx().await?;
                // Every recipient's account and counter is locked in sorted
                // order, so two batches touching the same recipients cannot
                // deadlock.
                let mut queues: BTreeMap<Address, Option<QueueState>> =
                    messages.iter().map(|m| (m.recipient, None)).collect();
                for (recipient, state) in queues.iter_mut() {
                    *state = lock_queue(&mut tx, *recipient).await?;
                }
                let mut outcomes = Vec::with_capacity(messages.len());
                let mut committed = Vec::new();
                for message in messages {
                    let recipient = message.recipient;
                    let queue = queues.get_mut(&recipient).and_then(Option::as_mut);
                    let admitted = rules::admit_message(queue, &self.limits)?;
                    let seq = match admitted {
                        Ok(seq) => seq,
                        Err(rejection) => {
                            outcomes.push(Err(rejection));
                            continue;
                        }
                    };
                    sqlx::query(
                        "INSERT INTO messages \
                           (account_id, device_id, seq, envelope, received_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(recipient.account.as_bytes().as_slice())
                    .bind(device_param(recipient))
                    .bind(db_u64(seq))
                    .bind(message.envelope.as_slice())
                    .bind(db_time(message.received_at))
                    .bind(db_time(message.expires_at))
                    .execute(&mut *tx)
                    .await?;
                    outcomes.push(Ok(seq));
                    committed.push(QueueEvent::Enqueued { recipient, seq });
                }
                for (recipient, state) in &queues {
                    let Some(state) = state.as_ref().filter(|s| s.dirty) else {
                        continue;
                    };
                    sqlx::query(
                        "UPDATE queue_counters SET last_seq = $3 \
                         WHERE account_id = $1 AND device_id = $2",
                    )
                    .bind(recipient.account.as_bytes().as_slice())
                    .bind(device_param(*recipient))
                    .bind(db_u64(state.last_seq))
                    .execute(&mut *tx)
                    .await?;
                }
                self.announce_in_tx(&mut tx, &committed).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                self.announce_committed(committed);
                Ok(outcomes)
            }

            async fn fetch_after(
                &self,
                recipient: Address,
                after: Seq,
                limit: u32,
                now: UnixSeconds,
            ) -> Result<Vec<StoredMessage>, StoreError> {
                let found = sqlx::query(
                    "SELECT seq, envelope, received_at FROM messages \
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
                            received_at: rows::unix(row.try_get(2)?)?,
                        })
                    })
                    .collect()
            }

            async fn ack(&self, recipient: Address, seqs: &[Seq]) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                let mut deleted = 0;
                for seq in seqs {
                    let done = sqlx::query(
                        "DELETE FROM messages WHERE account_id = $1 AND device_id = $2 AND seq = $3",
                    )
                    .bind(recipient.account.as_bytes().as_slice())
                    .bind(device_param(recipient))
                    .bind(db_u64(*seq))
                    .execute(&mut *tx)
                    .await?;
                    deleted += done.rows_affected();
                }
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
                let done = sqlx::query("DELETE FROM messages WHERE expires_at <= $1")
                    .bind(db_time(now))
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
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
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
                    .fetch_one(self.reader())
                    .await?;
                rows::unsigned(n, "negative row count")
            }

            fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
                self.events.subscribe()
            }
        }
    };
}
pub(crate) use impl_queue;
