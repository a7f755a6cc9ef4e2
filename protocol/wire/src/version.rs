//! Wire protocol versions and the downgrade policy.
//!
//! Every frame starts with one version byte. A receiver accepts exactly the
//! versions in `MIN_SUPPORTED_VERSION..=WIRE_VERSION`; anything else is
//! refused with [`ErrorCode::UnsupportedVersion`](super::ErrorCode) naming
//! that range. There is no negotiation: a peer never re-reads a frame under a
//! different version, and never speaks below `MIN_SUPPORTED_VERSION`.
//!
//! Version byte 0 is reserved forever for the version-rejection notice, a
//! 3-byte frame `[0x00, min, max]` whose layout can never change, so a peer
//! of any version can learn why it was refused.
//!
//! Must never: silently reinterpret a frame of another version.

/// The version this code writes.
pub const WIRE_VERSION: u8 = 1;

/// The oldest version this code still reads.
pub const MIN_SUPPORTED_VERSION: u8 = 1;

/// The reserved version byte of the version-rejection notice.
pub const VERSION_REJECTION_MARKER: u8 = 0;

/// Length of the version-rejection notice.
pub const VERSION_REJECTION_LEN: usize = 3;

/// The frame a peer sends before closing when it cannot read the other
/// side's version: `[0x00, MIN_SUPPORTED_VERSION, WIRE_VERSION]`.
pub const fn version_rejection_notice() -> [u8; VERSION_REJECTION_LEN] {
    [
        VERSION_REJECTION_MARKER,
        MIN_SUPPORTED_VERSION,
        WIRE_VERSION,
    ]
}

/// Whether `version` is one this code reads.
pub const fn is_supported(version: u8) -> bool {
    version >= MIN_SUPPORTED_VERSION && version <= WIRE_VERSION
}
