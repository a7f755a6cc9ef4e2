//! The time limits and counts a [`SessionRecord`](crate::session_record::SessionRecord)
//! and a [`GroupLog`](crate::group::GroupLog) enforce, each with the reason
//! for its value, in one place.
//!
//! They all derive from one number, how long a relay keeps an undelivered
//! envelope ([`RELAY_MESSAGE_LIFETIME`], the relay's default `message_ttl`,
//! docs/PROTOCOL.md §11.6): a session state or message key kept so that a
//! queued envelope can still be opened is useless once the relay has
//! deleted that envelope. The crate has no clock: callers pass their own
//! Unix-seconds time and these limits are compared with it.
//!
//! Must never: hold a limit that docs/PROTOCOL.md (§4.9, §12) does not state,
//! or be defined a second time in another crate (client-core re-exports
//! these).

use std::time::Duration;

const DAY_SECS: u64 = 24 * 60 * 60;

/// How long the relay keeps an envelope nobody acknowledged (its default
/// `message_ttl`). After this the relay has deleted it, so nothing kept for
/// a late envelope is useful any longer.
pub const RELAY_MESSAGE_LIFETIME: Duration = Duration::from_secs(30 * DAY_SECS);

/// A session we started whose pre-key messages have not been answered for
/// this long is abandoned and a new one is started from a fresh bundle
/// (libsignal's `MAX_UNACKNOWLEDGED_SESSION_AGE`): by then the relay has
/// dropped the unanswered messages, or the peer lost the prekeys they were
/// made for, and repeating the same X3DH header would never complete.
pub const MAX_UNACKNOWLEDGED_SESSION_AGE: Duration = RELAY_MESSAGE_LIFETIME;

/// Old sessions kept per peer (a simultaneous start leaves two; a few more
/// cover a peer that restarted while messages of the old run were still
/// queued). Bounded so a peer that restarts in a loop cannot make every
/// decryption try an unbounded list.
pub const MAX_PREVIOUS_SESSIONS: usize = 4;

/// An archived (previous) session is dropped once it has been archived this
/// long: a message for it would have had to wait in the relay's queue longer
/// than the relay keeps one.
pub const ARCHIVED_SESSION_MAX_AGE: Duration = RELAY_MESSAGE_LIFETIME;

/// A skipped message key is dropped once it has been stored this long, for
/// the same reason (the late message it waits for is gone from the relay).
pub const SKIPPED_KEY_MAX_AGE: Duration = RELAY_MESSAGE_LIFETIME;

// ----- group membership (docs/PROTOCOL.md §8.7–§8.13) ---------------------

/// Most members a group state may hold: what the issue asks groups to
/// reach (1 000), rounded to the relay's recipient limit, so one fan-out
/// of a full group still fits one `Send` frame's recipient count.
pub const MAX_GROUP_MEMBERS: usize = umbra_wire::MAX_RECIPIENTS_PER_SEND;

/// Most members one Create or Add may list. A welcome carries the whole
/// state (at most 62 044 bytes after an Add of 64, who are not admins:
/// `MAX_GROUP_STATE_BYTES`) plus
/// the Add (64 × 50 bytes), which stays inside one content (65 535 bytes)
/// with room for the client payload's header; client-core splits bigger
/// additions into several changes.
pub const MAX_MEMBERS_PER_CHANGE: usize = 64;

/// How many changes above its oldest kept state a group log keeps, so that
/// it can still switch to a concurrent branch that wins the fork choice.
/// Concurrent changes by admins arrive within a few changes of each other
/// (a member applies a change as soon as its pairwise message arrives); 32
/// covers an admin who was offline while the others made a burst of
/// changes, and keeps at most 32 states of at most ~60 KiB each per group.
/// A change that builds on anything older is refused as stale: that is
/// also what makes a replayed old change useless.
pub const REORG_WINDOW: usize = 32;

/// Most changes a group log holds that wait for their parent (they arrived
/// before it). A window's worth of changes from two admins; more is a
/// peer that floods, not a reordering queue.
pub const MAX_PENDING_CHANGES: usize = 2 * REORG_WINDOW;

/// Most changes of one author that wait for their parent. Honest
/// reordering holds back a few changes of an author at a time (a burst the
/// relay delivered out of order); with a cap per author, one member (or one
/// removed member's stale key) cannot fill the whole pending queue and
/// wedge the log for everyone else's changes (docs/PROTOCOL.md §8.10 step
/// 7).
pub const MAX_PENDING_PER_AUTHOR: usize = 8;

/// How many hashes of dropped side-branch changes (their branch point fell
/// below the window) a group log remembers, so that a change built on one
/// is reported as superseded instead of waiting for a parent that will
/// never be kept. Two per kept state is more than honest
/// concurrency produces; forgetting older ones only makes such a late
/// change wait as pending until the window passes it.
pub const MAX_REMEMBERED_LOSERS: usize = 2 * REORG_WINDOW;

/// Most changes a group log keeps that are valid but not on the canonical
/// chain (side branches inside the window, docs/PROTOCOL.md §8.10). They
/// are kept, not dropped, because a side branch that removes an admin
/// overrules that admin's siblings below the removal: which branch that is
/// can change as more of the branch arrives, so dropping one would make the
/// result depend on arrival order. Honest concurrency leaves a few; a
/// window's worth from two admins is already a flood.
pub const MAX_SIDE_CHANGES: usize = 2 * REORG_WINDOW;

/// Most side-branch changes of one author a group log keeps (see
/// [`MAX_SIDE_CHANGES`]): one member, or a removed admin signing siblings
/// of old changes, cannot take the whole allowance.
pub const MAX_SIDE_PER_AUTHOR: usize = 16;

// ----- group sender keys (docs/PROTOCOL.md §8.1–§8.6) ---------------------

/// Most iterations one group message may skip ahead of the receiver's
/// chain for that sender. Gaps come from the sender's messages that have
/// not arrived yet (or never will, e.g. sent while we were briefly not a
/// member); twice the pairwise ratchet's `MAX_SKIP` (1000) because one
/// group chain carries a sender's messages to the whole group. The walk
/// costs two HMACs per step and happens only after the message signature
/// verified, so only a genuine member can make a receiver take it.
pub const MAX_GROUP_SKIP: u32 = 2000;

/// Most skipped group message keys a receiver keeps per sender device
/// (oldest evicted first): one full skip, so the messages of one maximal
/// gap can all still be read when they arrive, while a receiver's stored
/// state stays bounded (2000 × 36 bytes per member device).
pub const MAX_GROUP_SKIPPED_KEYS: usize = 2000;

// ----- file attachments (docs/PROTOCOL.md §14) -----------------------------

/// Plaintext bytes in every attachment chunk but the last, which holds
/// 0 to `ATTACHMENT_CHUNK_BYTES - 1`. 64 KiB keeps the memory an encryptor
/// or decryptor holds at one chunk whatever the file's size, makes the
/// 16-byte tag per chunk a 0.02 % overhead, and equals the relay's storage
/// chunk (`MAX_BLOB_CHUNK_BYTES`, §11.9), so a chunk that fails is one the
/// relay stored whole. The STREAM counter (32 bits) then never wraps below
/// 256 TiB, far past `MAX_ATTACHMENT_BLOB_BYTES`.
pub const ATTACHMENT_CHUNK_BYTES: usize = 64 * 1024;

/// Largest encrypted blob an attachment may be: the relay's default
/// `blob_max_bytes` (100 MiB, §11.9). A sender refuses a file whose blob
/// would pass it (the relay would answer 413 after the whole upload), and a
/// receiver refuses a pointer that promises more, so a hostile pointer
/// cannot make it download without bound.
pub const MAX_ATTACHMENT_BLOB_BYTES: u64 = 100 * 1024 * 1024;

// ----- disappearing messages (docs/PROTOCOL.md §10.8, §12.18) ---------------

/// Shortest disappearing-message timer, in seconds (0 means off). One
/// second is the smallest unit the content carries; shorter would be a
/// message nobody can read, and any positive value is honest to apply.
pub const MIN_EXPIRATION_TIMER_SECS: u32 = 1;

/// Longest disappearing-message timer: four weeks, as Signal's longest
/// preset. Kept under [`RELAY_MESSAGE_LIFETIME`] so a timer never promises
/// less than what the relay may still hold in its queue, and so a hostile
/// peer cannot set a value that overflows a client's expiry arithmetic.
pub const MAX_EXPIRATION_TIMER_SECS: u32 = 28 * 24 * 60 * 60;
