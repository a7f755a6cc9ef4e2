//! Contact records by account, and what each username means to the user.
//!
//! Must never: key a contact by its username (names change hands; accounts
//! do not), or write the legacy name index (it is only read).

use super::{kind, Slot};
use crate::name_book::NameBinding;
use crate::store::Vault;
use crate::trust::ContactRecord;

kind!(
    /// A contact: pinned identity and trust.
    Contacts = Contact, ContactRecord
);
kind!(
    /// Username → account and newcomer.
    Bindings = NameBinding, NameBinding
);
kind!(
    /// The username → account index of stores written before bindings.
    LegacyNames = ContactName, [u8; 16]
);

/// The slot of `account`'s contact (HMAC of the account id).
pub(crate) fn slot(vault: &Vault, account: &[u8; 16]) -> Slot<Contacts> {
    Slot::named(vault, account)
}

/// The slot of `name`'s binding (HMAC of the username).
pub(crate) fn binding(vault: &Vault, name: &str) -> Slot<Bindings> {
    Slot::named(vault, name.as_bytes())
}

/// The slot of `name` in the legacy index.
pub(crate) fn legacy_name(vault: &Vault, name: &str) -> Slot<LegacyNames> {
    Slot::named(vault, name.as_bytes())
}
