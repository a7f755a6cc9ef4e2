//! Every time limit and count the client's state rules depend on, each with
//! the reason for its value, in one place.
//!
//! Most of them derive from one number, how long the relay keeps an
//! undelivered envelope ([`RELAY_MESSAGE_LIFETIME`]): anything the client
//! keeps so that a queued envelope can still be opened (a replaced signed
//! prekey, an archived session, a skipped message key) must live at least
//! that long, and anything it keeps only to recognise a redelivery (a seen
//! marker) need not live longer.
//!
//! Must never: hold a limit that is not also stated in docs/PROTOCOL.md
//! §12, or define the same limit twice elsewhere in the crate.

use std::time::Duration;

const DAY_SECS: u64 = 24 * 60 * 60;

/// How long the relay keeps an envelope nobody acknowledged (its default
/// `message_ttl`, PROTOCOL.md §11.6). After this the relay has deleted it, so
/// nothing the client keeps for a late envelope is useful any longer.
pub(crate) const RELAY_MESSAGE_LIFETIME: Duration = Duration::from_secs(30 * DAY_SECS);

/// How long a *replaced* signed prekey's secret is kept, counted from its
/// replacement (not its creation): a pre-key message made for it just before
/// the replacement can sit in the relay's queue for the whole message
/// lifetime, and deleting the key earlier loses that message.
pub(crate) const REPLACED_SIGNED_PREKEY_RETENTION: Duration = RELAY_MESSAGE_LIFETIME;

/// A session we started whose pre-key messages have not been answered for
/// this long is abandoned and a new one is started from a fresh bundle
/// (libsignal's `MAX_UNACKNOWLEDGED_SESSION_AGE`): by then the relay has
/// dropped the unanswered messages, or the peer lost the prekeys they were
/// made for, and repeating the same X3DH header would never complete.
pub(crate) const MAX_UNACKNOWLEDGED_SESSION_AGE: Duration = RELAY_MESSAGE_LIFETIME;

/// Old sessions kept per contact (a simultaneous start leaves two; a few
/// more cover a peer that restarted while messages of the old run were
/// still queued).
pub(crate) const MAX_PREVIOUS_SESSIONS: usize = 4;

/// An archived (previous) session is dropped once it has been archived this
/// long: a message for it would have had to wait in the relay's queue
/// longer than the relay keeps one.
pub(crate) const ARCHIVED_SESSION_MAX_AGE: Duration = RELAY_MESSAGE_LIFETIME;

/// A skipped message key is dropped once it has been stored this long, for
/// the same reason (the late message it waits for is gone from the relay).
pub(crate) const SKIPPED_KEY_MAX_AGE: Duration = RELAY_MESSAGE_LIFETIME;

/// A "seen" marker (SHA-256 of a processed envelope) is pruned once the
/// relay would have expired that envelope: it can no longer be redelivered,
/// and a replay of it by a hostile relay is still refused by the ratchet
/// (its key is used up) and by the message-id index.
pub(crate) const SEEN_MARKER_LIFETIME: Duration = RELAY_MESSAGE_LIFETIME;

/// A delivery that failed for a reason that may be local (network, rate
/// limit, a missing session or prekey) is kept unacknowledged and retried on
/// each redelivery; it is given up (acknowledged, reported lost) only after
/// it failed at least this many times...
pub(crate) const KEPT_DELIVERY_MAX_ATTEMPTS: u32 = 8;

/// ... and its first failure is at least this old, so a burst of quick
/// reconnects during one outage cannot use up the attempts. The relay's own
/// expiry bounds the rest: a kept envelope is gone after
/// [`RELAY_MESSAGE_LIFETIME`] whatever the client does.
pub(crate) const KEPT_DELIVERY_MIN_AGE: Duration = Duration::from_secs(DAY_SECS);

/// A long-lived connection that kept a delivery reconnects after a
/// jittered wait starting here (the relay pushes an unacknowledged envelope
/// again only after a new authentication), so a first message held up by a
/// passing rate limit shows within seconds, not at the next restart...
pub(crate) const KEPT_REDELIVERY_FIRST_WAIT: Duration = Duration::from_secs(5);

/// ... doubling while deliveries keep being kept, up to this, so an
/// envelope that will never open costs a reconnect at most about hourly.
pub(crate) const KEPT_REDELIVERY_MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// How long a published identity check of a contact stays good on one
/// connection before the next send checks again.
pub(crate) const IDENTITY_RECHECK_AFTER: Duration = Duration::from_secs(10 * 60);

/// How often a long-lived connection re-runs prekey maintenance (rotation,
/// top-up, pruning).
pub(crate) const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Most Argon2 memory a local store's (unauthenticated) header may ask for:
/// 1 GiB, sixteen times the production 64 MiB, still a bounded allocation
/// on any machine that runs the client. An edited header must not make the
/// client allocate without bound before it can say the password is wrong.
pub(crate) const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;

/// Most Argon2 passes a store header may ask for (production uses 3), so an
/// edited header cannot make opening spin for hours.
pub(crate) const MAX_KDF_ITERATIONS: u32 = 64;

/// Most Argon2 lanes a store header may ask for (production uses 1).
pub(crate) const MAX_KDF_PARALLELISM: u32 = 16;

/// Converts a limit to whole milliseconds for comparisons with stored
/// Unix-millisecond times.
pub(crate) const fn millis(limit: Duration) -> u64 {
    limit.as_secs() * 1000
}
