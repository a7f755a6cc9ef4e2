//! The name book: what each username the user knows *means* (a binding to
//! one account, and the newcomer claiming it, if any), the contacts stored
//! by account, and how each contact is shown and looked up. A manager type
//! owning its part of the state (the store's `Contact` and `NameBinding`
//! records) behind the engine, in the shape of matrix-sdk-crypto's
//! `IdentityManager` under `OlmMachine`: it reads and adds writes to a
//! transaction, and never talks to the relay, takes the state lock or emits
//! events itself — the engine (`names.rs`) does that around it.
//!
//! Must never: repoint a bound name (only `put_chosen`, which the engine's
//! `decide_name` calls on the user's choice, writes a binding that drops a
//! newcomer), show two contacts under the same label, or ask the network.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::{AccountId, Username};

use crate::contact::{Contact, NameState};
use crate::records::{self, Prefix};
use crate::store::{Txn, Vault};
use crate::trust::ContactRecord;
use crate::{Error, Event, PeerRef, UnknownPeer};

/// The user's contacts and what their names mean (see the module docs).
pub(crate) struct NameBook {
    vault: Arc<Vault>,
}

/// What a username means to the user (kind `NameBinding`, slot = HMAC of
/// the username).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameBinding {
    /// The account the user knows by this name.
    pub(crate) account: [u8; 16],
    /// Another account that now holds or claims the name, awaiting the
    /// user's decision.
    pub(crate) newcomer: Option<[u8; 16]>,
}

/// `name#xxxxxxxx`: the label of a contact the name does not mean
/// ([`PeerRef::Label`] parses it back).
fn distinct_label(username: &str, account: &[u8; 16]) -> String {
    format!(
        "{username}#{}",
        hex::encode(&account[..crate::peer::LABEL_PREFIX_BYTES])
    )
}

impl NameBook {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self { vault }
    }

    /// The contact of `account`, if it is one.
    pub(crate) async fn contact(&self, account: &[u8; 16]) -> Result<Option<ContactRecord>, Error> {
        Ok(self
            .vault
            .load(&records::contact::slot(&self.vault, account))
            .await?)
    }

    /// Every contact, in slot order.
    pub(crate) async fn all(&self) -> Result<Vec<ContactRecord>, Error> {
        Ok(self
            .vault
            .load_all(&Prefix::<records::contact::Contacts>::all())
            .await?
            .into_iter()
            .map(|(_, contact)| contact)
            .collect())
    }

    /// The binding of `name`, if the user knows it.
    pub(crate) async fn binding(&self, name: &str) -> Result<Option<NameBinding>, Error> {
        if let Some(binding) = self
            .vault
            .load(&records::contact::binding(&self.vault, name))
            .await?
        {
            return Ok(Some(binding));
        }
        // Stores written before bindings existed kept a plain name index.
        let legacy: Option<[u8; 16]> = self
            .vault
            .load(&records::contact::legacy_name(&self.vault, name))
            .await?;
        Ok(legacy.map(|account| NameBinding {
            account,
            newcomer: None,
        }))
    }

    pub(crate) fn put_binding(
        &self,
        txn: &mut Txn,
        name: &str,
        binding: &NameBinding,
    ) -> Result<(), Error> {
        self.vault
            .save(txn, records::contact::binding(&self.vault, name), binding)?;
        Ok(())
    }

    /// Adds to `txn` the user's choice of `chosen` for `name`: the contact,
    /// and the name bound to it with no newcomer. The only write that
    /// repoints a bound name; the engine's `decide_name` makes it, and only
    /// for the account whose safety number the user compared.
    pub(crate) fn put_chosen(
        &self,
        txn: &mut Txn,
        name: &str,
        chosen: &ContactRecord,
    ) -> Result<(), Error> {
        self.vault.save(
            txn,
            records::contact::slot(&self.vault, &chosen.account),
            chosen,
        )?;
        let binding = NameBinding {
            account: chosen.account,
            newcomer: None,
        };
        self.put_binding(txn, name, &binding)
    }

    /// Adds a contact write to `txn`, binding its username to it if the name
    /// is free. If the name already means another account, the binding is
    /// left alone and this contact becomes its newcomer: the returned
    /// [`Event::NameReassigned`] (only the first time) must be raised after
    /// the commit.
    pub(crate) async fn put_contact(
        &self,
        txn: &mut Txn,
        contact: &ContactRecord,
    ) -> Result<Option<Event>, Error> {
        self.vault.save(
            txn,
            records::contact::slot(&self.vault, &contact.account),
            contact,
        )?;
        self.claim_name(txn, &contact.username, contact.account)
            .await
    }

    /// `account` holds or claims `name`: bind it if free, else record the
    /// account as the binding's newcomer.
    pub(crate) async fn claim_name(
        &self,
        txn: &mut Txn,
        name: &str,
        account: [u8; 16],
    ) -> Result<Option<Event>, Error> {
        match self.binding(name).await? {
            None => {
                self.put_binding(
                    txn,
                    name,
                    &NameBinding {
                        account,
                        newcomer: None,
                    },
                )?;
                Ok(None)
            }
            Some(binding) if binding.account == account || binding.newcomer == Some(account) => {
                Ok(None)
            }
            Some(mut binding) => {
                binding.newcomer = Some(account);
                self.put_binding(txn, name, &binding)?;
                Ok(Some(Event::NameReassigned {
                    username: Username::parse_canonical(name)?,
                    known: AccountId::from_bytes(binding.account),
                    newcomer: AccountId::from_bytes(account),
                }))
            }
        }
    }

    /// What `contact`'s username means to the user right now.
    pub(crate) async fn name_state(&self, contact: &ContactRecord) -> Result<NameState, Error> {
        Ok(match self.binding(&contact.username).await? {
            // Not bound yet: a first contact before its commit.
            None => NameState::Current,
            Some(b) if b.account == contact.account && b.newcomer.is_some() => NameState::Contested,
            Some(b) if b.account == contact.account => NameState::Current,
            Some(_) => NameState::OtherAccount,
        })
    }

    /// How `contact` is shown: its username, or `name#xxxxxxxx` when the
    /// name means another account.
    pub(crate) async fn display_name(&self, contact: &ContactRecord) -> Result<String, Error> {
        Ok(match self.name_state(contact).await? {
            NameState::OtherAccount => distinct_label(&contact.username, &contact.account),
            NameState::Current | NameState::Contested => contact.username.clone(),
        })
    }

    /// The public view of a contact.
    pub(crate) async fn describe(&self, contact: &ContactRecord) -> Result<Contact, Error> {
        let name_state = self.name_state(contact).await?;
        Ok(Contact {
            username: Username::parse_canonical(&contact.username)?,
            display_name: match name_state {
                NameState::OtherAccount => distinct_label(&contact.username, &contact.account),
                _ => contact.username.clone(),
            },
            account_id: AccountId::from_bytes(contact.account),
            trust: contact.trust,
            name_state,
        })
    }

    /// The contact `peer` names for reading (history, safety number): a
    /// username means its bound account; `name#xxxxxxxx` names the contact
    /// of that name whose account id starts so; an account id, that
    /// contact.
    pub(crate) async fn contact_for_peer(&self, peer: &PeerRef) -> Result<ContactRecord, Error> {
        let unknown = || Error::unknown(peer.clone(), UnknownPeer::NotAContact);
        match peer {
            PeerRef::Name(name) => {
                let binding = self.binding(name.as_str()).await?.ok_or_else(unknown)?;
                self.contact(&binding.account).await?.ok_or_else(unknown)
            }
            PeerRef::Account(account) => {
                self.contact(account.as_bytes()).await?.ok_or_else(unknown)
            }
            _ => {
                for (_, contact) in self
                    .vault
                    .load_all(&Prefix::<records::contact::Contacts>::all())
                    .await?
                {
                    if peer.names_exactly(&contact.username, &contact.account) {
                        return Ok(contact);
                    }
                }
                Err(unknown())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The manager on its own, over a memory store: no engine, no relay.

    use rand::rngs::OsRng;
    use umbra_protocol::identity::IdentityKeyPair;

    use super::*;

    async fn book() -> NameBook {
        let vault = Vault::for_tests().await;
        NameBook::new(vault)
    }

    fn contact(name: &str) -> ContactRecord {
        let account = *AccountId::random(&mut OsRng).as_bytes();
        let identity = IdentityKeyPair::generate(&mut OsRng).public();
        ContactRecord::first_seen(account, name.into(), identity)
    }

    async fn put(book: &NameBook, contact: &ContactRecord) -> Option<Event> {
        let mut txn = Txn::new();
        let event = book.put_contact(&mut txn, contact).await.expect("put");
        book.vault.commit(txn).await.expect("commit");
        event
    }

    #[tokio::test]
    async fn a_newcomer_on_a_bound_name_never_takes_it_over() {
        let book = book().await;
        let (known, stranger) = (contact("bob"), contact("bob"));
        assert_eq!(put(&book, &known).await, None);
        let event = put(&book, &stranger).await;
        assert_eq!(
            event,
            Some(Event::NameReassigned {
                username: Username::parse("bob").expect("valid name"),
                known: AccountId::from_bytes(known.account),
                newcomer: AccountId::from_bytes(stranger.account),
            })
        );
        // Raised once, not again for the same newcomer.
        assert_eq!(put(&book, &stranger).await, None);
        let bob = PeerRef::Name(Username::parse("bob").expect("valid name"));
        let found = book.contact_for_peer(&bob).await.expect("bob");
        assert_eq!(found.account, known.account, "the name still means bob");
        assert_eq!(book.name_state(&known).await.unwrap(), NameState::Contested);
        assert_eq!(
            book.name_state(&stranger).await.unwrap(),
            NameState::OtherAccount
        );
        let label = book.display_name(&stranger).await.expect("label");
        assert_eq!(label, distinct_label("bob", &stranger.account));
        let peer: PeerRef = label.parse().expect("a label parses back");
        let found = book.contact_for_peer(&peer).await.expect("by label");
        assert_eq!(found.account, stranger.account);
    }

    #[tokio::test]
    async fn only_the_users_choice_repoints_a_name_and_clears_its_newcomer() {
        let book = book().await;
        let (known, stranger) = (contact("bob"), contact("bob"));
        put(&book, &known).await;
        put(&book, &stranger).await;
        assert_eq!(book.all().await.unwrap().len(), 2, "both are kept");
        let mut txn = Txn::new();
        book.put_chosen(&mut txn, "bob", &stranger).unwrap();
        book.vault.commit(txn).await.unwrap();
        let bob = PeerRef::Name(Username::parse("bob").expect("valid name"));
        let found = book.contact_for_peer(&bob).await.expect("bob");
        assert_eq!(found.account, stranger.account, "the chosen account");
        assert_eq!(
            book.name_state(&stranger).await.unwrap(),
            NameState::Current
        );
        assert_eq!(
            book.name_state(&known).await.unwrap(),
            NameState::OtherAccount
        );
        // The old contact claiming its name again is a newcomer now.
        let event = put(&book, &known).await;
        assert!(matches!(event, Some(Event::NameReassigned { .. })));
    }

    #[test]
    fn distinct_labels_carry_the_account_prefix() {
        let mut account = [0u8; 16];
        account[0] = 0x5e;
        account[1] = 0x6f;
        assert_eq!(distinct_label("bob", &account), "bob#5e6f0000");
    }
}
