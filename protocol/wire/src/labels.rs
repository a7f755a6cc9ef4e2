//! The domain-separation labels of the signatures the relay checks.
//!
//! Only the labels of signatures the relay verifies live here (a published
//! identity, its signed prekey, a device list); umbra-protocol's `labels` module re-exports
//! them beside every other label, so its uniqueness test still covers them.
//!
//! Must never: be given a label the relay does not verify, or a second copy
//! of one of these values anywhere else.

/// Ed25519 signature by an identity's signing key over its own X25519 key.
pub const IDENTITY_BINDING: &[u8] = b"umbra/v1/identity/binding";
/// Ed25519 signature by an identity over a signed prekey.
pub const SIGNED_PREKEY: &[u8] = b"umbra/v1/prekey/signed";
/// Ed25519 signature by the account identity over its device list
/// (docs/PROTOCOL.md §15.2), which the relay may check before storing it.
pub const DEVICE_LIST: &[u8] = b"umbra/v1/devices/list";
/// Ed25519 signature by an identity over an ML-KEM-768 prekey
/// (docs/PROTOCOL.md 3.9), which the relay checks before storing it.
pub const KEM_PREKEY: &[u8] = b"umbra/v1/prekey/kem";
