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
//! Must never: hold its lock across an await, buffer envelopes, block a
//! sender on a slow recipient (ephemeral payloads are dropped when the
//! recipient's control channel is full), or log addresses of both ends of
//! anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use umbra_wire::{AccountId, Address, ErrorCode};

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
}

/// What a connection receives when it registers.
#[derive(Debug)]
pub struct Registration {
    /// Notified when the device's queue may have grown.
    pub wake: Arc<Notify>,
    /// Control messages for this connection.
    pub control: mpsc::Receiver<Control>,
}

struct Entry {
    connection: u64,
    wake: Arc<Notify>,
    control: mpsc::Sender<Control>,
}

/// Connected devices on this node.
#[derive(Default)]
pub struct Hub {
    entries: Mutex<HashMap<Address, Entry>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connected", &self.connected())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<Address, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/lookup), so a
        // poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `connection` as the one for `address`. An earlier
    /// connection for the same address is told to close with `Replaced`.
    pub fn register(&self, address: Address, connection: u64) -> Registration {
        let wake = Arc::new(Notify::new());
        let (tx, control) = mpsc::channel(CONTROL_CAPACITY);
        let previous = self.lock().insert(
            address,
            Entry {
                connection,
                wake: Arc::clone(&wake),
                control: tx,
            },
        );
        if let Some(old) = previous {
            if old.connection != connection {
                close(
                    &old.control,
                    ErrorCode::Replaced,
                    "another connection for this device replaced this one",
                );
            }
        }
        // The first fetch happens without waiting for an event.
        wake.notify_one();
        Registration { wake, control }
    }

    /// Removes `address` if it still belongs to `connection` (a replaced
    /// connection must not evict its successor).
    pub fn unregister(&self, address: Address, connection: u64) {
        let mut entries = self.lock();
        if entries
            .get(&address)
            .is_some_and(|e| e.connection == connection)
        {
            entries.remove(&address);
        }
    }

    /// Wakes the delivery loop of `address`, if connected here.
    pub fn wake(&self, address: Address) {
        if let Some(entry) = self.lock().get(&address) {
            entry.wake.notify_one();
        }
    }

    /// Wakes every connection (after missed notifications).
    pub fn wake_all(&self) {
        for entry in self.lock().values() {
            entry.wake.notify_one();
        }
    }

    /// Forwards an ephemeral payload; `false` if the device is not connected
    /// here or its control channel is full (ephemeral data is best effort).
    pub fn send_ephemeral(&self, address: Address, payload: Vec<u8>) -> bool {
        let sender = self.lock().get(&address).map(|e| e.control.clone());
        sender.is_some_and(|tx| tx.try_send(Control::Ephemeral(payload)).is_ok())
    }

    /// Tells `address`'s connection its one-time prekeys are low.
    pub fn prekeys_low(&self, address: Address, remaining: u32) {
        let sender = self.lock().get(&address).map(|e| e.control.clone());
        if let Some(tx) = sender {
            let _ = tx.try_send(Control::PreKeysLow(remaining));
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
        for (address, entry) in entries.iter() {
            if address.account == account && Some(entry.connection) != keep {
                close(&entry.control, code, reason);
            }
        }
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self, code: ErrorCode, reason: &'static str) {
        for entry in self.lock().values() {
            close(&entry.control, code, reason);
        }
    }

    /// Devices connected to this node.
    pub fn connected(&self) -> usize {
        self.lock().len()
    }

    /// Addresses connected to this node.
    pub fn addresses(&self) -> Vec<Address> {
        self.lock().keys().copied().collect()
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

    fn addr(n: u8) -> Address {
        Address {
            account: AccountId::from_bytes([n; 16]),
            device: DeviceId::PRIMARY,
        }
    }

    #[tokio::test]
    async fn second_registration_replaces_the_first() {
        let hub = Hub::default();
        let mut first = hub.register(addr(1), 1);
        let mut second = hub.register(addr(1), 2);
        assert_eq!(
            first.control.recv().await,
            Some(Control::Close(
                ErrorCode::Replaced,
                "another connection for this device replaced this one"
            ))
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
        let a = hub.register(addr(1), 1);
        let b = hub.register(addr(2), 2);
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
        let _reg = hub.register(addr(3), 1);
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
        let mut mine = hub.register(addr(4), 10);
        let mut other = hub.register(
            Address {
                account: AccountId::from_bytes([4; 16]),
                device: DeviceId(2),
            },
            11,
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
}
