//! Why a key-transparency check failed (docs/PROTOCOL.md §16.9, §16.10).
//!
//! Must never: carry a secret; every field is public directory data.

use umbra_protocol::wire::kt::KtError;
use umbra_protocol::wire::AccountId;

/// A key-transparency check this client made failed: the relay's directory
/// answer was not usable, or contradicts what this client verified before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KtFailure {
    /// No directory or VRF key is pinned: the configuration gave none and
    /// the store holds none (§16.9 item 1), so nothing can be checked.
    #[error("no key-transparency keys are pinned for this relay (set them in the configuration)")]
    NotPinned,
    /// The configuration names other keys than the ones this store pinned.
    #[error(
        "the configured key-transparency keys differ from the ones this store pinned; \
         the pinned ones are kept"
    )]
    PinMismatch,
    /// A head or proof from the relay was refused (§16.10's names).
    #[error("the relay's key-transparency answer was refused: {0}")]
    Proof(#[source] KtError),
    /// The relay's newest head does not extend the one this client
    /// remembers: it signed two histories (`Fork`) or went back (`Rollback`).
    #[error("the relay's directory history contradicts the head this client verified: {0}")]
    Inconsistent(#[source] KtError),
    /// The directory proves another value for `account` than the identity
    /// and device list the relay served (§16.3).
    #[error(
        "the relay served keys for account {account} that its key directory does not hold; \
         they were refused"
    )]
    ValueMismatch {
        /// Whose keys.
        account: AccountId,
    },
    /// The relay resolved `username` to `account`, but its key directory
    /// says the name is not that account's (§16.1).
    #[error(
        "the relay says {username} is account {account}, but its key directory does not; \
         the answer was refused"
    )]
    NameMismatch {
        /// The name asked about.
        username: String,
        /// The account the relay answered.
        account: AccountId,
    },
    /// The directory holds no version of `account` yet, or an older one
    /// than what was served: the keys may have just changed, so the check
    /// is to be tried again after an epoch.
    #[error(
        "the key directory does not hold account {account}'s served keys yet; retry after the \
         next epoch"
    )]
    NotYetPublished {
        /// Whose keys.
        account: AccountId,
    },
}
