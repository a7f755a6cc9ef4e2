//! Waking a connection's delivery loop and telling a connection things
//! (close with a reason, ephemeral payloads, X25519 and ML-KEM prekey
//! hints) through its small bounded control channel.
//!
//! Must never: block or wait on a slow recipient (a full control channel
//! drops an ephemeral payload or a hint; a close still happens because the
//! connection also watches for its entry's sender being dropped), close a
//! successor in place of a stale connection id, or hold the hub's lock
//! across an await.

use umbra_wire::{AccountId, Address, ErrorCode};

use tokio::sync::mpsc;

use super::Hub;
use crate::store::Seq;

/// Control messages queued per connection beyond this are dropped (ephemeral)
/// or replaced by a close.
pub const CONTROL_CAPACITY: usize = 32;

/// Something the hub asks a connection to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Send `Closing{code, reason}` and close.
    Close(ErrorCode, &'static str),
    /// Push an `EphemeralDeliver` with this payload.
    Ephemeral(Vec<u8>),
    /// Push `PreKeysLow{remaining}`.
    PreKeysLow(u32),
    /// Push `KemPreKeysLow{remaining}`.
    KemPreKeysLow(u32),
}

impl Hub {
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
        self.hint(address, Control::PreKeysLow(remaining));
    }

    /// Tells `address`'s connection its one-time ML-KEM prekeys are low.
    pub fn kem_prekeys_low(&self, address: Address, remaining: u32) {
        self.hint(address, Control::KemPreKeysLow(remaining));
    }

    /// Queues a best-effort hint for `address`'s connection, if connected
    /// here and its control channel has room.
    fn hint(&self, address: Address, hint: Control) {
        let sender = self
            .lock()
            .by_address
            .get(&address)
            .map(|e| e.control.clone());
        if let Some(tx) = sender {
            let _ = tx.try_send(hint);
        }
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

    /// Closes the connection of `address`, whichever it is (a removed
    /// device, PROTOCOL.md 15.5), and removes it so nothing more is routed
    /// to it.
    pub fn close_address(&self, address: Address, code: ErrorCode, reason: &'static str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_address.remove(&address) {
            entries.awaited.remove(&entry.nonce);
            close(&entry.control, code, reason);
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
}

pub(super) fn close(control: &mpsc::Sender<Control>, code: ErrorCode, reason: &'static str) {
    // If the channel is full the connection is not keeping up anyway; the
    // close still happens because the connection also watches for its
    // entry's sender being dropped (see `connection`).
    let _ = control.try_send(Control::Close(code, reason));
}
