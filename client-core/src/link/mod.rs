//! Linking a device (docs/PROTOCOL.md §15.6, §15.7, §12.17): a device of
//! the account (the *creator*, [`Client::link_device`](crate::Client::link_device))
//! shows a link code; a new data directory given the code (the *joiner*,
//! [`Client::link_accept`](crate::Client::link_accept)) becomes another
//! device of the same account, with the same identity, contacts and trust,
//! and groups, through the relay's rendezvous and end-to-end encrypted
//! under the code's secret, which the relay never sees.
//!
//! `creator.rs` drives the rendezvous on the creator's live connection and
//! builds the provisioning; `joiner.rs` drives it on an unauthenticated
//! connection of its own and sets the new store up in one transaction;
//! `snapshot.rs` carries the contacts and groups as an attachment blob
//! (the backup contents encoding, §13.4) whose pointer is in the
//! provisioning. The handshake itself is `umbra_protocol::link`.
//!
//! Must never: send the identity (or anything else of the account) to a
//! joiner whose first message does not open under the code, copy a
//! ratchet session, sender key or prekey secret to the new device, send a
//! session reset from a linked device (the creator keeps its sessions, and
//! a reset would take them over), keep a copy of the code, the identity or
//! the export key beyond the handshake (the handshake types and
//! `Zeroizing` wipe them), or show them in `Debug` or a log.

mod creator;
mod joiner;
mod snapshot;
#[cfg(test)]
mod tests;

use std::time::Duration;

use umbra_protocol::link::LinkError;
use umbra_protocol::wire::ErrorCode;

pub use creator::LinkInvite;

use crate::Error;

/// How often each side asks the relay for the other's posts (§15.6:
/// "about once a second").
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long past the wait's end one rendezvous request may still take
/// before it counts as no answer (a relay that stops answering mid-call).
pub(crate) const CALL_MARGIN: Duration = Duration::from_secs(5);

/// The wait a `RateLimited` refusal of a `LinkFetch` asks for (§15.6: the
/// ticket stays, and a poll after the wait succeeds), at least one poll
/// interval; `None` for any other error.
pub(crate) fn rate_limited_wait(error: &Error) -> Option<Duration> {
    match error {
        Error::Relay {
            code: ErrorCode::RateLimited,
            retry_after_secs,
            ..
        } => Some(
            retry_after_secs
                .map(|secs| Duration::from_secs(u64::from(secs)))
                .unwrap_or(POLL_INTERVAL)
                .max(POLL_INTERVAL),
        ),
        _ => None,
    }
}

/// Why linking a device failed. Nothing here carries the code or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkFailure {
    /// The text given is not a link code (wrong length or characters).
    #[error("this is not a link code ({0}); copy the code `umbra link` shows exactly")]
    BadCode(#[source] LinkError),
    /// The relay knows no such rendezvous: the ticket half of the code was
    /// mistyped, the code expired (it lasts five minutes), it was already
    /// used, or it was made on another relay.
    #[error(
        "the relay knows no such link code: it is mistyped, expired (a code lasts five \
         minutes), already used, or from another relay; run `umbra link` again on the other \
         device"
    )]
    UnknownCode,
    /// The creator: the joiner's first message did not open under the
    /// code. The code was mistyped on the new device, or someone joined
    /// with the ticket alone. Nothing was sent to it.
    #[error(
        "the device that joined did not prove it holds the link code: the code was mistyped \
         there, or someone else joined with the ticket alone; nothing was sent to it. Run \
         `umbra link` again"
    )]
    NotProven,
    /// The joiner: the creator's answer did not open under the code.
    #[error("the linking device's answer does not open under this link code ({0}); link again")]
    AnswerUnopenable(#[source] LinkError),
    /// The creator: no device joined before the code expired.
    #[error("no device joined within {0:?}; the link code has expired")]
    NoJoiner(Duration),
    /// The joiner: no answer came in time. With a code mistyped in its
    /// secret half the creator refuses the first message and stays silent,
    /// so this is what the joiner sees then.
    #[error(
        "the linking device did not answer within {0:?}: the code may be mistyped (compare it \
         and link again), or `umbra link` stopped there"
    )]
    NoAnswer(Duration),
    /// What the creator provisioned does not fit what the relay enrolled
    /// (another account, a snapshot of another account or identity): one
    /// of them misbehaved. Comes inside [`LinkFailure::EnrolledNotSetUp`].
    #[error("the link was refused: {0}")]
    Inconsistent(&'static str),
    /// The joiner: the relay enrolled this data directory as `device`, but
    /// what followed (opening the answer, its checks, the snapshot, the
    /// store's setup) failed with `cause`. The relay holds the device as
    /// current, with nothing behind it: remove it from the other device.
    #[error(
        "device {device} was enrolled but not set up here ({cause}); remove it from the other \
         device with `umbra devices remove {device}`"
    )]
    EnrolledNotSetUp {
        /// The device id the relay enrolled.
        device: u32,
        /// Why its setup failed.
        #[source]
        cause: Box<Error>,
    },
    /// The creator: the relay enrolled the new device as `device`, but the
    /// account's device list naming it was not published (`cause`), so
    /// contacts do not encrypt to it yet. `umbra devices add-to-list
    /// DEVICE` ([`crate::Client::list_device`]) publishes it.
    #[error(
        "device {device} was enrolled but the device list naming it was not published \
         ({cause}); run `umbra devices add-to-list {device}` to publish it, or `umbra devices \
         remove {device}`"
    )]
    EnrolledNotListed {
        /// The device id the relay enrolled.
        device: u32,
        /// Why the list was not published.
        #[source]
        cause: Box<Error>,
    },
    /// The relay refused to enrol another device, the account has
    /// `MAX_DEVICES_PER_ACCOUNT` (8) already: the creator is told by its
    /// `LinkEnrol`, the joiner by its next `LinkFetch` (§15.6).
    #[error(
        "the account has 8 devices already; remove one (umbra devices remove ID) and link again"
    )]
    DeviceLimit,
    /// The creator: this device could not build the provisioning (a
    /// snapshot pointer or an encoding over a link post's limit).
    #[error("the new device's provisioning could not be built: {0}")]
    Provisioning(#[source] LinkError),
    /// The snapshot of contacts and groups does not decode.
    #[error("the linked account's contacts and groups do not decode: {0}")]
    Snapshot(#[source] umbra_protocol::backup::BackupError),
}

/// A relay refusal during the rendezvous, with `UnknownExchange` (an
/// unknown, expired, joined or finished ticket, §15.6) as the typed
/// [`LinkFailure::UnknownCode`].
pub(crate) fn rendezvous_error(error: Error) -> Error {
    match error {
        Error::Relay {
            code: ErrorCode::UnknownExchange,
            ..
        } => Error::Link(LinkFailure::UnknownCode),
        other => other,
    }
}
