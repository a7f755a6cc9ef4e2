//! What the two kinds of one-time prekey (X25519, `keys.rs`; ML-KEM-768,
//! `kem_keys.rs`) share in an upload: each device's mark, the highest
//! one-time id it has ever stored of a kind under the identity it publishes
//! (`one_time_prekey_marks`, migration 0009), and the check of an id stored
//! before.
//!
//! Why a mark: a claim deletes the key it hands out, and its owner deletes
//! the private half after its first use. An upload retried after a lost
//! answer, arriving after a claim of one of its keys, would otherwise store
//! that id again and hand it to a second initiator, whose session could
//! never open. Ids at or below the mark are never stored again, so a retry
//! is idempotent, with one row per device and kind (PROTOCOL.md 11.8,
//! "UploadPreKeys").
//!
//! Must never: lower a mark, keep one past the identity whose keys raised
//! it (`put_keys` drops it with them), or read or write one outside the
//! upload's transaction and its account row lock, which serializes every
//! writer of the device's keys and mark.

/// Which one-time prekeys a mark counts; the value is the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneTimeKind {
    /// `one_time_prekeys`.
    X25519 = 1,
    /// `kem_one_time_prekeys`.
    Kem = 2,
}

impl OneTimeKind {
    /// The `kind` column's value.
    pub(crate) fn column(self) -> i16 {
        self as i16
    }

    /// The stored key of one id of this kind (`$3`) of a device.
    pub(crate) fn stored_key_sql(self) -> &'static str {
        match self {
            OneTimeKind::X25519 => {
                "SELECT public_key FROM one_time_prekeys \
                 WHERE account_id = $1 AND device_id = $2 AND key_id = $3"
            }
            OneTimeKind::Kem => {
                "SELECT public_key FROM kem_one_time_prekeys \
                 WHERE account_id = $1 AND device_id = $2 AND key_id = $3"
            }
        }
    }
}

/// The mark helpers over `$db`'s transaction, expanded by `impl_store!`
/// before `impl_keys!` and `impl_kem_keys!`, which call them.
macro_rules! impl_one_time {
    ($db:ty) => {
        /// The device's mark of `kind`; `None` if it has stored none under
        /// the identity it publishes.
        async fn one_time_mark(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
            kind: $crate::store::one_time::OneTimeKind,
        ) -> Result<Option<u32>, StoreError> {
            let mark: Option<i64> = sqlx::query_scalar(
                "SELECT high_water FROM one_time_prekey_marks \
                 WHERE account_id = $1 AND device_id = $2 AND kind = $3",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .bind(kind.column())
            .fetch_optional(&mut **tx)
            .await?;
            mark.map(rows::key_id).transpose()
        }

        /// Raises the device's mark of `kind` from `mark` (as read by
        /// [`one_time_mark`] in this transaction) over `ids`; writes nothing
        /// when it does not rise.
        async fn raise_one_time_mark(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
            kind: $crate::store::one_time::OneTimeKind,
            mark: Option<u32>,
            ids: impl IntoIterator<Item = u32>,
        ) -> Result<(), StoreError> {
            let raised = rules::raised_mark(mark, ids);
            let Some(high_water) = raised.filter(|_| raised != mark) else {
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO one_time_prekey_marks (account_id, device_id, kind, high_water) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, device_id, kind) \
                 DO UPDATE SET high_water = excluded.high_water",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .bind(kind.column())
            .bind(i64::from(high_water))
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Deletes the device's mark of `kind`, with the keys of the
        /// identity that raised it (a new identity starts from none).
        async fn drop_one_time_mark(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
            kind: $crate::store::one_time::OneTimeKind,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "DELETE FROM one_time_prekey_marks \
                 WHERE account_id = $1 AND device_id = $2 AND kind = $3",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .bind(kind.column())
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// An uploaded id that was stored before: still stored with the
        /// same key (a retry) or no longer stored (claimed) stores nothing;
        /// still stored with another key refuses the upload
        /// ([`rules::stored_prekey_id`]; dropping `tx` rolls it back).
        async fn check_stored_one_time(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
            kind: $crate::store::one_time::OneTimeKind,
            id: u32,
            offered: &[u8],
        ) -> Result<(), StoreError> {
            let stored: Option<Vec<u8>> = sqlx::query_scalar(kind.stored_key_sql())
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .bind(i64::from(id))
                .fetch_optional(&mut **tx)
                .await?;
            match stored {
                Some(stored) => rules::stored_prekey_id(id, &stored, offered),
                None => Ok(()),
            }
        }
    };
}
pub(crate) use impl_one_time;
