//! The values the device frames carry (docs/PROTOCOL.md §9.5, §15.4–15.6):
//! the link ticket, a device's entry in `Devices`, and the enrolment that
//! ends a link.
//!
//! The ticket is the relay's handle for one link rendezvous. The spec calls
//! it a handle, not a credential (joining grants nothing without the code's
//! secret, §15.7), but it is half of the link code a user shows on screen,
//! and whoever joins a ticket first spends it, so `Debug` never prints it.
//! [`LinkEnrolled`] carries a session token, the one place besides
//! `LoginDone` and `PasswordChanged` where a token travels.
//!
//! Must never: print a ticket or a token in `Debug`, or hold the link code's
//! secret (it never reaches the relay, so it has no wire type).

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::address::{AccountId, DeviceId};
use crate::token::SessionToken;

/// Length of a [`LinkTicketId`] in bytes.
pub const LINK_TICKET_LEN: usize = 16;

/// The 16-byte handle of one link rendezvous, drawn by the relay at
/// `LinkCreate` (a length-prefixed byte string on the wire, `10` + 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkTicketId(#[serde(with = "crate::keys::serde_bytes_array")] [u8; LINK_TICKET_LEN]);

impl LinkTicketId {
    /// Draws a fresh ticket (the relay does, from its CSPRNG).
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; LINK_TICKET_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps ticket bytes (read from a link code or the store).
    pub const fn from_bytes(bytes: [u8; LINK_TICKET_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; LINK_TICKET_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for LinkTicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkTicketId(<redacted>)")
    }
}

/// One current device of the connection's own account, as `Devices` lists
/// it: `device`, `created_at`, `last_seen_at` (§15.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device's id.
    pub device: DeviceId,
    /// When the relay assigned it, Unix seconds.
    pub created_at: u64,
    /// Its latest `Authenticate`, Unix seconds rounded down to a whole hour;
    /// 0 if it never authenticated.
    pub last_seen_at: u64,
}

/// What the joiner's `LinkFetch` receives once the creator enrolled it:
/// `account`, `device`, `token`, `expires_at` (§15.6). `Debug` shows only
/// the device id and the expiry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEnrolled {
    /// The account the new device joined.
    pub account: AccountId,
    /// Its new device id.
    pub device: DeviceId,
    /// Its first session token, for `Authenticate` on the same connection.
    pub token: SessionToken,
    /// When the token expires, Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for LinkEnrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEnrolled")
            .field("device", &self.device)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
