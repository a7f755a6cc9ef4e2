//! The per-connection registry: one entry per device connected to this
//! node, and which of two connections for one device survives.
//!
//! An entry keeps what the cross-node control events need (see `control`
//! and `wakeups`): the hash of the token the connection presented, so a
//! revocation announced by any node can be checked against the store, and
//! the connection's random nonce, so an announcement that the same device
//! authenticated elsewhere replaces it. Of two connections for one device
//! that authenticate at nearly the same time on different nodes, the one
//! announced last (in the database's commit order, which every node sees
//! the same) survives: an entry is replaced by a foreign announcement only
//! once its own announcement came back ("confirmed"), which proves the
//! foreign one is newer.
//!
//! Must never: let a replaced connection evict its successor, let our own
//! late announcement close our newer connection, let the set of awaited
//! announcements grow without bound, or hold the hub's lock across an
//! await.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use umbra_wire::{Address, ErrorCode};

use super::hand_off::{Handed, HANDOFF_CAPACITY};
use super::signals::{close, Control, CONTROL_CAPACITY};
use super::Hub;
use crate::auth::tokens::TokenHash;
use crate::control::ConnectionNonce;
use crate::store::Seq;

/// Own announcements awaited at most; beyond this (announcements lost
/// without a resync, which should not happen) every entry is treated as
/// confirmed, as after a resync, so the set stays bounded.
const MAX_AWAITED_ANNOUNCEMENTS: usize = 65_536;

/// Why a connection replaced by another is closed.
pub const REPLACED_REASON: &str = "another connection for this device replaced this one";

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

pub(super) struct Entry {
    pub(super) connection: u64,
    pub(super) token: TokenHash,
    pub(super) nonce: ConnectionNonce,
    /// This node has seen its own announcement of this connection come back
    /// (or may have missed it, after a resync): a foreign announcement for
    /// the address is newer and replaces it.
    pub(super) confirmed: bool,
    pub(super) wake: Arc<Notify>,
    pub(super) control: mpsc::Sender<Control>,
    pub(super) hand_off: mpsc::Sender<Handed>,
    /// The highest seq handed over: its queue event need not wake the loop.
    pub(super) handed: Seq,
}

#[derive(Default)]
pub(super) struct Entries {
    pub(super) by_address: HashMap<Address, Entry>,
    /// Nonces this node announced whose announcement has not come back yet:
    /// when it does, it is ours, not a newer connection elsewhere.
    pub(super) awaited: HashSet<ConnectionNonce>,
}

impl Hub {
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
}

impl Entries {
    fn confirm_all(&mut self) {
        for entry in self.by_address.values_mut() {
            entry.confirmed = true;
        }
    }
}
