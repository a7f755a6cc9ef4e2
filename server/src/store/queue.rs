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
        /// Locks the queues of `recipients` (sorted, distinct) for this
        /// transaction and reads each one's counter and depth, in three
        /// statements whatever their number (`sql_lists`): `None` for a
        /// recipient without an account. Locks are taken as one recipient
        /// at a time took them before, in sorted order: every account
        /// (`FOR KEY SHARE` on PostgreSQL: blocks its deletion, not other
        /// enqueues), then every counter (created at 0 first, so there is a
        /// row to lock), and the depth is read under the counter lock.
        async fn lock_queues(
            tx: &mut sqlx::Transaction<'_, $db>,
            recipients: &[Address],
        ) -> Result<Vec<Option<QueueState>>, StoreError> {
            use std::collections::{HashMap, HashSet};
            use $crate::store::sql_lists::{in_list_len, list, row_chunks, tuples, MAX_IN};

            let mut accounts: Vec<AccountId> = recipients.iter().map(|r| r.account).collect();
            accounts.dedup();
            let mut existing = HashSet::new();
            for chunk in accounts.chunks(MAX_IN) {
                let n = in_list_len(chunk.len());
                let sql = format!(
                    "SELECT account_id FROM accounts WHERE account_id IN ({}) ORDER BY account_id{}",
                    list(1, n),
                    dialect!(key_share)
                );
                let mut query = sqlx::query(&sql);
                for i in 0..n {
                    query = query.bind(chunk[i.min(chunk.len() - 1)].as_bytes().as_slice());
                }
                for row in query.fetch_all(&mut **tx).await? {
                    existing.insert(rows::account_id(row.try_get(0)?)?);
                }
            }
            let live: Vec<Address> = recipients
                .iter()
                .copied()
                .filter(|r| existing.contains(&r.account))
                .collect();
            let mut at = 0;
            for rows in row_chunks(live.len()) {
                let sql = format!(
                    "INSERT INTO queue_counters (account_id, device_id, last_seq) VALUES {} \
                     ON CONFLICT (account_id, device_id) DO NOTHING",
                    tuples(1, rows, 3)
                );
                let mut query = sqlx::query(&sql);
                for r in &live[at..at + rows] {
                    query = query
                        .bind(r.account.as_bytes().as_slice())
                        .bind(device_param(*r))
                        .bind(0i64);
                }
                query.execute(&mut **tx).await?;
                at += rows;
            }
            let live_accounts: Vec<AccountId> = {
                let mut a: Vec<AccountId> = live.iter().map(|r| r.account).collect();
                a.dedup();
                a
            };
            let mut last_seqs: HashMap<(AccountId, i64), i64> = HashMap::new();
            let mut depths: HashMap<(AccountId, i64), i64> = HashMap::new();
            for chunk in live_accounts.chunks(MAX_IN) {
                let n = in_list_len(chunk.len());
                let pick = |i: usize| chunk[i.min(chunk.len() - 1)].as_bytes().as_slice();
                let sql = format!(
                    "SELECT account_id, device_id, last_seq FROM queue_counters \
                     WHERE account_id IN ({}) ORDER BY account_id, device_id{}",
                    list(1, n),
                    dialect!(for_update)
                );
                let mut query = sqlx::query(&sql);
                for i in 0..n {
                    query = query.bind(pick(i));
                }
                for row in query.fetch_all(&mut **tx).await? {
                    let key = (rows::account_id(row.try_get(0)?)?, row.try_get(1)?);
                    last_seqs.insert(key, row.try_get(2)?);
                }
                let sql = format!(
                    "SELECT account_id, device_id, COUNT(*) FROM messages \
                     WHERE account_id IN ({}) GROUP BY account_id, device_id",
                    list(1, n)
                );
                let mut query = sqlx::query(&sql);
                for i in 0..n {
                    query = query.bind(pick(i));
                }
                for row in query.fetch_all(&mut **tx).await? {
                    let key = (rows::account_id(row.try_get(0)?)?, row.try_get(1)?);
                    depths.insert(key, row.try_get(2)?);
                }
            }
            recipients
                .iter()
                .map(|r| {
                    if !existing.contains(&r.account) {
                        return Ok(None);
                    }
                    let key = (r.account, device_param(*r));
                    let last = *last_seqs
                        .get(&key)
                        .ok_or(StoreError::Corrupt("queue counter missing after insert"))?;
                    let depth = depths.get(&key).copied().unwrap_or(0);
                    Ok(Some(QueueState::new(
                        rows::unsigned(last, "negative queue counter")?,
                        rows::unsigned(depth, "negative row count")?,
                    )))
                })
                .collect()
        }

        /// Inserts admitted messages, `(recipient, seq, message)`, in
        /// multi-row statements.
        async fn insert_messages(
            tx: &mut sqlx::Transaction<'_, $db>,
            admitted: &[(Address, Seq, &NewMessage)],
        ) -> Result<(), StoreError> {
            use $crate::store::sql_lists::{row_chunks, tuples};
            let mut at = 0;
            for rows in row_chunks(admitted.len()) {
                let sql = format!(
                    "INSERT INTO messages \
                       (account_id, device_id, seq, envelope, received_at, expires_at) VALUES {}",
                    tuples(1, rows, 6)
                );
                let mut query = sqlx::query(&sql);
                for (recipient, seq, message) in &admitted[at..at + rows] {
                    query = query
                        .bind(recipient.account.as_bytes().as_slice())
                        .bind(device_param(*recipient))
                        .bind(db_u64(*seq))
                        .bind(message.envelope.as_slice())
                        .bind(db_time(message.received_at))
                        .bind(db_time(message.expires_at));
                }
                query.execute(&mut **tx).await?;
                at += rows;
            }
            Ok(())
        }

        /// Writes the new counters of the queues that took messages (their
        /// rows exist and are locked: `lock_queues`).
        async fn write_counters(
            tx: &mut sqlx::Transaction<'_, $db>,
            dirty: &[(Address, Seq)],
        ) -> Result<(), StoreError> {
            use $crate::store::sql_lists::{row_chunks, tuples};
            let mut at = 0;
            for rows in row_chunks(dirty.len()) {
                let sql = format!(
                    "INSERT INTO queue_counters (account_id, device_id, last_seq) VALUES {} \
                     ON CONFLICT (account_id, device_id) DO UPDATE SET last_seq = excluded.last_seq",
                    tuples(1, rows, 3)
                );
                let mut query = sqlx::query(&sql);
                for (recipient, last_seq) in &dirty[at..at + rows] {
                    query = query
                        .bind(recipient.account.as_bytes().as_slice())
                        .bind(device_param(*recipient))
                        .bind(db_u64(*last_seq));
                }
                query.execute(&mut **tx).await?;
                at += rows;
            }
            Ok(())
        }

        /// Admits and inserts `messages` in `tx`: one outcome per message,
        /// and the events to announce once `tx` commits.
        async fn enqueue_in_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            messages: &[NewMessage],
            limits: &$crate::store::StoreLimits,
        ) -> Result<(Vec<EnqueueOutcome>, Vec<QueueEvent>), StoreError> {
            if messages.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            // Every recipient's account and counter is locked in sorted
            // order, so two batches touching the same recipients cannot
            // deadlock.
            let recipients: Vec<Address> = messages
                .iter()
                .map(|m| m.recipient)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let states = lock_queues(tx, &recipients).await?;
            let mut queues: BTreeMap<Address, Option<QueueState>> =
                recipients.into_iter().zip(states).collect();
            let mut outcomes = Vec::with_capacity(messages.len());
            let mut admitted = Vec::with_capacity(messages.len());
            let mut committed = Vec::with_capacity(messages.len());
            for message in messages {
                let recipient = message.recipient;
                let queue = queues.get_mut(&recipient).and_then(Option::as_mut);
                match rules::admit_message(queue, limits)? {
                    Ok(seq) => {
                        admitted.push((recipient, seq, message));
                        outcomes.push(Ok(seq));
                        committed.push(QueueEvent::Enqueued { recipient, seq });
                    }
                    Err(rejection) => outcomes.push(Err(rejection)),
                }
            }
            insert_messages(tx, &admitted).await?;
            let dirty: Vec<(Address, Seq)> = queues
                .iter()
                .filter_map(|(r, s)| s.as_ref().filter(|s| s.dirty).map(|s| (*r, s.last_seq)))
                .collect();
            write_counters(tx, &dirty).await?;
            Ok((outcomes, committed))
        }

        /// Deletes `recipient`'s messages listed in `seqs` in `tx`, one
        /// DELETE per MAX_IN seqs (a repeated seq in the padded list
        /// deletes nothing twice); returns how many were deleted.
        async fn delete_acked(
            tx: &mut sqlx::Transaction<'_, $db>,
            recipient: Address,
            seqs: &[Seq],
        ) -> Result<u64, StoreError> {
            use $crate::store::sql_lists::{in_list_len, list, MAX_IN};
            let mut deleted = 0;
            for chunk in seqs.chunks(MAX_IN) {
                let n = in_list_len(chunk.len());
                let sql = format!(
                    "DELETE FROM messages WHERE account_id = $1 AND device_id = $2 \
                     AND seq IN ({})",
                    list(3, n)
                );
                let mut query = sqlx::query(&sql)
                    .bind(recipient.account.as_bytes().as_slice())
                    .bind(device_param(recipient));
                for i in 0..n {
                    query = query.bind(db_u64(chunk[i.min(chunk.len() - 1)]));
                }
                deleted += query.execute(&mut **tx).await?.rows_affected();
            }
            Ok(deleted)
        }

        /// Deletes the messages of several acks (`(recipient, seqs)`) in
        /// `tx`, in multi-row statements whatever their number (one round
        /// trip per 64 seqs instead of one per ack); returns how many each
        /// ack deleted (a seq listed twice counts for the first ack).
        async fn delete_acks(
            tx: &mut sqlx::Transaction<'_, $db>,
            acks: &[(Address, Vec<Seq>)],
        ) -> Result<Vec<u64>, StoreError> {
            use std::collections::HashMap;
            use $crate::store::sql_lists::{row_chunks, tuples};
            let mut owner: HashMap<(Address, Seq), usize> = HashMap::new();
            let mut rows_to_delete: Vec<(Address, Seq)> = Vec::new();
            for (index, (recipient, seqs)) in acks.iter().enumerate() {
                for seq in seqs {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        owner.entry((*recipient, *seq))
                    {
                        slot.insert(index);
                        rows_to_delete.push((*recipient, *seq));
                    }
                }
            }
            let mut deleted = vec![0u64; acks.len()];
            let mut at = 0;
            for rows in row_chunks(rows_to_delete.len()) {
                let sql = format!(
                    "DELETE FROM messages WHERE (account_id, device_id, seq) IN (VALUES {}) \
                     RETURNING account_id, device_id, seq",
                    tuples(1, rows, 3)
                );
                let mut query = sqlx::query(&sql);
                for (recipient, seq) in &rows_to_delete[at..at + rows] {
                    query = query
                        .bind(recipient.account.as_bytes().as_slice())
                        .bind(device_param(*recipient))
                        .bind(db_u64(*seq));
                }
                for row in query.fetch_all(&mut **tx).await? {
                    let account: Vec<u8> = row.try_get(0)?;
                    let recipient = rows::address(&account, row.try_get(1)?)?;
                    let seq = rows::unsigned(row.try_get(2)?, "negative seq")?;
                    if let Some(index) = owner.get(&(recipient, seq)) {
                        deleted[*index] += 1;
                    }
                }
                at += rows;
            }
            Ok(deleted)
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
                Ok(self.enqueue_and_ack(messages, &[]).await?.0)
            }

            async fn enqueue_and_ack(
                &self,
                messages: &[NewMessage],
                acks: &[(Address, Vec<Seq>)],
            ) -> Result<(Vec<EnqueueOutcome>, Vec<u64>), StoreError> {
                if messages.is_empty() && acks.iter().all(|(_, seqs)| seqs.is_empty()) {
                    return Ok((Vec::new(), vec![0; acks.len()]));
                }
                let mut tx = self.write_tx().await?;
                let (outcomes, committed) = enqueue_in_tx(&mut tx, messages, &self.limits).await?;
                let deleted = delete_acks(&mut tx, acks).await?;
                self.announce_in_tx(&mut tx, &committed).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                self.announce_committed(committed);
                Ok((outcomes, deleted))
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
