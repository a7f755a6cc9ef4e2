//! # umbra-wire
//!
//! Client<->relay frames and everything the relay must understand of them:
//! the only part of the umbra protocol `umbra-relay` depends on.
//!
//! Every WebSocket binary message is one frame, `[version: u8][postcard body]`
//! (see docs/PROTOCOL.md §9 for the byte layout of every variant). Clients
//! send [`ClientFrame`]s (requests carrying a `request_id`); the relay sends
//! [`RelayFrame`]s (replies echoing it, or pushes). Besides the frames, this
//! crate holds what the relay checks or computes itself: the public halves
//! of identities and prekeys with their strict signature checks
//! ([`identity`], [`prekeys`], [`labels`]), public X25519 keys ([`keys`]), and
//! the OPAQUE ciphersuite ([`opaque_suite`]). umbra-protocol re-exports all of
//! it (`umbra_protocol::wire` is this crate's root).
//!
//! ```
//! use umbra_wire::{self as wire, ClientFrame, Request};
//!
//! let bytes = wire::encode_client(&ClientFrame { request_id: 7, request: Request::Ping })?;
//! assert_eq!(bytes, [wire::WIRE_VERSION, 7, 16]); // version, request id, tag of Ping
//! assert_eq!(wire::decode_client(&bytes)?.request, Request::Ping);
//! assert!(wire::decode_client(&[bytes.as_slice(), &[0]].concat()).is_err()); // trailing byte
//! # Ok::<(), wire::WireError>(())
//! ```
//!
//! Must never: panic on any input, accept an unsupported version or trailing
//! bytes, carry plaintext or a sender identity next to an envelope, or hold a
//! private key or any ratchet, X3DH, sealed-sender or group code (a CI step
//! checks the relay's dependency tree for umbra-protocol).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
pub mod device_list;
pub mod devices;
pub mod identity;
pub mod kem_prekeys;
pub mod keys;
pub mod kt;
pub mod labels;
pub mod opaque_suite;
pub mod prekeys;

mod address;
mod client_frame;
mod error_code;
mod framing;
pub mod limits;
mod prekey;
mod redacted_debug;
mod relay_frame;
mod token;
mod username;
pub mod version;

pub use address::{AccountId, Address, DeviceId, InvalidAccountId, ACCOUNT_ID_LEN};
pub use client_frame::{AccountRef, ClientFrame, LimitError, OutgoingEnvelope, Request};
pub use devices::{DeviceInfo, LinkEnrolled, LinkTicketId, LINK_TICKET_LEN};
pub use error_code::ErrorCode;
pub use framing::WireError;
pub use limits::*;
pub use prekey::{
    HybridBundleWire, KemPreKeyWire, PreKeyBundleWire, PreKeyWire, SignedPreKeyWire, SIGNATURE_LEN,
};
pub use relay_frame::{LinkMessage, RelayFrame, Response, SendOutcome};
pub use token::{SessionToken, SESSION_TOKEN_LEN};
pub use username::{Username, UsernameError, USERNAME_MAX_LEN, USERNAME_MIN_LEN};
pub use version::{
    version_rejection_notice, MIN_SUPPORTED_VERSION, VERSION_REJECTION_MARKER, WIRE_VERSION,
};

pub use framing::{decode_versioned, encode_versioned};

use version::VERSION_REJECTION_LEN;

const SUPPORTED: std::ops::RangeInclusive<u8> = MIN_SUPPORTED_VERSION..=WIRE_VERSION;

/// Encodes a client frame at [`WIRE_VERSION`].
pub fn encode_client(frame: &ClientFrame) -> Result<Vec<u8>, WireError> {
    encode_versioned(WIRE_VERSION, frame, MAX_FRAME_BYTES)
}

/// Encodes a relay frame at [`WIRE_VERSION`].
pub fn encode_relay(frame: &RelayFrame) -> Result<Vec<u8>, WireError> {
    encode_versioned(WIRE_VERSION, frame, MAX_FRAME_BYTES)
}

/// Decodes one client frame. Any byte string yields a frame or a named error.
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, WireError> {
    check_rejection_notice(bytes)?;
    decode_versioned(bytes, MAX_FRAME_BYTES, SUPPORTED)
}

/// Decodes one relay frame. Any byte string yields a frame or a named error;
/// the version-rejection notice yields [`WireError::PeerRejectedVersion`].
pub fn decode_relay(bytes: &[u8]) -> Result<RelayFrame, WireError> {
    check_rejection_notice(bytes)?;
    decode_versioned(bytes, MAX_FRAME_BYTES, SUPPORTED)
}

/// Reads the `request_id` of a client frame that failed to decode, so the
/// relay's `Error` reply can still name it. `None` if even that is unreadable
/// or the version is unsupported.
///
/// Only the version byte and the id's varint are read, whatever the frame's
/// length: an oversized frame (the case this exists for, section 9.10) must
/// still get its `FrameTooLarge` under its own request id.
pub fn peek_request_id(bytes: &[u8]) -> Option<u64> {
    /// The version byte plus the longest varint of a `u64`.
    const PREFIX: usize = 1 + 10;
    let prefix = &bytes[..bytes.len().min(PREFIX)];
    let (_, body) = framing::split_version(prefix, PREFIX, SUPPORTED).ok()?;
    let (id, _) = postcard::take_from_bytes::<u64>(body).ok()?;
    Some(id)
}

/// Parses exactly `2 * N` hex digits (either case) into `N` bytes; `None`
/// for anything else. Hex digits only: a hand-rolled `from_str_radix` loop
/// would also take a sign ("+f"), giving one id two spellings. Public for
/// umbra-protocol's ids, which are spelled the same way.
pub fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

fn check_rejection_notice(bytes: &[u8]) -> Result<(), WireError> {
    match bytes {
        [VERSION_REJECTION_MARKER, min, max] => Err(WireError::PeerRejectedVersion {
            min: *min,
            max: *max,
        }),
        [VERSION_REJECTION_MARKER, ..] if bytes.len() != VERSION_REJECTION_LEN => {
            Err(WireError::UnsupportedVersion {
                got: VERSION_REJECTION_MARKER,
                min: MIN_SUPPORTED_VERSION,
                max: WIRE_VERSION,
            })
        }
        _ => Ok(()),
    }
}
