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
//! The session limits (message lifetime, archived-session and skipped-key
//! ages, the unanswered-session age) live in `umbra_protocol::consts`,
//! since the protocol crate's `SessionRecord` enforces them; the message
//! lifetime is re-exported here.
//!
//! Must never: hold a limit that is not also stated in docs/PROTOCOL.md
//! §12, or define the same limit twice (here and in the protocol crate).

use std::time::Duration;

const DAY_SECS: u64 = 24 * 60 * 60;

/// How long the relay keeps an envelope nobody acknowledged: defined (with
/// its reason) by the protocol crate, whose `SessionRecord` enforces the
/// session limits derived from it (`umbra_protocol::consts`).
pub(crate) use umbra_protocol::consts::RELAY_MESSAGE_LIFETIME;

/// How long a *replaced* signed prekey's secret is kept, counted from its
/// replacement (not its creation): a pre-key message made for it just before
/// the replacement can sit in the relay's queue for the whole message
/// lifetime, and deleting the key earlier loses that message.
pub(crate) const REPLACED_SIGNED_PREKEY_RETENTION: Duration = RELAY_MESSAGE_LIFETIME;

/// A "seen" marker (SHA-256 of a processed envelope, dated by the local
/// clock when it was processed) is pruned after this long. An honest relay
/// has expired the envelope by then; a hostile relay replaying it later must
/// meet a client that can no longer open it either, and a pre-key message
/// can be opened as long as the signed prekey it names is kept: up to one
/// rotation interval in use, then [`REPLACED_SIGNED_PREKEY_RETENTION`] after
/// its replacement. So a marker outlives that, plus a day for clock skew,
/// not just the relay's message lifetime.
pub(crate) const SEEN_MARKER_LIFETIME: Duration = Duration::from_secs(
    REPLACED_SIGNED_PREKEY_RETENTION.as_secs()
        + umbra_protocol::prekeys::SIGNED_PREKEY_ROTATION_SECS
        + DAY_SECS,
);

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

/// When a group state change lists the sender of a held item (its Add
/// came, docs/PROTOCOL.md §8.15) and the envelope of a delivery it kept
/// did not fit what the connection keeps (`connection/kept_again.rs`), it
/// reconnects this soon, whatever the backoff above has grown to: long
/// enough that the changes of one sync answer, processed one after
/// another, cost one reconnect, short enough that the held text shows as
/// the Add does.
pub(crate) const KEPT_REDELIVERY_OPENABLE_WAIT: Duration = Duration::from_millis(250);

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

/// Longest `Retry-After` from a full relay (HTTP 503 on the upgrade) the
/// client honours before its next attempt: umbra-relay sends 10 s; a larger
/// value from a broken or hostile relay must not park the client for hours.
pub(crate) const MAX_RELAY_FULL_WAIT: Duration = Duration::from_secs(5 * 60);

/// Largest group whose typing notices are sent: one ephemeral frame per
/// member per keystroke burst is fine for a team, not for a thousand
/// members, and typing is best effort (Signal stops at a similar size).
pub(crate) const MAX_GROUP_TYPING_MEMBERS: usize = 32;

/// We send one member at most one `GroupSync` per group in this long
/// (§8.15): a member behind notices it on every group text and every
/// pending change, and one request brings everything it can get; a lost
/// answer is asked for again on the next sign after this much time.
pub(crate) const GROUP_SYNC_ASK_INTERVAL: Duration = Duration::from_secs(60);

/// We answer one member at most one `GroupSync` per group in this long: an
/// answer is up to [`MAX_GROUP_SYNC_CHANGES`] pairwise messages, so a
/// member (or a forged repeat) asking in a loop cannot make us send more
/// than that per interval. The ask interval: an honest member asks no
/// more often, so a shorter one would only serve a client that does.
pub(crate) const GROUP_SYNC_ANSWER_INTERVAL: Duration = GROUP_SYNC_ASK_INTERVAL;

/// Most changes one sync answer carries: the whole window a log keeps
/// (`REORG_WINDOW`), since a log holds no more than that above its base.
pub(crate) const MAX_GROUP_SYNC_CHANGES: usize = umbra_protocol::consts::REORG_WINDOW;

/// Most (group, member) pairs whose last request or answer time is kept in
/// memory; the oldest half is forgotten beyond it (so a flood of distinct
/// pairs costs memory bounded by this, and at worst an early answer).
pub(crate) const GROUP_SYNC_TRACKED: usize = 4096;

/// We ask one member at most once per key of it (group, epoch, chain id)
/// in this long to send that sender key again (`GroupKeyRequest`, §8.16,
/// `groups/key_request.rs`):
/// every group message of that member that does not open is a reason to
/// ask, one answer opens all of them, and the messages wait unacknowledged
/// at the relay meanwhile (kept for a day and eight attempts at least,
/// `KEPT_DELIVERY_*`), so a lost answer costs a wait, not a message. Ten
/// minutes keeps a member that sends a burst, or a relay redelivering kept
/// messages on every reconnect, from turning each into a request.
pub(crate) const GROUP_KEY_REQUEST_INTERVAL: Duration = Duration::from_secs(600);

/// We answer one member at most one `GroupKeyRequest` per key of ours in
/// this long: an answer is one pairwise message the size of a request's, so
/// this only stops a peer that repeats requests from keeping our outbox
/// busy. Shorter than the ask interval, so an honest member asking again
/// after a lost answer is never refused (the two clocks need not agree).
pub(crate) const GROUP_KEY_ANSWER_INTERVAL: Duration = Duration::from_secs(60);

/// Most group items (sender key distributions, group messages) held for
/// one (group, sender) that our state does not list, waiting for a sync to
/// bring the Add we missed (§8.15, `groups/held.rs`): a real new member
/// sends one distribution and its first messages, an ex-member flooding us
/// fills only its own share.
pub(crate) const GROUP_HELD_PER_SENDER: usize = 16;

/// Most group items held for membership in one group.
pub(crate) const GROUP_HELD_PER_GROUP: usize = 64;

/// Most group items held for membership in all.
pub(crate) const GROUP_HELD_TOTAL: usize = 256;

/// How long an item is held for membership: a sync answer (its member may
/// be offline) has a day to make its sender a member, as long as a kept
/// delivery's first failure must be old before it is given up.
pub(crate) const GROUP_HELD_LIFETIME: Duration = KEPT_DELIVERY_MIN_AGE;

/// Most refusals decided for items still at the relay (an item evicted
/// from its slot) and (group, sender) pairs a completed sync showed not
/// listed (whose new items are held evict-first), kept in memory until
/// the item comes again (§8.15). Beyond it the oldest is
/// forgotten: its item is then held again when it comes, not lost.
pub(crate) const GROUP_HELD_REFUSALS_TRACKED: usize = 1024;

/// Longest wait for a relay's whole HTTP answer head (status line and
/// headers, at most 16 KiB): a relay that drips one byte per idle period
/// would otherwise hold a file or backup transfer open without end; a real
/// one sends its head in one piece, so 30 s (one idle period) is ample.
pub(crate) const HTTP_HEAD_DEADLINE: Duration = Duration::from_secs(30);

/// Slowest average rate a request or answer body of the relay's HTTP side
/// may keep, after one idle period of grace: the same 16 KiB/s the relay
/// demands of an upload (§11.9 `blob_min_bytes_per_sec`), so a 100 MiB blob
/// is allowed about 1 h 47 min however it trickles, instead of forever.
pub(crate) const HTTP_MIN_BODY_BYTES_PER_SEC: u64 = 16 * 1024;

/// How many times a setup step that publishes keys (registration, login,
/// restore: `PublishKeys`, one-time prekeys, ML-KEM prekeys) is tried again
/// after the connection it was sent on was lost before its answer. Each
/// step is idempotent, and the connection may close under it for reasons
/// that are not the step's: a relay too old for the KEM frames closes the
/// connection on the first one, which the per-connection maintenance may
/// send at the same moment (docs/PROTOCOL.md §12.6). Three tries cover one
/// such close and one more ordinary drop; a relay that drops every
/// connection fails the setup with the connection's error.
pub(crate) const SETUP_STEP_ATTEMPTS: u32 = 3;

/// Converts a limit to whole milliseconds for comparisons with stored
/// Unix-millisecond times.
pub(crate) const fn millis(limit: Duration) -> u64 {
    limit.as_secs() * 1000
}
