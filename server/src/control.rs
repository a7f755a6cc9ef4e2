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
//! see [`ControlNotice::Resync`]).
//!
//! Anyone who can connect to the database can also `NOTIFY`, so every
//! payload carries an HMAC-SHA256 tag under [`ControlKey`], a key derived
//! from the OPAQUE server key file every node already shares. A payload
//! whose tag, form or age is wrong is dropped (never turned into a resync,
//! which would let a flood of garbage keep every node re-checking tokens).
//! The tag stops forgery, not replay: an `a:` payload carries its send time
//! and is refused outside [`ANNOUNCEMENT_MAX_AGE`] and when its nonce was
//! already seen; an `r:` payload only makes nodes re-check tokens against
//! the store, so a replayed one changes nothing.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::broadcast;
use umbra_wire::{AccountId, Address, DeviceId};
use zeroize::Zeroizing;

/// The PostgreSQL NOTIFY channel for control events (queue wake-ups have
/// their own channel, so a flood of messages never delays a revocation).
pub const CONTROL_CHANNEL: &str = "umbra_control";

/// Control events buffered per subscriber before it lags (and resyncs).
/// Events are rare (a login, a logout); this absorbs a burst of
/// reconnections after a node restart.
pub const CONTROL_BUFFER: usize = 1024;

/// HKDF-SHA256 info for the control channel's MAC key (salt none, input
/// the server setup in the OPAQUE key file). Relay-internal: no client ever
/// sees it, but every node of one relay must use the same.
pub const CONTROL_MAC_LABEL: &[u8] = b"umbra/v1/relay/control-mac";

/// Bytes of HMAC-SHA256 kept in a payload's tag (128 bits: forging one is
/// out of reach; the payload stays short).
pub const CONTROL_TAG_LEN: usize = 16;

/// Seconds an `a:` announcement stays acceptable after it was sent (clock
/// skew between nodes plus NOTIFY latency). An older one is refused, so a
/// captured announcement cannot be replayed later to close the device's
/// next connection. Nodes' clocks must agree to well within this (NTP).
pub const ANNOUNCEMENT_MAX_AGE: u64 = 30;

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
    /// `address` authenticated the connection tagged `nonce` at unix time
    /// `sent`: every other connection for `address`, on any node, is
    /// replaced.
    Authenticated {
        /// The device.
        address: Address,
        /// The new connection's tag.
        nonce: ConnectionNonce,
        /// When the announcement was made (seconds since the epoch), so a
        /// replay after [`ANNOUNCEMENT_MAX_AGE`] is refused.
        sent: u64,
    },
}

impl ControlEvent {
    /// The payload before its tag: `r:<32 hex account>` or
    /// `a:<32 hex account>:<device>:<16 hex nonce>:<unix seconds>`.
    fn body(&self) -> String {
        match self {
            ControlEvent::Revoked { account } => format!("r:{}", account.to_hex()),
            ControlEvent::Authenticated {
                address,
                nonce,
                sent,
            } => format!(
                "a:{}:{}:{}:{sent}",
                address.account.to_hex(),
                address.device.0,
                hex::encode(nonce.0)
            ),
        }
    }

    /// Inverse of [`ControlEvent::body`]; `None` for anything malformed.
    fn parse_body(body: &str) -> Option<Self> {
        let mut parts = body.split(':');
        let event = match parts.next()? {
            "r" => ControlEvent::Revoked {
                account: AccountId::from_hex(parts.next()?)?,
            },
            "a" => {
                let account = AccountId::from_hex(parts.next()?)?;
                let device = DeviceId(parts.next()?.parse().ok()?);
                let mut nonce = [0u8; 8];
                hex::decode_to_slice(parts.next()?, &mut nonce).ok()?;
                let sent = parts.next()?.parse().ok()?;
                ControlEvent::Authenticated {
                    address: Address { account, device },
                    nonce: ConnectionNonce(nonce),
                    sent,
                }
            }
            _ => return None,
        };
        parts.next().is_none().then_some(event)
    }
}

/// A payload [`ControlKey::seal`] produced: `<body>:<32 hex tag>`. Stores
/// publish only these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayload(String);

impl SealedPayload {
    /// The text to NOTIFY or deliver.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a payload was dropped (counted, never logged with its contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No tag, or a tag that does not verify: not sent by a node of this
    /// relay (or mangled).
    #[error("the control payload is not authenticated by this relay's key")]
    BadTag,
    /// Authenticated but not a payload this version understands.
    #[error("the authenticated control payload is malformed")]
    Malformed,
}

/// The control channel's MAC key, shared by every node of one relay
/// because they share its OPAQUE key file.
pub struct ControlKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlKey(<redacted>)")
    }
}

impl ControlKey {
    /// key = HKDF-SHA256(salt none, ikm = `secret`, info =
    /// [`CONTROL_MAC_LABEL`], 32 bytes); `secret` is the serialized server
    /// setup, the key file's contents after its header.
    pub fn derive(secret: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        if Hkdf::<Sha256>::new(None, secret)
            .expand(CONTROL_MAC_LABEL, key.as_mut())
            .is_err()
        {
            unreachable!("HKDF-SHA256 output of 32 bytes is always valid");
        }
        Self(key)
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts 32-byte keys"),
        };
        mac.update(body.as_bytes());
        mac
    }

    /// `<body>:<hex of the first 16 bytes of HMAC-SHA256(key, body)>`.
    pub fn seal(&self, event: &ControlEvent) -> SealedPayload {
        let body = event.body();
        let tag = self.mac(&body).finalize().into_bytes();
        let tag = hex::encode(&tag[..CONTROL_TAG_LEN]);
        SealedPayload(format!("{body}:{tag}"))
    }

    /// Verifies the tag (in constant time) and only then parses the body.
    pub fn open(&self, payload: &str) -> Result<ControlEvent, Refused> {
        let (body, tag_hex) = payload.rsplit_once(':').ok_or(Refused::BadTag)?;
        let mut tag = [0u8; CONTROL_TAG_LEN];
        hex::decode_to_slice(tag_hex, &mut tag).map_err(|_| Refused::BadTag)?;
        self.mac(body)
            .verify_truncated_left(&tag)
            .map_err(|_| Refused::BadTag)?;
        ControlEvent::parse_body(body).ok_or(Refused::Malformed)
    }
}

/// What a node's control subscribers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlNotice {
    /// A payload as published, not yet verified.
    Payload(String),
    /// Events may have been missed (the listener reconnected): re-check
    /// every connection's token. Never published; made locally.
    Resync,
}

/// Where a node's store hands control notices to the node's subscribers.
#[derive(Debug, Clone)]
pub struct ControlBus(broadcast::Sender<ControlNotice>);

impl Default for ControlBus {
    fn default() -> Self {
        Self(broadcast::channel(CONTROL_BUFFER).0)
    }
}

impl ControlBus {
    /// Delivers `event` to every subscriber on this node. No subscriber is
    /// not an error (nothing is connected yet).
    pub fn deliver(&self, notice: ControlNotice) {
        let _ = self.0.send(notice);
    }

    /// A new subscription. `RecvError::Lagged` must be treated like
    /// [`ControlNotice::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<ControlNotice> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ControlKey {
        ControlKey::derive(b"the server setup of one relay")
    }

    #[test]
    fn payloads_round_trip_and_carry_only_ids_and_a_tag() {
        let key = key();
        let account = AccountId::from_bytes([0xab; 16]);
        let revoked = ControlEvent::Revoked { account };
        let sealed = key.seal(&revoked);
        let (body, tag) = sealed.as_str().rsplit_once(':').expect("tagged");
        assert_eq!(body, format!("r:{}", "ab".repeat(16)));
        assert_eq!(tag.len(), 2 * CONTROL_TAG_LEN);
        assert_eq!(key.open(sealed.as_str()), Ok(revoked));

        let authenticated = ControlEvent::Authenticated {
            address: Address {
                account,
                device: DeviceId(3),
            },
            nonce: ConnectionNonce([1, 2, 3, 4, 5, 6, 7, 8]),
            sent: 1_700_000_000,
        };
        let sealed = key.seal(&authenticated);
        let (body, _) = sealed.as_str().rsplit_once(':').expect("tagged");
        assert_eq!(
            body,
            format!("a:{}:3:0102030405060708:1700000000", "ab".repeat(16))
        );
        assert_eq!(key.open(sealed.as_str()), Ok(authenticated));
    }

    #[test]
    fn unauthenticated_or_altered_payloads_are_refused() {
        let key = key();
        let hex = "ab".repeat(16);
        let revoked = ControlEvent::Revoked {
            account: AccountId::from_bytes([0xab; 16]),
        };
        let sealed = key.seal(&revoked);
        let tag = sealed.as_str().rsplit_once(':').expect("tagged").1;
        let other = ControlKey::derive(b"another relay's setup");
        for bad in [
            String::new(),
            format!("r:{hex}"),
            format!("a:{hex}:0:0102030405060708:1700000000"),
            format!("a:{hex}:0:0102030405060708:1700000000:{tag}"),
            format!("r:{}:{tag}", "cd".repeat(16)),
            format!("r:{hex}:{}", &tag[..30]),
            other.seal(&revoked).0,
        ] {
            assert_eq!(key.open(&bad), Err(Refused::BadTag), "{bad:?}");
        }
    }

    #[test]
    fn authenticated_but_malformed_bodies_are_refused() {
        let key = key();
        let hex = "ab".repeat(16);
        for bad in [
            String::new(),
            "r".into(),
            "r:zz".into(),
            format!("r:{hex}:extra"),
            format!("x:{hex}"),
            format!("a:{hex}:1:0102030405060708"),
            format!("a:{hex}:one:0102030405060708:1"),
            format!("a:{hex}:1:01020304:1"),
            format!("a:{hex}:1:0102030405060708:1:9"),
        ] {
            let tag = hex::encode(&key.mac(&bad).finalize().into_bytes()[..CONTROL_TAG_LEN]);
            assert_eq!(
                key.open(&format!("{bad}:{tag}")),
                Err(Refused::Malformed),
                "{bad:?}"
            );
        }
    }
}
