//! PostgreSQL's own statements for a group-commit batch: the same steps as
//! the shared queue SQL (`queue.rs`), in fewer round trips, because on
//! PostgreSQL every statement is a round trip to a backend process and a
//! batch's cost was its ten or so statements (docs/BENCHMARKS.md).
//!
//! - [`lock_queues`]: one statement locks every recipient's account and
//!   device row (`FOR KEY SHARE`, the device only while it is current) and
//!   counter (created at 0 if missing, and locked by the `ON CONFLICT DO
//!   UPDATE` that returns its current value), in sorted order, and counts
//!   each queue. A device removal takes `FOR UPDATE` on the device row
//!   (`remove_device`), which the key-share lock waits for: a removal that
//!   committed first leaves the row no longer current when it is
//!   re-read, so the recipient is refused; one that comes later waits for
//!   the batch's commit and then deletes what the batch stored
//!   (PROTOCOL.md 15.5). The device is locked after its account (it joins
//!   the account's locked row), as every writer takes an account before
//!   its child rows, so a batch and an account deletion cannot deadlock. A count taken under the statement's
//!   snapshot can miss messages a concurrent transaction committed while
//!   this one waited for the counter lock; that transaction moved the
//!   counter, so a counter whose locked value differs from the snapshot's
//!   is counted again in a second statement (then under the lock).
//! - [`write_batch`]: one statement inserts the messages, writes the
//!   counters, deletes the acknowledged messages and queues the commit's
//!   NOTIFY (`rows::notify_payloads`).
//!
//! Must never: change what the shared path decides (the admission rules
//! run on what these statements return, in `queue.rs`), take locks in
//! another order, or put ciphertext in a NOTIFY payload.

use std::collections::HashMap;

use sqlx::{Postgres, Row, Transaction};
use umbra_wire::Address;

use super::rows::{self, QUEUE_CHANNEL};
use super::rules::QueueState;
use super::shared::device_param;
use super::{db_millis, db_time, db_u64, NewMessage, QueueEvent, Seq, StoreError};

/// See the module doc: `None` for a recipient that is not a current device
/// of an existing account; one answer per recipient (sorted, distinct), in
/// order.
pub(crate) async fn lock_queues(
    tx: &mut Transaction<'_, Postgres>,
    recipients: &[Address],
) -> Result<Vec<Option<QueueState>>, StoreError> {
    let accounts: Vec<&[u8]> = recipients
        .iter()
        .map(|r| r.account.as_bytes().as_slice())
        .collect();
    let devices: Vec<i64> = recipients.iter().map(|r| device_param(*r)).collect();
    let found = sqlx::query(
        "WITH r AS (SELECT * FROM unnest($1::bytea[], $2::bigint[]) AS r (account_id, device_id)), \
         a AS (SELECT account_id FROM accounts \
               WHERE account_id IN (SELECT account_id FROM r) \
               ORDER BY account_id FOR KEY SHARE), \
         d AS (SELECT dv.account_id, dv.device_id FROM devices dv \
               JOIN a USING (account_id) JOIN r USING (account_id, device_id) \
               WHERE dv.removed_at IS NULL \
               ORDER BY dv.account_id, dv.device_id FOR KEY SHARE OF dv), \
         c AS (INSERT INTO queue_counters (account_id, device_id, last_seq) \
               SELECT account_id, device_id, 0 FROM d \
               ORDER BY account_id, device_id \
               ON CONFLICT (account_id, device_id) \
               DO UPDATE SET last_seq = queue_counters.last_seq \
               RETURNING account_id, device_id, last_seq) \
         SELECT c.account_id, c.device_id, c.last_seq, \
           COALESCE((SELECT q.last_seq FROM queue_counters q \
                     WHERE q.account_id = c.account_id AND q.device_id = c.device_id), 0), \
           (SELECT COUNT(*) FROM messages m \
            WHERE m.account_id = c.account_id AND m.device_id = c.device_id) \
         FROM c",
    )
    .bind(&accounts)
    .bind(&devices)
    .fetch_all(&mut **tx)
    .await?;
    let mut states: HashMap<Address, (i64, i64)> = HashMap::with_capacity(found.len());
    let mut stale: Vec<Address> = Vec::new();
    for row in found {
        let account: Vec<u8> = row.try_get(0)?;
        let recipient = rows::address(&account, row.try_get(1)?)?;
        let locked: i64 = row.try_get(2)?;
        let seen: i64 = row.try_get(3)?;
        if locked != seen {
            stale.push(recipient);
        }
        states.insert(recipient, (locked, row.try_get(4)?));
    }
    if !stale.is_empty() {
        recount(tx, &stale, &mut states).await?;
    }
    recipients
        .iter()
        .map(|r| {
            let Some((last, depth)) = states.get(r) else {
                return Ok(None);
            };
            Ok(Some(QueueState::new(
                rows::unsigned(*last, "negative queue counter")?,
                rows::unsigned(*depth, "negative row count")?,
            )))
        })
        .collect()
}

/// Counts `stale`'s queues again, in a statement of its own (a fresh
/// snapshot, taken with their counters locked).
async fn recount(
    tx: &mut Transaction<'_, Postgres>,
    stale: &[Address],
    states: &mut HashMap<Address, (i64, i64)>,
) -> Result<(), StoreError> {
    let accounts: Vec<&[u8]> = stale
        .iter()
        .map(|r| r.account.as_bytes().as_slice())
        .collect();
    let devices: Vec<i64> = stale.iter().map(|r| device_param(*r)).collect();
    let counted = sqlx::query(
        "SELECT r.account_id, r.device_id, \
           (SELECT COUNT(*) FROM messages m \
            WHERE m.account_id = r.account_id AND m.device_id = r.device_id) \
         FROM unnest($1::bytea[], $2::bigint[]) AS r (account_id, device_id)",
    )
    .bind(&accounts)
    .bind(&devices)
    .fetch_all(&mut **tx)
    .await?;
    for row in counted {
        let account: Vec<u8> = row.try_get(0)?;
        let recipient = rows::address(&account, row.try_get(1)?)?;
        if let Some(state) = states.get_mut(&recipient) {
            state.1 = row.try_get(2)?;
        }
    }
    Ok(())
}

/// Writes an admitted batch in one statement (module doc): `admitted`
/// `(recipient, seq, message)` inserted, `dirty` `(recipient, last_seq)`
/// counters written (their rows are locked: [`lock_queues`]), `acks`
/// deleted, and `committed` announced at commit. Returns how many messages
/// each ack deleted (a seq listed twice counts for the first ack).
pub(crate) async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    admitted: &[(Address, Seq, &NewMessage)],
    dirty: &[(Address, Seq)],
    acks: &[&(Address, Vec<Seq>)],
    committed: &[QueueEvent],
) -> Result<Vec<u64>, StoreError> {
    let mut owner: HashMap<(Address, Seq), usize> = HashMap::new();
    let mut ack_accounts: Vec<&[u8]> = Vec::new();
    let mut ack_devices: Vec<i64> = Vec::new();
    let mut ack_seqs: Vec<i64> = Vec::new();
    for (index, (recipient, seqs)) in acks.iter().copied().enumerate() {
        for seq in seqs {
            if let std::collections::hash_map::Entry::Vacant(slot) = owner.entry((*recipient, *seq))
            {
                slot.insert(index);
                ack_accounts.push(recipient.account.as_bytes().as_slice());
                ack_devices.push(device_param(*recipient));
                ack_seqs.push(db_u64(*seq));
            }
        }
    }
    let payloads = rows::notify_payloads(committed.iter().filter_map(|event| match event {
        QueueEvent::Enqueued { recipient, seq } => Some((*recipient, *seq)),
        QueueEvent::Resync => None,
    }));
    let mut deleted = vec![0u64; acks.len()];
    if admitted.is_empty() && dirty.is_empty() && ack_seqs.is_empty() && payloads.is_empty() {
        return Ok(deleted);
    }
    let row = sqlx::query(
        "WITH ins AS (INSERT INTO messages \
                (account_id, device_id, seq, envelope, received_at, received_at_ms, expires_at) \
              SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bytea[], \
                                   $5::bigint[], $6::bigint[], $7::bigint[])), \
         cnt AS (UPDATE queue_counters q SET last_seq = u.last_seq \
                 FROM unnest($8::bytea[], $9::bigint[], $10::bigint[]) \
                   AS u (account_id, device_id, last_seq) \
                 WHERE q.account_id = u.account_id AND q.device_id = u.device_id), \
         del AS (DELETE FROM messages m \
                 USING unnest($11::bytea[], $12::bigint[], $13::bigint[]) \
                   AS d (account_id, device_id, seq) \
                 WHERE m.account_id = d.account_id AND m.device_id = d.device_id \
                   AND m.seq = d.seq \
                 RETURNING m.account_id, m.device_id, m.seq) \
         SELECT \
           (SELECT COUNT(pg_notify($14, p)) FROM unnest($15::text[]) AS p), \
           (SELECT COALESCE(array_agg(account_id), '{}') FROM del), \
           (SELECT COALESCE(array_agg(device_id), '{}') FROM del), \
           (SELECT COALESCE(array_agg(seq), '{}') FROM del)",
    )
    .bind(
        admitted
            .iter()
            .map(|(r, _, _)| r.account.as_bytes().as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(r, _, _)| device_param(*r))
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(_, seq, _)| db_u64(*seq))
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(_, _, m)| m.envelope.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(_, _, m)| db_time(m.received_at_ms / 1000))
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(_, _, m)| db_millis(m.received_at_ms))
            .collect::<Vec<_>>(),
    )
    .bind(
        admitted
            .iter()
            .map(|(_, _, m)| db_time(m.expires_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        dirty
            .iter()
            .map(|(r, _)| r.account.as_bytes().as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        dirty
            .iter()
            .map(|(r, _)| device_param(*r))
            .collect::<Vec<_>>(),
    )
    .bind(
        dirty
            .iter()
            .map(|(_, last)| db_u64(*last))
            .collect::<Vec<_>>(),
    )
    .bind(&ack_accounts)
    .bind(&ack_devices)
    .bind(&ack_seqs)
    .bind(QUEUE_CHANNEL)
    .bind(&payloads)
    .fetch_one(&mut **tx)
    .await?;
    let accounts: Vec<Vec<u8>> = row.try_get(1)?;
    let devices: Vec<i64> = row.try_get(2)?;
    let seqs: Vec<i64> = row.try_get(3)?;
    if accounts.len() != devices.len() || accounts.len() != seqs.len() {
        return Err(StoreError::Corrupt("deleted rows came back uneven"));
    }
    for ((account, device), seq) in accounts.iter().zip(devices).zip(seqs) {
        let recipient = rows::address(account, device)?;
        let seq = rows::unsigned(seq, "negative seq")?;
        if let Some(index) = owner.get(&(recipient, seq)) {
            deleted[*index] += 1;
        }
    }
    Ok(deleted)
}
