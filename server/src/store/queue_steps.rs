//! The steps of the message queue's SQL (`queue.rs`), expanded by
//! `impl_store!` for each backend beside the role itself: locking a batch's
//! queues and reading their counters and depths, admitting its messages,
//! and writing them (inserts, counters, ack deletions). PostgreSQL runs its
//! own single-statement forms of the lock and the write
//! (`dialect!(lock_queues)`, `dialect!(write_batch)`: `postgres_queue.rs`),
//! so those two are SQLite's alone there.
//!
//! Must never: announce anything (the caller does, after commit), decide a
//! rule itself (`rules::admit_message` does), or take locks out of the
//! sorted order.

/// The queue steps' SQL for `$db`.
macro_rules! impl_queue_steps {
    ($db:ty) => {
        /// Locks the queues of `recipients` (sorted, distinct) for this
        /// transaction and reads each one's counter and depth, in three
        /// statements whatever their number (`sql_lists`): `None` for a
        /// recipient that is not a current device of an existing account,
        /// read here, inside the batch's transaction, so a removal that
        /// committed first is seen and nothing is stored for its device
        /// (PROTOCOL.md 15.5). Locks are taken as one recipient at a time
        /// took them before, in sorted order: every account and its
        /// current devices (`FOR KEY SHARE` on PostgreSQL: blocks a
        /// deletion or removal, not other enqueues), then every counter
        /// (created at 0 first, so there is a row to lock), and the depth
        /// is read under the counter lock.
        // PostgreSQL locks its queues in one statement of its own
        // (`dialect!(lock_queues)`, `postgres_queue`).
        #[allow(dead_code)]
        async fn lock_queues(
            tx: &mut sqlx::Transaction<'_, $db>,
            recipients: &[Address],
        ) -> Result<Vec<Option<QueueState>>, StoreError> {
            use std::collections::{HashMap, HashSet};
            use $crate::store::sql_lists::{in_list_len, list, row_chunks, tuples, MAX_IN};

            let mut accounts: Vec<AccountId> = recipients.iter().map(|r| r.account).collect();
            accounts.dedup();
            // The current devices of the recipients' accounts (a device row
            // exists only beside its account's).
            let mut current = HashSet::new();
            for chunk in accounts.chunks(MAX_IN) {
                let n = in_list_len(chunk.len());
                let sql = format!(
                    "SELECT a.account_id, d.device_id FROM accounts a \
                     JOIN devices d ON d.account_id = a.account_id \
                     WHERE d.removed_at IS NULL AND a.account_id IN ({}) \
                     ORDER BY a.account_id, d.device_id{}",
                    list(1, n),
                    dialect!(key_share)
                );
                let mut query = sqlx::query(&sql);
                for i in 0..n {
                    query = query.bind(chunk[i.min(chunk.len() - 1)].as_bytes().as_slice());
                }
                for row in query.fetch_all(&mut **tx).await? {
                    let account: Vec<u8> = row.try_get(0)?;
                    current.insert(rows::address(&account, row.try_get(1)?)?);
                }
            }
            let live: Vec<Address> = recipients
                .iter()
                .copied()
                .filter(|r| current.contains(r))
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
                    if !current.contains(r) {
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
        #[allow(dead_code)]
        async fn insert_messages(
            tx: &mut sqlx::Transaction<'_, $db>,
            admitted: &[(Address, Seq, &NewMessage)],
        ) -> Result<(), StoreError> {
            use $crate::store::sql_lists::{row_chunks, tuples};
            let mut at = 0;
            for rows in row_chunks(admitted.len()) {
                let sql = format!(
                    "INSERT INTO messages \
                       (account_id, device_id, seq, envelope, received_at, received_at_ms, \
                        expires_at) VALUES {}",
                    tuples(1, rows, 7)
                );
                let mut query = sqlx::query(&sql);
                for (recipient, seq, message) in &admitted[at..at + rows] {
                    query = query
                        .bind(recipient.account.as_bytes().as_slice())
                        .bind(device_param(*recipient))
                        .bind(db_u64(*seq))
                        .bind(message.envelope.as_slice())
                        .bind(db_time(message.received_at_ms / 1000))
                        .bind(db_millis(message.received_at_ms))
                        .bind(db_time(message.expires_at));
                }
                query.execute(&mut **tx).await?;
                at += rows;
            }
            Ok(())
        }

        /// Writes the new counters of the queues that took messages (their
        /// rows exist and are locked: `lock_queues`).
        #[allow(dead_code)]
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

        /// Locks the queue of every recipient of `parts` in `tx` (sorted,
        /// so two batches touching the same recipients cannot deadlock) and
        /// reads its state: `None` for a recipient that is not a current
        /// device of an existing account. Taken
        /// before the parts' tokens, as every writer takes an account's row
        /// before its other rows (`delete_account`), so a batch and an
        /// account deletion never wait for each other in a cycle.
        async fn lock_batch(
            tx: &mut sqlx::Transaction<'_, $db>,
            parts: &[$crate::store::batch::BatchPart<'_>],
        ) -> Result<BTreeMap<Address, Option<QueueState>>, StoreError> {
            let recipients: Vec<Address> = parts
                .iter()
                .flat_map(|p| p.messages.iter().map(|m| m.recipient))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if recipients.is_empty() {
                return Ok(BTreeMap::new());
            }
            let states = dialect!(lock_queues)(tx, &recipients).await?;
            Ok(recipients.into_iter().zip(states).collect())
        }

        /// Admits `messages` into their locked `queues` (`lock_batch`): one
        /// outcome per message, the rows to insert `(recipient, seq,
        /// message)`, the counters to write `(recipient, last_seq)`, and the
        /// events to announce once the transaction commits. Writes nothing.
        #[allow(clippy::type_complexity)]
        fn admit<'m>(
            queues: &mut BTreeMap<Address, Option<QueueState>>,
            messages: &[&'m NewMessage],
            limits: &$crate::store::StoreLimits,
        ) -> Result<
            (
                Vec<EnqueueOutcome>,
                Vec<(Address, Seq, &'m NewMessage)>,
                Vec<(Address, Seq)>,
                Vec<QueueEvent>,
            ),
            StoreError,
        > {
            let mut outcomes = Vec::with_capacity(messages.len());
            let mut admitted = Vec::with_capacity(messages.len());
            let mut committed = Vec::with_capacity(messages.len());
            for &message in messages {
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
            let dirty: Vec<(Address, Seq)> = queues
                .iter()
                .filter_map(|(r, s)| s.as_ref().filter(|s| s.dirty).map(|s| (*r, s.last_seq)))
                .collect();
            Ok((outcomes, admitted, dirty, committed))
        }

        /// Writes an admitted batch statement by statement: the messages,
        /// the counters, the acks' deletions (how many each deleted). The
        /// announcement is the backend's (`announce_committed`).
        /// PostgreSQL writes it all, NOTIFY included, in one statement of
        /// its own (`dialect!(write_batch)`, `postgres_queue`).
        #[allow(dead_code)]
        async fn write_in_steps(
            tx: &mut sqlx::Transaction<'_, $db>,
            admitted: &[(Address, Seq, &NewMessage)],
            dirty: &[(Address, Seq)],
            acks: &[&(Address, Vec<Seq>)],
            _committed: &[QueueEvent],
        ) -> Result<Vec<u64>, StoreError> {
            insert_messages(tx, admitted).await?;
            write_counters(tx, dirty).await?;
            delete_acks(tx, acks).await
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
        #[allow(dead_code)]
        async fn delete_acks(
            tx: &mut sqlx::Transaction<'_, $db>,
            acks: &[&(Address, Vec<Seq>)],
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

    };
}
pub(crate) use impl_queue_steps;
