//! The hub: which device is connected to this node right now, and how to
//! reach its connection.
//!
//! Each entry is a wake handle (a [`Notify`] the connection's delivery loop
//! waits on) and a small bounded control channel (close with a reason,
//! ephemeral payloads, prekey hints). Nothing queued for delivery lives here:
//! messages are in the store, and a woken connection fetches them itself, so
//! a slow reader never stalls anyone else and an idle connection holds no
//! buffers.
//!
//! An entry also keeps what the cross-node control events need (see
//! `control` and `wakeups`): the hash of the token the connection presented,
//! so a revocation announced by any node can be checked against the store,
//! and the connection's random nonce, so an announcement that the same
//! device authenticated elsewhere replaces it. Of two connections for one
//! device that authenticate at nearly the same time on different nodes, the
//! one announced last (in the database's commit order, which every node
//! sees the same) survives: an entry is replaced by a foreign announcement
//! only once its own announcement came back ("confirmed"), which proves the
//! foreign one is newer.
//!
//! The one exception to "nothing queued lives here" is the hand-off: the
//! group committer offers each committed envelope to its recipient's entry
//! ([`HandOff`]), a bounded channel of small envelopes the delivery loop
//! pushes without reading them back. The queue stays the source of truth:
//! a full channel, a large envelope or a gap in sequence numbers makes the
//! loop read the store instead, and only the recipient's Ack deletes.
//!
//! Must never: hold its lock across an await, buffer envelopes beyond the
//! bounded hand-off channels (per connection, and in bytes across the node:
//! `connection::hand_off_budget`), block a sender on a slow recipient
//! (ephemeral payloads are dropped when the recipient's control channel is
//! full), log addresses of both ends of anything, or expose a token hash.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use umbra_wire::{AccountId, Address, ErrorCode};

use crate::auth::tokens::TokenHash;
use crate::connection::hand_off_budget::{Charge, HandOffBudget};
use crate::control::ConnectionNonce;
use crate::store::group_commit::HandOff;
use crate::store::{Seq, UnixMillis};

/// Control messages queued per connection beyond this are dropped (ephemeral)
/// or replaced by a close.
pub const CONTROL_CAPACITY: usize = 32;

/// Committed envelopes waiting per connection for its delivery loop; beyond
/// this the loop reads them from the store.
pub const HANDOFF_CAPACITY: usize = 16;
/// Larger envelopes are never handed off (read from the store), so a
/// connection's hand-off channel holds at most 256 KiB.
pub const MAX_HANDOFF_ENVELOPE: usize = 16 * 1024;

/// Own announcements awaited at most; beyond this (announcements lost
/// without a resync, which should not happen) every entry is treated as
/// confirmed, as after a resync, so the set stays bounded.
const MAX_AWAITED_ANNOUNCEMENTS: usize = 65_536;

/// Why a connection replaced by another is closed.
pub const REPLACED_REASON: &str = "another connection for this device replaced this one";

/// Something the hub asks a connection to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Send `Closing{code, reason}` and close.
    Close(ErrorCode, &'static str),
    /// Push an `EphemeralDeliver` with this payload.
    Ephemeral(Vec<u8>),
    /// Push `PreKeysLow{remaining}`.
    PreKeysLow(u32),
}

/// A committed message handed to its recipient's connection.
pub struct Handed {
    /// Its sequence number in the recipient's queue.
    pub seq: Seq,
    /// When the relay accepted it.
    pub received_at_ms: UnixMillis,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// Its bytes in the node's hand-off budget, given back when dropped.
    _charge: Charge,
}

/// What a connection receives when it registers.
#[derive(Debug)]
pub struct Registration {
    /// Notified when the device's queue may have grown.
    pub wake: Arc<Notify>,
    /// Committed messages handed over by the group committer (taken by the
    /// delivery loop).
    pub handed: Option<mpsc::Receiver<Handed>>,
    /// Control messages for this connection.
    pub control: mpsc::Receiver<Control>,
    /// This connection's tag in control announcements.
    pub nonce: ConnectionNonce,
}

struct Entry {
    connection: u64,
    token: TokenHash,
    nonce: ConnectionNonce,
    /// This node has seen its own announcement of this connection come back
    /// (or may have missed it, after a resync): a foreign announcement for
    /// the address is newer and replaces it.
    confirmed: bool,
    wake: Arc<Notify>,
    control: mpsc::Sender<Control>,
    hand_off: mpsc::Sender<Handed>,
    /// The highest seq handed over: its queue event need not wake the loop.
    handed: Seq,
}

#[derive(Default)]
struct Entries {
    by_address: HashMap<Address, Entry>,
    /// Nonces this node announced whose announcement has not come back yet:
    /// when it does, it is ours, not a newer connection elsewhere.
    awaited: HashSet<ConnectionNonce>,
}

/// One authenticated connection, as a token re-check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// The device.
    pub address: Address,
    /// The connection's id on this node.
    pub connection: u64,
    /// The token it authenticated with.
    pub token: TokenHash,
}

/// Connected devices on this node.
#[derive(Default)]
pub struct Hub {
    entries: Mutex<Entries>,
    hand_off_budget: HandOffBudget,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connected", &self.connected())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/lookup), so a
        // poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `connection`, registered for `address`, now acts under
    /// `token` (a password change replaced the one it authenticated with),
    /// so token re-checks ask about the new one. Nothing if another
    /// connection holds the address now.
    pub fn retoken(&self, address: Address, connection: u64, token: TokenHash) {
        if let Some(entry) = self.lock().by_address.get_mut(&address) {
            if entry.connection == connection {
                entry.token = token;
            }
        }
    }

    /// Registers `connection`, authenticated with `token`, as the one for
    /// `address`. An earlier connection for the same address on this node
    /// is told to close with `Replaced`. The caller announces the returned
    /// nonce to every node (`wakeups::connect`).
    pub fn register(&self, address: Address, connection: u64, token: TokenHash) -> Registration {
        let wake = Arc::new(Notify::new());
        let (tx, control) = mpsc::channel(CONTROL_CAPACITY);
        let (hand_off, handed) = mpsc::channel(HANDOFF_CAPACITY);
        let nonce = ConnectionNonce::random();
        let previous = {
            let mut entries = self.lock();
            if entries.awaited.len() >= MAX_AWAITED_ANNOUNCEMENTS {
                entries.awaited.clear();
                entries.confirm_all();
            }
            entries.awaited.insert(nonce);
            entries.by_address.insert(
                address,
                Entry {
                    connection,
                    token,
                    nonce,
                    confirmed: false,
                    wake: Arc::clone(&wake),
                    control: tx,
                    hand_off,
                    handed: 0,
                },
            )
        };
        if let Some(old) = previous {
            if old.connection != connection {
                close(&old.control, ErrorCode::Replaced, REPLACED_REASON);
            }
        }
        // The first fetch happens without waiting for an event.
        wake.notify_one();
        Registration {
            wake,
            handed: Some(handed),
            control,
            nonce,
        }
    }

    /// Applies the announcement that `address` authenticated the connection
    /// tagged `nonce`, on this node or another. Our own announcement
    /// confirms our entry; a foreign one replaces a confirmed entry (it is
    /// newer) and is ignored by an unconfirmed one (it is older: the node
    /// that sent it replaces its own connection when ours arrives there).
    pub fn announced(&self, address: Address, nonce: ConnectionNonce) {
        let mut entries = self.lock();
        let ours = entries.awaited.remove(&nonce);
        let Some(entry) = entries.by_address.get_mut(&address) else {
            return;
        };
        if entry.nonce == nonce {
            entry.confirmed = true;
        } else if !ours && entry.confirmed {
            if let Some(old) = entries.by_address.remove(&address) {
                close(&old.control, ErrorCode::Replaced, REPLACED_REASON);
            }
        }
    }

    /// Our announcement of `nonce` could not be published, so it will never
    /// come back: the entry stops waiting for it.
    pub fn announcement_failed(&self, address: Address, nonce: ConnectionNonce) {
        let mut entries = self.lock();
        entries.awaited.remove(&nonce);
        if let Some(entry) = entries.by_address.get_mut(&address) {
            if entry.nonce == nonce {
                entry.confirmed = true;
            }
        }
    }

    /// Announcements may have been missed: every entry counts as confirmed,
    /// so a newer connection elsewhere replaces it even if our own
    /// announcement was lost. Awaited nonces are kept: one of ours still on
    /// its way must not be taken for a foreign one.
    pub fn resync_announcements(&self) {
        self.lock().confirm_all();
    }

    /// Removes `address` if it still belongs to `connection` (a replaced
    /// connection must not evict its successor).
    pub fn unregister(&self, address: Address, connection: u64) {
        let mut entries = self.lock();
        if entries
            .by_address
            .get(&address)
            .is_some_and(|e| e.connection == connection)
        {
            if let Some(entry) = entries.by_address.remove(&address) {
                entries.awaited.remove(&entry.nonce);
            }
        }
    }

    /// Wakes the delivery loop of `address`, if connected here.
    pub fn wake(&self, address: Address) {
        if let Some(entry) = self.lock().by_address.get(&address) {
            entry.wake.notify_one();
        }
    }

    /// Wakes the delivery loop of `address` for its committed message
    /// `seq`, unless that message was handed to it already.
    pub fn wake_for(&self, address: Address, seq: Seq) {
        if let Some(entry) = self.lock().by_address.get(&address) {
            if entry.handed < seq {
                entry.wake.notify_one();
            }
        }
    }

    /// Wakes every connection (after missed notifications).
    pub fn wake_all(&self) {
        for entry in self.lock().by_address.values() {
            entry.wake.notify_one();
        }
    }

    /// Forwards an ephemeral payload; `false` if the device is not connected
    /// here or its control channel is full (ephemeral data is best effort).
    pub fn send_ephemeral(&self, address: Address, payload: Vec<u8>) -> bool {
        let sender = self
            .lock()
            .by_address
            .get(&address)
            .map(|e| e.control.clone());
        sender.is_some_and(|tx| tx.try_send(Control::Ephemeral(payload)).is_ok())
    }

    /// Tells `address`'s connection its one-time prekeys are low.
    pub fn prekeys_low(&self, address: Address, remaining: u32) {
        let sender = self
            .lock()
            .by_address
            .get(&address)
            .map(|e| e.control.clone());
        if let Some(tx) = sender {
            let _ = tx.try_send(Control::PreKeysLow(remaining));
        }
    }

    /// The authenticated connections of `account` on this node, or of every
    /// account (`None`), for a token re-check.
    pub fn live(&self, account: Option<AccountId>) -> Vec<Live> {
        self.lock()
            .by_address
            .iter()
            .filter(|(address, _)| account.is_none_or(|a| address.account == a))
            .map(|(address, entry)| Live {
                address: *address,
                connection: entry.connection,
                token: entry.token,
            })
            .collect()
    }

    /// Closes `connection` if it is still the one for `address`, and
    /// removes it so nothing more is routed to it.
    pub fn close_connection(
        &self,
        address: Address,
        connection: u64,
        code: ErrorCode,
        reason: &'static str,
    ) {
        let mut entries = self.lock();
        if entries
            .by_address
            .get(&address)
            .is_some_and(|e| e.connection == connection)
        {
            if let Some(entry) = entries.by_address.remove(&address) {
                entries.awaited.remove(&entry.nonce);
                close(&entry.control, code, reason);
            }
        }
    }

    /// Closes every connection of `account` except `keep` (log out
    /// everywhere, account deletion).
    pub fn close_account(
        &self,
        account: AccountId,
        keep: Option<u64>,
        code: ErrorCode,
        reason: &'static str,
    ) {
        let entries = self.lock();
        for (address, entry) in entries.by_address.iter() {
            if address.account == account && Some(entry.connection) != keep {
                close(&entry.control, code, reason);
            }
        }
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self, code: ErrorCode, reason: &'static str) {
        for entry in self.lock().by_address.values() {
            close(&entry.control, code, reason);
        }
    }

    /// Devices connected to this node.
    pub fn connected(&self) -> usize {
        self.lock().by_address.len()
    }

    /// Addresses connected to this node.
    pub fn addresses(&self) -> Vec<Address> {
        self.lock().by_address.keys().copied().collect()
    }
}

impl HandOff for Hub {
    fn hand_off(
        &self,
        recipient: Address,
        seq: Seq,
        received_at_ms: UnixMillis,
        envelope: Vec<u8>,
    ) {
        // Too large, or the node's channels hold enough: read from the store.
        let Some(charge) = (envelope.len() <= MAX_HANDOFF_ENVELOPE)
            .then(|| self.hand_off_budget.charge(envelope.len()))
            .flatten()
        else {
            return;
        };
        let mut entries = self.lock();
        let Some(entry) = entries.by_address.get_mut(&recipient) else {
            return;
        };
        let handed = Handed {
            seq,
            received_at_ms,
            envelope,
            _charge: charge,
        };
        // Full: the loop is behind and reads the store once woken.
        if entry.hand_off.try_send(handed).is_ok() {
            entry.handed = entry.handed.max(seq);
        }
    }
}

impl Entries {
    fn confirm_all(&mut self) {
        for entry in self.by_address.values_mut() {
            entry.confirmed = true;
        }
    }
}

fn close(control: &mpsc::Sender<Control>, code: ErrorCode, reason: &'static str) {
    // If the channel is full the connection is not keeping up anyway; the
    // close still happens because the connection also watches for its
    // entry's sender being dropped (see `connection`).
    let _ = control.try_send(Control::Close(code, reason));
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_wire::DeviceId;

    fn token(n: u8) -> TokenHash {
        TokenHash([n; 32])
    }

    fn addr(n: u8) -> Address {
        Address {
            account: AccountId::from_bytes([n; 16]),
            device: DeviceId::PRIMARY,
        }
    }

    #[tokio::test]
    async fn second_registration_replaces_the_first() {
        let hub = Hub::default();
        let mut first = hub.register(addr(1), 1, token(1));
        let mut second = hub.register(addr(1), 2, token(2));
        assert_eq!(
            first.control.recv().await,
            Some(Control::Close(ErrorCode::Replaced, REPLACED_REASON))
        );
        hub.unregister(addr(1), 1);
        assert_eq!(
            hub.connected(),
            1,
            "the replaced connection must not evict its successor"
        );
        assert!(hub.send_ephemeral(addr(1), vec![7]));
        assert_eq!(
            second.control.recv().await,
            Some(Control::Ephemeral(vec![7]))
        );
        hub.unregister(addr(1), 2);
        assert_eq!(hub.connected(), 0);
        assert!(
            !hub.send_ephemeral(addr(1), vec![8]),
            "offline devices get nothing"
        );
    }

    #[tokio::test]
    async fn registration_starts_woken_and_wake_reaches_only_the_target() {
        let hub = Hub::default();
        let a = hub.register(addr(1), 1, token(1));
        let b = hub.register(addr(2), 2, token(2));
        a.wake.notified().await; // initial fetch
        b.wake.notified().await;
        hub.wake(addr(1));
        a.wake.notified().await;
        let b_woken = tokio::time::timeout(std::time::Duration::ZERO, b.wake.notified()).await;
        assert!(b_woken.is_err(), "b was not woken");
    }

    #[tokio::test]
    async fn ephemeral_is_dropped_when_the_recipient_is_not_reading() {
        let hub = Hub::default();
        let _reg = hub.register(addr(3), 1, token(1));
        for _ in 0..CONTROL_CAPACITY {
            assert!(hub.send_ephemeral(addr(3), vec![0]));
        }
        assert!(
            !hub.send_ephemeral(addr(3), vec![0]),
            "full channel drops instead of blocking"
        );
    }

    #[tokio::test]
    async fn close_account_spares_the_kept_connection() {
        let hub = Hub::default();
        let mut mine = hub.register(addr(4), 10, token(10));
        let mut other = hub.register(
            Address {
                account: AccountId::from_bytes([4; 16]),
                device: DeviceId(2),
            },
            11,
            token(11),
        );
        hub.close_account(
            AccountId::from_bytes([4; 16]),
            Some(10),
            ErrorCode::AuthFailed,
            "logged out",
        );
        assert_eq!(
            other.control.recv().await,
            Some(Control::Close(ErrorCode::AuthFailed, "logged out"))
        );
        assert!(mine.control.try_recv().is_err());
    }

    fn foreign() -> ConnectionNonce {
        ConnectionNonce::random()
    }

    #[tokio::test]
    async fn a_foreign_announcement_replaces_only_a_confirmed_connection() {
        let hub = Hub::default();
        let mut reg = hub.register(addr(5), 1, token(1));
        // Older than ours (ours has not come back yet): ignored.
        hub.announced(addr(5), foreign());
        assert!(reg.control.try_recv().is_err());
        assert_eq!(hub.connected(), 1);
        // Ours comes back: confirmed, and a later foreign one replaces it.
        hub.announced(addr(5), reg.nonce);
        assert!(reg.control.try_recv().is_err(), "our own never closes us");
        hub.announced(addr(5), foreign());
        assert_eq!(
            reg.control.recv().await,
            Some(Control::Close(ErrorCode::Replaced, REPLACED_REASON))
        );
        assert_eq!(hub.connected(), 0, "nothing is routed to it any more");
        assert_eq!(
            reg.control.recv().await,
            None,
            "the entry is gone, so the channel ends"
        );
    }

    #[tokio::test]
    async fn our_own_late_announcement_never_closes_our_newer_connection() {
        let hub = Hub::default();
        let first = hub.register(addr(6), 1, token(1));
        let mut second = hub.register(addr(6), 2, token(2));
        // The second's announcement overtakes the first's.
        hub.announced(addr(6), second.nonce);
        hub.announced(addr(6), first.nonce);
        assert!(second.control.try_recv().is_err());
        assert_eq!(hub.live(None).len(), 1);
        assert_eq!(hub.live(None)[0].connection, 2);
    }

    #[tokio::test]
    async fn after_a_resync_or_a_failed_announcement_foreign_ones_replace() {
        let hub = Hub::default();
        let mut a = hub.register(addr(7), 1, token(1));
        hub.resync_announcements();
        hub.announced(addr(7), foreign());
        assert!(matches!(
            a.control.recv().await,
            Some(Control::Close(ErrorCode::Replaced, _))
        ));

        let mut b = hub.register(addr(8), 2, token(2));
        hub.announcement_failed(addr(8), b.nonce);
        hub.announced(addr(8), foreign());
        assert!(matches!(
            b.control.recv().await,
            Some(Control::Close(ErrorCode::Replaced, _))
        ));
    }

    #[tokio::test]
    async fn live_lists_an_accounts_connections_and_close_connection_spares_successors() {
        let hub = Hub::default();
        let _a = hub.register(addr(9), 1, token(1));
        let _b = hub.register(addr(10), 2, token(2));
        let live = hub.live(Some(AccountId::from_bytes([9; 16])));
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].connection, 1);
        assert!(live[0].token == token(1));
        assert_eq!(hub.live(None).len(), 2);

        let mut successor = hub.register(addr(9), 3, token(3));
        hub.close_connection(addr(9), 1, ErrorCode::TokenExpired, "revoked");
        assert!(
            successor.control.try_recv().is_err(),
            "a stale id closes nothing"
        );
        hub.close_connection(addr(9), 3, ErrorCode::TokenExpired, "revoked");
        assert_eq!(
            successor.control.recv().await,
            Some(Control::Close(ErrorCode::TokenExpired, "revoked"))
        );
        assert_eq!(hub.connected(), 1);
    }
}
