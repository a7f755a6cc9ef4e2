//! Trust on first use: what a contact's identity key is pinned to, and
//! what happens when a different key shows up.
//!
//! The first identity seen for an account is pinned (`Unverified`). The same
//! identity again changes nothing. A different identity does not replace the
//! pinned one: it is parked as `pending`, the contact becomes `Changed`, and
//! the caller raises [`Event::KeyChanged`](crate::Event::KeyChanged) once.
//! Sending is refused while `Changed`. Only the user moves a contact out of
//! `Changed`: accepting (pending becomes pinned, `Unverified`) or verifying
//! (pending becomes pinned, `Verified`).
//!
//! Must never: compare identities with a short-circuiting comparison, or
//! unpin a key without an explicit user decision.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Username};

use crate::contact::TrustLevel;
use crate::Error;

/// One contact as stored (kind `Contact`, slot = HMAC of the account id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    pub(crate) account: [u8; 16],
    pub(crate) username: String,
    pub(crate) pinned: IdentityPublic,
    pub(crate) trust: TrustLevel,
    /// The different identity seen while `Changed`.
    pub(crate) pending: Option<IdentityPublic>,
}

/// What observing an identity meant for a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observation {
    /// The pinned identity: all is well.
    Pinned,
    /// A different identity, seen for the first time: raise `KeyChanged`.
    NewlyChanged,
    /// A different identity we already warned about; still awaiting the user.
    StillChanged,
}

fn same(a: &IdentityPublic, b: &IdentityPublic) -> bool {
    a.ct_eq(b).into()
}

impl ContactRecord {
    /// A contact pinned to its first-seen identity.
    pub(crate) fn first_seen(
        account: [u8; 16],
        username: String,
        identity: IdentityPublic,
    ) -> Self {
        Self {
            account,
            username,
            pinned: identity,
            trust: TrustLevel::Unverified,
            pending: None,
        }
    }

    /// Records that `identity` was presented for this contact.
    pub(crate) fn observe(&mut self, identity: &IdentityPublic) -> Observation {
        if same(&self.pinned, identity) {
            return Observation::Pinned;
        }
        if let Some(pending) = &self.pending {
            if same(pending, identity) {
                return Observation::StillChanged;
            }
        }
        self.pending = Some(identity.clone());
        self.trust = TrustLevel::Changed;
        Observation::NewlyChanged
    }

    /// The username, typed (stored in canonical form; one that is not
    /// fails as an invalid username).
    pub(crate) fn name(&self) -> Result<Username, Error> {
        Ok(Username::parse_canonical(&self.username)?)
    }

    /// The refusal of a send to this contact while its key changed.
    pub(crate) fn untrusted(&self) -> Error {
        match self.name() {
            Ok(username) => Error::UntrustedKey {
                username,
                account: AccountId::from_bytes(self.account),
            },
            Err(e) => e,
        }
    }

    /// Whether sending to this contact is allowed.
    pub(crate) fn may_send(&self) -> bool {
        self.trust != TrustLevel::Changed
    }

    /// The identity to compute a safety number with: the new one if a change
    /// is pending (that is the one the user must verify).
    pub(crate) fn current_identity(&self) -> &IdentityPublic {
        self.pending.as_ref().unwrap_or(&self.pinned)
    }

    /// The user accepted the changed key without verifying it.
    pub(crate) fn accept_change(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.pinned = pending;
        }
        self.trust = TrustLevel::Unverified;
    }

    /// The user verified the current key out of band.
    pub(crate) fn mark_verified(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.pinned = pending;
        }
        self.trust = TrustLevel::Verified;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use umbra_protocol::identity::IdentityKeyPair;

    fn identity(seed: u64) -> IdentityPublic {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        IdentityKeyPair::generate(&mut rng).public()
    }

    #[test]
    fn same_key_stays_trusted_and_a_new_key_blocks_until_accepted() {
        let (a, b) = (identity(1), identity(2));
        let mut c = ContactRecord::first_seen([1; 16], "bob".into(), a.clone());
        assert_eq!(c.observe(&a), Observation::Pinned);
        assert!(c.may_send());
        assert_eq!(c.observe(&b), Observation::NewlyChanged);
        assert!(!c.may_send());
        assert_eq!(c.trust, TrustLevel::Changed);
        assert_eq!(
            c.observe(&b),
            Observation::StillChanged,
            "warn once per new key"
        );
        assert_eq!(c.current_identity(), &b);
        c.accept_change();
        assert!(c.may_send());
        assert_eq!(c.trust, TrustLevel::Unverified);
        assert_eq!(c.observe(&b), Observation::Pinned);
        assert_eq!(
            c.observe(&a),
            Observation::NewlyChanged,
            "the old key is now foreign"
        );
    }

    #[test]
    fn verifying_a_changed_key_pins_it_as_verified() {
        let (a, b) = (identity(3), identity(4));
        let mut c = ContactRecord::first_seen([2; 16], "carol".into(), a);
        c.observe(&b);
        c.mark_verified();
        assert_eq!(c.trust, TrustLevel::Verified);
        assert!(c.may_send());
        assert_eq!(c.observe(&b), Observation::Pinned);
    }
}
