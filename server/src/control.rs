//! Cross-node control events: what one relay node tells every node about
//! authenticated connections (a device's tokens were revoked, a device
//! authenticated a new connection), their one-line text payload, and the
//! in-process bus that carries them to subscribers.
//!
//! On PostgreSQL an event is a `NOTIFY` on [`CONTROL_CHANNEL`], seen by every
//! node's listener (the node that published it included); on SQLite (one
//! node) the same events go straight onto the bus. Either way every node
//! acts on them through the same code (`wakeups`), so a single node is not a
//! special case.
//!
//! Payloads are visible to anyone who can `LISTEN` on the database, so they
//! carry only what a node needs to find the affected connections: an
//! account id, and for a new connection its device id and a random
//! per-connection nonce (so the node that holds the new connection does not
//! close it). Must never: carry a token or its hash, a username, an IP
//! address, a node identity or anything about messages; or be trusted to
//! arrive (a node that may have missed events re-checks every connection,
//! see [`ControlEvent::Resync`]).

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use tokio::sync::broadcast;
use umbra_wire::{AccountId, Address, DeviceId};

/// The PostgreSQL NOTIFY channel for control events (queue wake-ups have
/// their own channel, so a flood of messages never delays a revocation).
pub const CONTROL_CHANNEL: &str = "umbra_control";

/// Control events buffered per subscriber before it lags (and resyncs).
/// Events are rare (a login, a logout); this absorbs a burst of
/// reconnections after a node restart.
pub const CONTROL_BUFFER: usize = 1024;

/// A random tag for one authenticated connection, unique with
/// overwhelming probability; it links nothing beyond that connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionNonce([u8; 8]);

impl ConnectionNonce {
    /// A fresh nonce from the OS CSPRNG.
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

impl fmt::Debug for ConnectionNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionNonce({})", hex::encode(self.0))
    }
}

/// Something every node must apply to its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEvent {
    /// Some or all tokens of `account` were revoked (log out everywhere,
    /// account deletion): every node re-checks the tokens of the account's
    /// connections and closes those no longer valid.
    Revoked {
        /// The account whose tokens changed.
        account: AccountId,
    },
    /// `address` authenticated the connection tagged `nonce`: every other
    /// connection for `address`, on any node, is replaced.
    Authenticated {
        /// The device.
        address: Address,
        /// The new connection's tag.
        nonce: ConnectionNonce,
    },
    /// Events may have been missed (the listener reconnected, or this
    /// subscriber lagged): re-check every connection's token. Never
    /// published; made locally.
    Resync,
}

impl ControlEvent {
    /// The NOTIFY payload: `r:<32 hex account>` or
    /// `a:<32 hex account>:<device>:<16 hex nonce>`. `None` for
    /// [`ControlEvent::Resync`], which is never sent.
    pub fn payload(&self) -> Option<String> {
        match self {
            ControlEvent::Revoked { account } => Some(format!("r:{}", account.to_hex())),
            ControlEvent::Authenticated { address, nonce } => Some(format!(
                "a:{}:{}:{}",
                address.account.to_hex(),
                address.device.0,
                hex::encode(nonce.0)
            )),
            ControlEvent::Resync => None,
        }
    }

    /// Inverse of [`ControlEvent::payload`]; `None` for anything malformed
    /// (the caller treats that as a reason to resync).
    pub fn parse(payload: &str) -> Option<Self> {
        let mut parts = payload.split(':');
        let event = match parts.next()? {
            "r" => ControlEvent::Revoked {
                account: AccountId::from_hex(parts.next()?)?,
            },
            "a" => {
                let account = AccountId::from_hex(parts.next()?)?;
                let device = DeviceId(parts.next()?.parse().ok()?);
                let mut nonce = [0u8; 8];
                hex::decode_to_slice(parts.next()?, &mut nonce).ok()?;
                ControlEvent::Authenticated {
                    address: Address { account, device },
                    nonce: ConnectionNonce(nonce),
                }
            }
            _ => return None,
        };
        parts.next().is_none().then_some(event)
    }
}

/// Where a node's store hands control events to the node's subscribers.
#[derive(Debug, Clone)]
pub struct ControlBus(broadcast::Sender<ControlEvent>);

impl Default for ControlBus {
    fn default() -> Self {
        Self(broadcast::channel(CONTROL_BUFFER).0)
    }
}

impl ControlBus {
    /// Delivers `event` to every subscriber on this node. No subscriber is
    /// not an error (nothing is connected yet).
    pub fn deliver(&self, event: ControlEvent) {
        let _ = self.0.send(event);
    }

    /// A new subscription. `RecvError::Lagged` must be treated like
    /// [`ControlEvent::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<ControlEvent> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_carry_only_ids() {
        let account = AccountId::from_bytes([0xab; 16]);
        let revoked = ControlEvent::Revoked { account };
        let payload = revoked.payload().expect("published");
        assert_eq!(payload, format!("r:{}", "ab".repeat(16)));
        assert_eq!(ControlEvent::parse(&payload), Some(revoked));

        let authenticated = ControlEvent::Authenticated {
            address: Address {
                account,
                device: DeviceId(3),
            },
            nonce: ConnectionNonce([1, 2, 3, 4, 5, 6, 7, 8]),
        };
        let payload = authenticated.payload().expect("published");
        assert_eq!(payload, format!("a:{}:3:0102030405060708", "ab".repeat(16)));
        assert_eq!(ControlEvent::parse(&payload), Some(authenticated));
        assert_eq!(ControlEvent::Resync.payload(), None);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let hex = "ab".repeat(16);
        for bad in [
            String::new(),
            "r".into(),
            "r:".into(),
            "r:zz".into(),
            format!("r:{hex}:extra"),
            format!("x:{hex}"),
            format!("a:{hex}"),
            format!("a:{hex}:1"),
            format!("a:{hex}:one:0102030405060708"),
            format!("a:{hex}:1:01020304"),
            format!("a:{hex}:1:0102030405060708:9"),
        ] {
            assert_eq!(ControlEvent::parse(&bad), None, "{bad:?}");
        }
    }
}
