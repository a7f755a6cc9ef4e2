//! The time limits and counts a [`SessionRecord`](crate::session_record::SessionRecord)
//! enforces, each with the reason for its value, in one place.
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
