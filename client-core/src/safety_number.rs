//! Safety numbers: what two users compare to verify each other's keys.
//!
//! The protocol crate's [`SafetyNumber`] (computed from both identities and
//! both account ids; the same 60 digits on both sides), re-exported so
//! there is one type.
//!
//! Must never: compare two safety numbers with a short-circuiting `==`
//! (use [`SafetyNumber::matches`], constant time), or become a second type
//! beside the protocol's.

pub use umbra_protocol::fingerprint::SafetyNumber;
