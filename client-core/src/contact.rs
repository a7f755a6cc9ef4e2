//! Contacts and how much we trust their keys.
//!
//! Trust is trust-on-first-use: the first identity key seen for a contact is
//! pinned. A later, different key makes the contact `Changed` until the user
//! accepts it or verifies it by comparing safety numbers.
//!
//! Must never: move a contact from `Changed` to anything else without an
//! explicit user action.

use serde::{Deserialize, Serialize};

/// How far the user trusts a contact's current identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustLevel {
    /// Pinned on first use, never compared out of band.
    Unverified,
    /// The user compared safety numbers and marked the key verified.
    Verified,
    /// The contact presented a different key than the pinned one; sending
    /// is blocked until the user decides.
    Changed,
}

/// A contact as listed by [`Client::contacts`](crate::Client::contacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's current username.
    pub username: String,
    /// Their account id (32 hex digits; stable across renames).
    pub account_id: String,
    /// Trust in their current key.
    pub trust: TrustLevel,
}
