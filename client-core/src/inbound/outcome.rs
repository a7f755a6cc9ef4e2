//! What becomes of one delivery (the types `inbound.rs` returns): accepted
//! with its events and whether the relay may delete it, or refused, kept,
//! dropped as a duplicate or as a blocked account's, or failed in the
//! store; and how an error while asking the relay sorts into kept or
//! refused (docs/PROTOCOL.md §12.5).
//!
//! Must never: sort a failure that may be local or passing (the relay
//! could not be asked) as one that can never go away.

use crate::{DecryptFailure, Error, Event, SharedError};

/// A delivery that could not be accepted, for the `DecryptionFailed` event.
pub(crate) struct Rejected {
    pub(crate) from: Option<String>,
    pub(crate) reason: DecryptFailure,
}

impl Rejected {
    pub(crate) fn anonymous(reason: DecryptFailure) -> Self {
        Self { from: None, reason }
    }
}

/// Outcome of the fallible part of processing.
pub(crate) enum Failure {
    /// The envelope can never be opened or believed: acknowledged.
    Rejected(Rejected),
    /// The failure may be local or passing: kept for a redelivery.
    Kept(Rejected),
    /// A message whose key was already used: a redelivery or a replay of
    /// something already processed. Dropped without a warning.
    Duplicate,
    /// Claims a blocked account and is refused, or is not sealed by the
    /// identity pinned for it (`crate::blocking`): acknowledged without a
    /// warning, since any event would name the blocked account, and
    /// nothing of it is stored but the seen marker (no session, no used
    /// prekey).
    Blocked,
    /// The store failed: nothing is committed or acknowledged.
    Store(Error),
    /// The state changed since the directory was asked without the lock:
    /// nothing is committed; the caller plans again (`precheck.rs`).
    Replan,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(_) => Failure::Store(e),
            other if passing(&other) => Failure::Kept(Rejected::anonymous(
                DecryptFailure::Request(SharedError::new(other)),
            )),
            other => Failure::Rejected(Rejected::anonymous(DecryptFailure::Request(
                SharedError::new(other),
            ))),
        }
    }
}

/// Whether an error while asking the relay says nothing about the envelope:
/// the connection, a timeout, a rate limit or a busy relay, a shutdown, or
/// an answer this client could not use.
fn passing(e: &Error) -> bool {
    e.is_retryable() || matches!(e, Error::Protocol(_) | Error::Closed | Error::Relay { .. })
}

/// What became of one delivery.
#[derive(Debug)]
pub(crate) struct Processed {
    /// Events to emit (everything they report is committed).
    pub(crate) events: Vec<Event>,
    /// Whether the relay may delete the envelope. `false` keeps it queued,
    /// to be delivered again on the next connection.
    pub(crate) ack: bool,
}

impl Processed {
    pub(super) fn acked(events: Vec<Event>) -> Self {
        Self { events, ack: true }
    }
}

impl From<crate::StoreError> for Failure {
    fn from(e: crate::StoreError) -> Self {
        Failure::Store(Error::Store(e))
    }
}
