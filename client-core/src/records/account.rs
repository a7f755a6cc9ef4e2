//! Singleton records: our account and identity, the relay token, and the
//! local counters.
//!
//! Must never: store a second account or token beside the first (each is
//! the kind's only slot).

use super::{kind, Slot};
use crate::account::{AccountRecord, TokenRecord};
use crate::history::Counters as CountersRecord;

kind!(
    /// Our identity key pair and account.
    Account = Account, AccountRecord
);
kind!(
    /// The relay session token.
    Token = Token, TokenRecord
);
kind!(
    /// Outbox and history sequence numbers.
    Counters = Counters, CountersRecord
);

/// The account record's slot.
pub(crate) fn account() -> Slot<Account> {
    Slot::singleton()
}

/// The token's slot.
pub(crate) fn token() -> Slot<Token> {
    Slot::singleton()
}

/// The counters' slot.
pub(crate) fn counters() -> Slot<Counters> {
    Slot::singleton()
}
