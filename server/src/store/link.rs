//! The link rendezvous role: tickets and the posts of their two sides, by
//! which a new device receives the account from an existing one
//! (docs/PROTOCOL.md 15.6). Kept in the store, not in a node's memory, so
//! the creator and the joiner may be connected to different nodes.
//!
//! A ticket is a handle, not a credential: joining it grants nothing
//! without the secret of the link code, which the relay never sees (15.7),
//! so it is stored as it is. The store enforces what it can see: expiry,
//! one join, the creator's address, the post limits, one enrolment and
//! one token. Which *connection* joined a ticket is the handler's to keep.
//!
//! Must never: let a ticket be joined twice, be used at or after its
//! expiry, enrol two devices, issue two tokens, read a post, or store a
//! raw token (only its hash, as 11.4).

use async_trait::async_trait;
use umbra_wire::{Address, DeviceId};

use super::{StoreError, TokenHash, UnixSeconds};

/// A link ticket: 16 bytes from the relay's CSPRNG (15.6).
pub type LinkTicket = [u8; 16];

/// Who posts to or reads from a link exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkParty {
    /// The existing device that created the ticket; the store checks the
    /// address against the ticket's.
    Creator(Address),
    /// The new device, on the connection that joined the ticket (the
    /// handler checks the connection; the store that it was joined).
    Joiner,
}

impl LinkParty {
    /// The `side` column of this party's posts.
    fn side(self) -> i64 {
        match self {
            LinkParty::Creator(_) => 0,
            LinkParty::Joiner => 1,
        }
    }

    /// The `side` column of the other party's posts.
    fn other_side(self) -> i64 {
        1 - self.side()
    }
}

/// A live ticket as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTicketState {
    /// The creator's address.
    pub creator: Address,
    /// When the ticket stops being usable.
    pub expires_at: UnixSeconds,
    /// Whether the joiner side is taken.
    pub joined: bool,
    /// The device `LinkEnrol` assigned, if it ran.
    pub enrolled: Option<DeviceId>,
    /// Whether the joiner has received its token, or (with no enrolled
    /// device) the enrolment was refused.
    pub finished: bool,
}

impl LinkTicketState {
    /// Whether `LinkEnrol` was refused for good on this ticket (the
    /// account at its device limit): finished with no device enrolled.
    pub fn refused(&self) -> bool {
        self.finished && self.enrolled.is_none()
    }
}

/// The bounds of one exchange, from the relay's constants (15.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Unexpired tickets one account may hold (`MAX_LINK_TICKETS_PER_ACCOUNT`).
    pub max_tickets_per_account: u64,
    /// Posts one side may make (`MAX_LINK_MESSAGES_PER_SIDE`).
    pub max_posts_per_side: u64,
}

/// Link tickets and their posts.
#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// Stores a new `ticket` for `creator`, usable until `expires_at`.
    /// [`StoreError::TooManyLinkTickets`] when the account already holds
    /// `limits.max_tickets_per_account` unexpired tickets;
    /// [`StoreError::UnknownAccount`]; [`StoreError::UnknownDevice`] if the
    /// creator is not a current device.
    async fn create_link_ticket(
        &self,
        creator: Address,
        ticket: &LinkTicket,
        now: UnixSeconds,
        expires_at: UnixSeconds,
        limits: LinkLimits,
    ) -> Result<(), StoreError>;

    /// Takes the joiner side of `ticket`, once: returns the creator's
    /// address. An unknown, expired or already joined ticket →
    /// [`StoreError::UnknownLinkTicket`].
    async fn join_link_ticket(
        &self,
        ticket: &LinkTicket,
        now: UnixSeconds,
    ) -> Result<Address, StoreError>;

    /// The ticket, if it exists and has not expired at `now`.
    async fn link_ticket(
        &self,
        ticket: &LinkTicket,
        now: UnixSeconds,
    ) -> Result<Option<LinkTicketState>, StoreError>;

    /// Appends `payload` to `from`'s side and returns its number (1 for the
    /// first). [`StoreError::UnknownLinkTicket`] if the ticket is unknown,
    /// expired or finished, not yet joined, or `from` is a creator of
    /// another address; [`StoreError::TooManyLinkMessages`] past
    /// `limits.max_posts_per_side`. The payload's size is the handler's
    /// (`check_limits`); the schema refuses one over 32 768 bytes.
    async fn post_link_message(
        &self,
        ticket: &LinkTicket,
        from: LinkParty,
        payload: &[u8],
        now: UnixSeconds,
        limits: LinkLimits,
    ) -> Result<u32, StoreError>;

    /// The other side's posts numbered above `after`, in order, for `to`.
    /// The same refusals as [`LinkStore::post_link_message`], except that a
    /// finished ticket is still readable until it expires.
    async fn link_messages(
        &self,
        ticket: &LinkTicket,
        to: LinkParty,
        after: u32,
        now: UnixSeconds,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// `LinkEnrol`: on a joined, unexpired, not yet enrolled ticket of
    /// `creator`, enrols the next device of the account (as
    /// [`DeviceStore::add_device`](super::DeviceStore::add_device), so
    /// [`StoreError::TooManyDevices`] applies) in the same transaction;
    /// that refusal marks the ticket finished with no device
    /// ([`LinkTicketState::refused`]) before it is returned.
    /// Anything else, a `creator` that is no longer current included
    /// (checked under the account lock a removal takes) →
    /// [`StoreError::UnknownLinkTicket`].
    async fn enrol_link_device(
        &self,
        creator: Address,
        ticket: &LinkTicket,
        now: UnixSeconds,
    ) -> Result<DeviceId, StoreError>;

    /// The joiner's side of the enrolment: on an enrolled, unexpired, not
    /// yet finished ticket, stores `token_hash` for the enrolled device
    /// (expiring at `token_expires_at`) and marks the ticket finished, in
    /// one transaction; returns the device's address. `None` if it is not
    /// enrolled yet; [`StoreError::UnknownLinkTicket`] if it is unknown,
    /// expired, not joined or already finished (a token is issued once), or
    /// its enrolled device was removed since (no token for a tombstone).
    async fn finish_link(
        &self,
        ticket: &LinkTicket,
        token_hash: &TokenHash,
        token_expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Option<Address>, StoreError>;

    /// Deletes tickets expired at `now`, with their posts (11.10); how many.
    async fn purge_expired_link_tickets(&self, now: UnixSeconds) -> Result<u64, StoreError>;
}

/// The `side` column value of a party, for the SQL body.
pub(crate) fn side(party: LinkParty) -> (i64, i64) {
    (party.side(), party.other_side())
}

/// The [`LinkStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_link {
    ($store:ty, $db:ty) => {
        /// The ticket's row, locked for the rest of `tx` on PostgreSQL; only
        /// if it is live at `now`.
        async fn live_ticket(
            tx: &mut sqlx::Transaction<'_, $db>,
            ticket: &$crate::store::LinkTicket,
            now: UnixSeconds,
        ) -> Result<$crate::store::LinkTicketState, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT account_id, device_id, expires_at, joined, enrolled_device, finished \
                 FROM link_tickets WHERE ticket = $1",
                dialect!(for_update)
            ))
            .bind(ticket.as_slice())
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::UnknownLinkTicket);
            };
            let state = ticket_state(&row)?;
            if !rules::link_ticket_live(state.expires_at, now) {
                return Err(StoreError::UnknownLinkTicket);
            }
            Ok(state)
        }

        fn ticket_state(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::LinkTicketState, StoreError> {
            let account: Vec<u8> = row.try_get(0)?;
            let enrolled: Option<i64> = row.try_get(4)?;
            Ok($crate::store::LinkTicketState {
                creator: rows::address(&account, row.try_get(1)?)?,
                expires_at: rows::unix(row.try_get(2)?)?,
                joined: row.try_get::<i64, _>(3)? != 0,
                enrolled: enrolled.map(rows::device_id).transpose()?,
                finished: row.try_get::<i64, _>(5)? != 0,
            })
        }

        /// Whether `party` may use the exchange `state` at all.
        fn party_allowed(
            state: &$crate::store::LinkTicketState,
            party: $crate::store::LinkParty,
        ) -> bool {
            match party {
                $crate::store::LinkParty::Creator(address) => address == state.creator,
                $crate::store::LinkParty::Joiner => state.joined,
            }
        }

        #[async_trait]
        impl $crate::store::LinkStore for $store {
            async fn create_link_ticket(
                &self,
                creator: Address,
                ticket: &$crate::store::LinkTicket,
                now: UnixSeconds,
                expires_at: UnixSeconds,
                limits: $crate::store::LinkLimits,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                if !lock_account_totals(&mut tx, creator.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                if !device_is_current(&mut tx, creator).await? {
                    return Err(StoreError::UnknownDevice {
                        device: creator.device.0,
                    });
                }
                let open: Vec<i64> = sqlx::query_scalar(
                    "SELECT expires_at FROM link_tickets WHERE account_id = $1 AND expires_at > $2",
                )
                .bind(creator.account.as_bytes().as_slice())
                .bind(db_time(now))
                .fetch_all(&mut *tx)
                .await?;
                let open = open
                    .into_iter()
                    .map(rows::unix)
                    .collect::<Result<Vec<_>, _>>()?;
                rules::link_ticket_room(&open, limits.max_tickets_per_account, now)?;
                sqlx::query(
                    "INSERT INTO link_tickets \
                       (ticket, account_id, device_id, created_at, expires_at, joined, finished) \
                     VALUES ($1, $2, $3, $4, $5, 0, 0)",
                )
                .bind(ticket.as_slice())
                .bind(creator.account.as_bytes().as_slice())
                .bind(device_param(creator))
                .bind(db_time(now))
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn join_link_ticket(
                &self,
                ticket: &$crate::store::LinkTicket,
                now: UnixSeconds,
            ) -> Result<Address, StoreError> {
                let mut tx = self.write_tx().await?;
                let state = live_ticket(&mut tx, ticket, now).await?;
                if state.joined {
                    return Err(StoreError::UnknownLinkTicket);
                }
                // The row lock (or SQLite's one writer) makes this the one
                // join; the condition says so again in the statement.
                let done =
                    sqlx::query("UPDATE link_tickets SET joined = 1 WHERE ticket = $1 AND joined = 0")
                        .bind(ticket.as_slice())
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::UnknownLinkTicket);
                }
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(state.creator)
            }

            async fn link_ticket(
                &self,
                ticket: &$crate::store::LinkTicket,
                now: UnixSeconds,
            ) -> Result<Option<$crate::store::LinkTicketState>, StoreError> {
                let row = sqlx::query(
                    "SELECT account_id, device_id, expires_at, joined, enrolled_device, finished \
                     FROM link_tickets WHERE ticket = $1",
                )
                .bind(ticket.as_slice())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let state = ticket_state(&row)?;
                Ok(rules::link_ticket_live(state.expires_at, now).then_some(state))
            }

            async fn post_link_message(
                &self,
                ticket: &$crate::store::LinkTicket,
                from: $crate::store::LinkParty,
                payload: &[u8],
                now: UnixSeconds,
                limits: $crate::store::LinkLimits,
            ) -> Result<u32, StoreError> {
                let mut tx = self.write_tx().await?;
                let state = live_ticket(&mut tx, ticket, now).await?;
                if state.finished || !party_allowed(&state, from) {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let (side, _) = $crate::store::link::side(from);
                let held: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM link_messages WHERE ticket = $1 AND side = $2",
                )
                .bind(ticket.as_slice())
                .bind(side)
                .fetch_one(&mut *tx)
                .await?;
                let held = rows::unsigned(held, "negative row count")?;
                let number = rules::next_link_post(held, limits.max_posts_per_side)?;
                sqlx::query(
                    "INSERT INTO link_messages (ticket, account_id, side, number, payload) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(ticket.as_slice())
                .bind(state.creator.account.as_bytes().as_slice())
                .bind(side)
                .bind(i64::from(number))
                .bind(payload)
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(number)
            }

            async fn link_messages(
                &self,
                ticket: &$crate::store::LinkTicket,
                to: $crate::store::LinkParty,
                after: u32,
                now: UnixSeconds,
            ) -> Result<Vec<Vec<u8>>, StoreError> {
                let Some(state) = self.link_ticket(ticket, now).await? else {
                    return Err(StoreError::UnknownLinkTicket);
                };
                if !party_allowed(&state, to) {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let (_, other) = $crate::store::link::side(to);
                let posts: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT payload FROM link_messages WHERE ticket = $1 AND side = $2 \
                     AND number > $3 ORDER BY number",
                )
                .bind(ticket.as_slice())
                .bind(other)
                .bind(i64::from(after))
                .fetch_all(self.reader())
                .await?;
                Ok(posts)
            }

            async fn enrol_link_device(
                &self,
                creator: Address,
                ticket: &$crate::store::LinkTicket,
                now: UnixSeconds,
            ) -> Result<DeviceId, StoreError> {
                let mut tx = self.write_tx().await?;
                // Account row first, as every writer of the account.
                if !lock_account_totals(&mut tx, creator.account).await? {
                    return Err(StoreError::UnknownLinkTicket);
                }
                // A creator removed since it made the ticket (removal
                // deletes its tickets, but a removal racing this one is
                // seen only here, under the account lock) enrols nothing.
                if !device_is_current(&mut tx, creator).await? {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let state = live_ticket(&mut tx, ticket, now).await?;
                if state.creator != creator
                    || !state.joined
                    || state.enrolled.is_some()
                    || state.finished
                {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let device = match enrol_device(&mut tx, creator.account, now).await {
                    Err(full @ StoreError::TooManyDevices { .. }) => {
                        // Refused for good: the ticket is finished without
                        // a device, so the joiner's next LinkFetch is told
                        // (15.6) instead of waiting out the ticket.
                        sqlx::query("UPDATE link_tickets SET finished = 1 WHERE ticket = $1")
                            .bind(ticket.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await.map_err(StoreError::from_commit)?;
                        return Err(full);
                    }
                    other => other?,
                };
                sqlx::query("UPDATE link_tickets SET enrolled_device = $2 WHERE ticket = $1")
                    .bind(ticket.as_slice())
                    .bind(i64::from(device.0))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(device)
            }

            async fn finish_link(
                &self,
                ticket: &$crate::store::LinkTicket,
                token_hash: &TokenHash,
                token_expires_at: UnixSeconds,
                now: UnixSeconds,
            ) -> Result<Option<Address>, StoreError> {
                let mut tx = self.write_tx().await?;
                // The account lock remove_device takes too, and first, as
                // every writer of the account (a ticket's account never
                // changes, so reading it unlocked is enough): a concurrent
                // deletion or removal waits, so no token of a deleted
                // account or of a device removed since its enrolment is
                // written (15.5), and one removing it later deletes this one.
                let owner: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT account_id FROM link_tickets WHERE ticket = $1")
                        .bind(ticket.as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(owner) = owner else {
                    return Err(StoreError::UnknownLinkTicket);
                };
                if !lock_account_totals(&mut tx, rows::account_id(&owner)?).await? {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let state = live_ticket(&mut tx, ticket, now).await?;
                if !state.joined || state.finished {
                    return Err(StoreError::UnknownLinkTicket);
                }
                let Some(device) = state.enrolled else {
                    return Ok(None);
                };
                let address = Address {
                    account: state.creator.account,
                    device,
                };
                if !device_is_current(&mut tx, address).await? {
                    return Err(StoreError::UnknownLinkTicket);
                }
                sqlx::query(
                    "INSERT INTO tokens (account_id, token_hash, device_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(address.account.as_bytes().as_slice())
                .bind(token_hash.as_slice())
                .bind(device_param(address))
                .bind(db_time(token_expires_at))
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE link_tickets SET finished = 1 WHERE ticket = $1")
                    .bind(ticket.as_slice())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(Some(address))
            }

            async fn purge_expired_link_tickets(
                &self,
                now: UnixSeconds,
            ) -> Result<u64, StoreError> {
                // Posts first (the foreign key would cascade, but an
                // explicit delete does not depend on it being enforced),
                // in batches of tickets as the other purges.
                let mut purged = 0;
                loop {
                    let mut tx = self.write_tx().await?;
                    let expired: Vec<Vec<u8>> = sqlx::query_scalar(
                        "SELECT ticket FROM link_tickets WHERE expires_at <= $1 LIMIT $2",
                    )
                    .bind(db_time(now))
                    .bind($crate::store::limits::PURGE_BATCH_ROWS)
                    .fetch_all(&mut *tx)
                    .await?;
                    for ticket in &expired {
                        sqlx::query("DELETE FROM link_messages WHERE ticket = $1")
                            .bind(ticket.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("DELETE FROM link_tickets WHERE ticket = $1")
                            .bind(ticket.as_slice())
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await.map_err(StoreError::from_commit)?;
                    purged += expired.len() as u64;
                    if (expired.len() as i64) < $crate::store::limits::PURGE_BATCH_ROWS {
                        return Ok(purged);
                    }
                }
            }
        }
    };
}
pub(crate) use impl_link;
