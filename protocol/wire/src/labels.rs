//! The domain-separation labels of the signatures the relay checks.
//!
//! Only the labels of signatures the relay verifies live here (a published
//! identity, its signed prekey, a device list), and the key-transparency
//! labels the relay hashes and signs under (§16); umbra-protocol's `labels`
//! module re-exports them beside every other label, so its uniqueness test
//! still covers them.
//!
//! Must never: be given a label the relay neither verifies nor computes, or
//! a second copy of one of these values anywhere else.

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

// Key transparency (docs/PROTOCOL.md §16). The relay computes these hashes
// and signs the epoch heads, so they live beside the labels it verifies.
// Every input after a label has a fixed length, so `label || input` is
// unambiguous; no label here is a prefix of another (protocol's test).

/// Prefix of the VRF input (alpha) of a directory label (§16.2).
pub const KT_VRF_INPUT: &[u8] = b"umbra/v1/kt/vrf-input";
/// Hash of a published identity inside an account's leaf value (§16.3).
pub const KT_IDENTITY: &[u8] = b"umbra/v1/kt/identity";
/// Hash of a signed device list inside an account's leaf value (§16.3).
pub const KT_DEVICE_LIST: &[u8] = b"umbra/v1/kt/device-list";
/// One link of a leaf's version chain (§16.3).
pub const KT_VERSION: &[u8] = b"umbra/v1/kt/version";
/// A non-empty leaf of the sparse Merkle map (§16.4).
pub const KT_LEAF: &[u8] = b"umbra/v1/kt/leaf";
/// An interior node of the sparse Merkle map (§16.4).
pub const KT_NODE: &[u8] = b"umbra/v1/kt/node";
/// The empty leaf of the sparse Merkle map (§16.4).
pub const KT_EMPTY: &[u8] = b"umbra/v1/kt/empty";
/// Ed25519 signature by the relay's directory key over an epoch head (§16.7).
pub const KT_EPOCH_HEAD: &[u8] = b"umbra/v1/kt/epoch-head";
