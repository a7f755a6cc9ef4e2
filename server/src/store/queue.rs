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
    /// overflow its recipient's queue, has no such recipient, or would take
    /// its sender (`charged_to`) past the sender budget of the window holding
    /// its `received_at` is refused alone (`rules::admit_message`). Returns
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

    /// Deletes messages with `expires_at <= now`, and sender budget totals
    /// of windows that ended before the one holding `now`.
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

        /// Locks one sender's budget total for a window (a row is created at
        /// 0 first, so there is a row to lock): `None` if the sender account
        /// no longer exists, and then nothing is charged (revoking its
        /// connections is not the queue's business).
        async fn lock_budget(
            tx: &mut sqlx::Transaction<'_, $db>,
            sender: AccountId,
            window_start: UnixSeconds,
        ) -> Result<Option<SenderBudget>, StoreError> {
            if !account_exists(tx, sender).await? {
                return Ok(None);
            }
            let account = sender.as_bytes().as_slice();
            sqlx::query(
                "INSERT INTO sender_budgets (account_id, window_start, bytes) VALUES ($1, $2, 0) \
                 ON CONFLICT (account_id, window_start) DO NOTHING",
            )
            .bind(account)
            .bind(db_time(window_start))
            .execute(&mut **tx)
            .await?;
            let used: i64 = sqlx::query_scalar(concat!(
                "SELECT bytes FROM sender_budgets WHERE account_id = $1 AND window_start = $2",
                dialect!(for_update)
            ))
            .bind(account)
            .bind(db_time(window_start))
            .fetch_one(&mut **tx)
            .await?;
            Ok(Some(SenderBudget::new(
                window_start,
                rows::unsigned(used, "negative sender budget")?,
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
                // Then every sender budget, also sorted: all counters before
                // any budget, so the lock order stays acyclic.
                let window = self.limits.sender_budget_window_secs;
                let mut budgets: BTreeMap<(AccountId, UnixSeconds), Option<SenderBudget>> =
                    messages
                        .iter()
                        .map(|m| ((m.charged_to, rules::budget_window(m.received_at, window)), None))
                        .collect();
                for ((sender, window_start), budget) in budgets.iter_mut() {
                    *budget = lock_budget(&mut tx, *sender, *window_start).await?;
                }
                // A sender account that is gone is charged nothing.
                let mut uncharged: SenderBudget;
                let mut outcomes = Vec::with_capacity(messages.len());
                let mut committed = Vec::new();
                for message in messages {
                    let recipient = message.recipient;
                    let key = (
                        message.charged_to,
                        rules::budget_window(message.received_at, window),
                    );
                    let budget = match budgets.get_mut(&key) {
                        Some(Some(budget)) => budget,
                        _ => {
                            uncharged = SenderBudget::new(0, 0);
                            &mut uncharged
                        }
                    };
                    let queue = queues.get_mut(&recipient).and_then(Option::as_mut);
                    let admitted =
                        rules::admit_message(queue, budget, message.envelope.len(), &self.limits)?;
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
                for ((sender, _), budget) in &budgets {
                    let Some(budget) = budget.as_ref().filter(|b| b.dirty) else {
                        continue;
                    };
                    sqlx::query(
                        "UPDATE sender_budgets SET bytes = $3 \
                         WHERE account_id = $1 AND window_start = $2",
                    )
                    .bind(sender.as_bytes().as_slice())
                    .bind(db_time(budget.window_start))
                    .bind(db_u64(budget.used))
                    .execute(&mut *tx)
                    .await?;
                }
                self.announce_in_tx(&mut tx, &committed).await?;
                tx.commit().await?;
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
                tx.commit().await?;
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
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM messages WHERE expires_at <= $1")
                    .bind(db_time(now))
                    .execute(&mut *tx)
                    .await?;
                let current =
                    rules::budget_window(now, self.limits.sender_budget_window_secs);
                sqlx::query("DELETE FROM sender_budgets WHERE window_start < $1")
                    .bind(db_time(current))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
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
