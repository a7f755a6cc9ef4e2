//! Contacts and how much we trust their keys.
//!
//! A contact is an account (account id, pinned identity), never a name: the
//! username is a label learned from the directory and from the contact's own
//! signed messages, and what a name means to the user changes only when the
//! user says so ([`NameState`]).
//!
//! Trust is trust-on-first-use: the first identity key seen for a contact is
//! pinned. A later, different key makes the contact `Changed` until the user
//! accepts it or verifies it by comparing safety numbers.
//!
//! Must never: move a contact from `Changed` to anything else without an
//! explicit user action, or let a name the user knows silently start meaning
//! another account.

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::{AccountId, Username};

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

/// What the contact's username means to the user right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// The name means this account: `send NAME` reaches it.
    Current,
    /// The name means this account, but another account now holds or claims
    /// it ([`Event::NameReassigned`](crate::Event::NameReassigned)); sending
    /// by name is refused until the user picks one.
    Contested,
    /// The name means another account to the user: this one is the newcomer
    /// waiting for the user's decision, or the former holder the user chose
    /// against. It cannot be addressed by name; its `display_name` tells it
    /// apart.
    OtherAccount,
}

/// A contact as listed by [`Client::contacts`](crate::Client::contacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's last known username (a label, not an address).
    pub username: Username,
    /// How the client shows the contact: the username, or for
    /// [`NameState::OtherAccount`] the username followed by `#` and the
    /// first 8 hex digits of the account id, so two contacts are never
    /// shown alike. Accepted wherever a peer is named for reading.
    pub display_name: String,
    /// Their account id (stable across renames).
    pub account_id: AccountId,
    /// Trust in their current key.
    pub trust: TrustLevel,
    /// What their username means to the user right now.
    pub name_state: NameState,
}

/// One account a username could mean, with the safety number to compare
/// for it ([`Client::name_candidates`](crate::Client::name_candidates)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCandidate {
    /// The contact.
    pub contact: Contact,
    /// The safety number for its current key (the changed one, if its key
    /// changed).
    pub safety_number: crate::SafetyNumber,
}
