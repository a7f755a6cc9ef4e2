//! Every size and count limit of the client<->relay protocol, in one place.
//!
//! Both sides enforce these: the sender so it never builds a frame the peer
//! must refuse, the receiver because the sender may be hostile. The relay's
//! storage and memory budgets are derived from them, so changing one is a
//! protocol change (docs/PROTOCOL.md §9 lists them all).
//!
//! Must never: be bypassed by a decoder, or be raised without updating the spec.

/// Largest WebSocket binary message either side accepts, version byte
/// included. Checked before any parsing so an oversized frame costs nothing.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Largest sealed envelope the relay accepts for one recipient (Signal's
/// message limit). Larger payloads travel as encrypted blobs plus a pointer.
pub const MAX_ENVELOPE_BYTES: usize = 96 * 1024;

/// Most recipients one `Send` request may address (group fan-out).
pub const MAX_RECIPIENTS_PER_SEND: usize = 1024;

/// Most one-time prekeys one `UploadPreKeys` request may carry (Signal: 100).
pub const ONE_TIME_PREKEYS_PER_UPLOAD_MAX: usize = 100;

/// Bytes of an ML-KEM-768 encapsulation key, the only length a KEM prekey
/// may have (docs/PROTOCOL.md 3.9). The relay checks the length and the
/// signature; the modulus check is the initiator's (it needs the KEM).
pub const KEM_PREKEY_KEY_LEN: usize = 1184;

/// Most one-time ML-KEM prekeys in one `UploadKemPreKeys`: with 1184-byte
/// keys and 64-byte signatures, 100 of them (about 125 KiB) stay well inside
/// `MAX_FRAME_BYTES`.
pub const KEM_ONE_TIME_PREKEYS_PER_UPLOAD_MAX: usize = 100;

/// Most sequence numbers one `Ack` request may acknowledge.
pub const MAX_ACKS_PER_FRAME: usize = 1024;

/// Largest payload of an ephemeral (typing/presence) frame.
pub const MAX_EPHEMERAL_BYTES: usize = 4 * 1024;

/// Largest OPAQUE protocol message carried in a register/login request.
/// Real messages for the ristretto255 suite are under 300 bytes.
pub const MAX_OPAQUE_MESSAGE_BYTES: usize = 4 * 1024;

/// Largest encoded identity public key accepted in `PublishKeys`.
pub const MAX_IDENTITY_BYTES: usize = 1024;

/// Longest human-readable message in an `Error` or `Closing` frame.
pub const MAX_REASON_BYTES: usize = 1024;

/// Most current devices an account may have at once (docs/PROTOCOL.md
/// §15.1): six (Signal's limit) cover a person's machines with room to
/// spare, and the bound caps the fan-out every sender pays per message.
pub const MAX_DEVICES_PER_ACCOUNT: usize = 8;

/// Largest signed device list (§15.2): 90 bytes plus 4 per device.
pub const MAX_DEVICE_LIST_BYTES: usize = 90 + 4 * MAX_DEVICES_PER_ACCOUNT;

/// Largest payload of one `LinkPost` (§15.6): the creator's provisioning
/// message carries the account's identity and a file pointer to the rest,
/// so 32 KiB leaves room without letting a rendezvous hold much.
pub const MAX_LINK_MESSAGE_BYTES: usize = 32 * 1024;

/// Most posts one side of a link rendezvous may make (§15.6): the exchange
/// needs one each way; the rest is room for a client's retry.
pub const MAX_LINK_MESSAGES_PER_SIDE: usize = 4;

/// How long a link ticket lives after `LinkCreate`, in seconds (§15.6).
pub const LINK_TICKET_TTL_SECS: u64 = 300;

/// Most unexpired link tickets an account may hold at once (§15.6).
pub const MAX_LINK_TICKETS_PER_ACCOUNT: usize = 4;

// Key transparency (docs/PROTOCOL.md §16).

/// Depth of the sparse Merkle map (§16.4): one level per bit of a leaf
/// index, which is 32 bytes of VRF output, so two labels share a leaf only
/// if their VRF outputs collide in 256 bits.
pub const KT_MAP_DEPTH: usize = 256;

/// Bytes of a leaf index (the first half of the 64-byte VRF output, §16.2).
pub const KT_INDEX_LEN: usize = 32;

/// Most versions one history proof may carry (§16.6). A version is one
/// publication of an identity or device list (or a username's owner), so an
/// account rarely has more than a few dozen; 1024 versions of the longest
/// (73 bytes: epoch and value) are 75 KiB, under a third of `MAX_FRAME_BYTES`. A longer history is
/// proven in ranges: each proof starts from the chain hash of the version
/// before its first.
pub const KT_MAX_HISTORY_VERSIONS: usize = 1024;

/// Most hashes in one RFC 9162 inclusion or consistency proof of the epoch
/// log (§16.8). A log of size n needs at most ceil(log2 n) hashes for
/// inclusion and about 2·log2 n for consistency; epochs are numbered by a
/// u64, so 128 covers every log size there can be.
pub const KT_MAX_LOG_PROOF_HASHES: usize = 128;
