//! Names are labels; contacts are accounts. This module keeps what each
//! username the user knows *means* (a binding to one account), and decides
//! what happens when the directory or a sender says that name now belongs to
//! another account: a freed username taken over by a stranger, or a contact
//! who renamed away and whose old name someone else registered.
//!
//! The rule (docs/PROTOCOL.md §12.13): a binding changes only when the user
//! says so. A different account claiming a bound name becomes the binding's
//! *newcomer*, [`Event::NameReassigned`] is raised once, both contacts stay
//! under their own accounts, sending by that name is refused
//! ([`Error::NameReassigned`]) and the newcomer is shown as `name#xxxxxxxx`
//! (its account id's first 8 hex digits) until the user picks one by the
//! safety number they compared ([`Engine::decide_name`]). A rename keeps the
//! old name bound to the renamed contact, so whoever registers it next is a
//! newcomer too.
//!
//! Must never: repoint a bound name without the user's choice, show two
//! contacts under the same label, or let a verified contact be replaced by
//! whoever holds its name now.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Username};

use crate::contact::{Contact, NameCandidate, NameState, TrustLevel};
use crate::engine::Engine;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, Event, PeerRef, SafetyNumber, UnknownPeer};

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

impl Engine {
    /// The binding of `name`, if the user knows it.
    pub(crate) async fn name_binding(&self, name: &str) -> Result<Option<NameBinding>, Error> {
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

    fn put_binding(&self, txn: &mut Txn, name: &str, binding: &NameBinding) -> Result<(), Error> {
        self.vault
            .save(txn, records::contact::binding(&self.vault, name), binding)?;
        Ok(())
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
    async fn claim_name(
        &self,
        txn: &mut Txn,
        name: &str,
        account: [u8; 16],
    ) -> Result<Option<Event>, Error> {
        match self.name_binding(name).await? {
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
        Ok(match self.name_binding(&contact.username).await? {
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
                let binding = self
                    .name_binding(name.as_str())
                    .await?
                    .ok_or_else(unknown)?;
                self.contact_by_account(&binding.account)
                    .await?
                    .ok_or_else(unknown)
            }
            PeerRef::Account(account) => self
                .contact_by_account(account.as_bytes())
                .await?
                .ok_or_else(unknown),
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

    /// The contact to send to by `name`, `None` if the name is new to the
    /// user. Refuses while the name is contested, and asks the directory
    /// about a name the contact it means no longer uses (a rename). Call
    /// without the op lock held: it may ask the relay, and recording a
    /// newcomer takes the lock itself (tokio's mutex is not re-entrant).
    pub(crate) async fn contact_for_sending(
        self: &Arc<Self>,
        name: &Username,
    ) -> Result<Option<ContactRecord>, Error> {
        let Some(binding) = self.name_binding(name.as_str()).await? else {
            return Ok(None);
        };
        if binding.newcomer.is_some() {
            return Err(Error::NameReassigned {
                username: name.clone(),
            });
        }
        let Some(contact) = self.contact_by_account(&binding.account).await? else {
            return Ok(None);
        };
        if contact.username == name.as_str() {
            return Ok(Some(contact));
        }
        // A former name of the contact (they renamed): who holds it now?
        match self.resolve_published(name).await {
            Ok((account, _)) if account.as_bytes() == &contact.account => Ok(Some(contact)),
            Ok((account, identity)) => {
                self.note_newcomer(name, account, identity).await?;
                Err(Error::NameReassigned {
                    username: name.clone(),
                })
            }
            Err(Error::UnknownUser {
                reason: UnknownPeer::NotOnRelay,
                ..
            }) => Err(Error::unknown(
                name.clone(),
                UnknownPeer::Renamed {
                    now: contact.name()?,
                },
            )),
            Err(e) => Err(e),
        }
    }

    /// Asks the directory which account holds `name` and which identity it
    /// publishes.
    pub(crate) async fn resolve_published(
        self: &Arc<Self>,
        name: &Username,
    ) -> Result<(AccountId, Option<IdentityPublic>), Error> {
        use umbra_protocol::wire::{ErrorCode, Request, Response};
        match self
            .request(Request::ResolveUsername {
                username: name.clone(),
            })
            .await
        {
            Ok(Response::Resolved {
                account, identity, ..
            }) => Ok((
                account,
                identity.and_then(|bytes| IdentityPublic::from_bytes(&bytes).ok()),
            )),
            Ok(other) => Err(crate::error::unexpected("Resolved", &other)),
            Err(Error::Relay {
                code: ErrorCode::UnknownUsername | ErrorCode::UnknownRecipient,
                ..
            }) => Err(Error::unknown(name.clone(), UnknownPeer::NotOnRelay)),
            Err(e) => Err(e),
        }
    }

    /// The directory says `account` (publishing `identity`) holds `name`,
    /// which the user knows as another account: record it as the newcomer
    /// (pinning its published identity, so the user can compare safety
    /// numbers) and raise [`Event::NameReassigned`] once. Call without the
    /// op lock held: this takes it (tokio's mutex is not re-entrant).
    pub(crate) async fn note_newcomer(
        &self,
        name: &Username,
        account: AccountId,
        identity: Option<IdentityPublic>,
    ) -> Result<(), Error> {
        // Called after a directory answer, never with the lock held.
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        let known = self.contact_by_account(account.as_bytes()).await?;
        let event = match (known, identity) {
            (None, Some(identity)) => {
                let contact = ContactRecord::first_seen(
                    *account.as_bytes(),
                    name.as_str().to_owned(),
                    identity,
                );
                self.put_contact(&mut txn, &contact).await?
            }
            _ => {
                self.claim_name(&mut txn, name.as_str(), *account.as_bytes())
                    .await?
            }
        };
        self.vault.commit(txn).await?;
        if let Some(event) = event {
            self.emit(event);
        }
        Ok(())
    }

    fn safety_number_of(&self, contact: &ContactRecord) -> SafetyNumber {
        SafetyNumber::compute(
            self.me().account.as_bytes(),
            &self.identity.public(),
            &contact.account,
            contact.current_identity(),
        )
    }

    /// The safety number the user compares for `contact` (its pending
    /// identity if its key changed).
    pub(crate) async fn safety_number_for(&self, peer: &PeerRef) -> Result<SafetyNumber, Error> {
        Ok(self.safety_number_of(&self.contact_for_peer(peer).await?))
    }

    /// The accounts `name` could mean: the bound one first, then the
    /// newcomer (if any and its identity is known).
    pub(crate) async fn name_candidates(
        &self,
        peer: &PeerRef,
    ) -> Result<Vec<NameCandidate>, Error> {
        let known = self.contact_for_peer(peer).await?;
        let mut out = vec![NameCandidate {
            safety_number: self.safety_number_of(&known),
            contact: self.describe(&known).await?,
        }];
        if let PeerRef::Name(name) = peer {
            let newcomer = match self.name_binding(name.as_str()).await? {
                Some(NameBinding {
                    newcomer: Some(account),
                    ..
                }) => self.contact_by_account(&account).await?,
                _ => None,
            };
            if let Some(newcomer) = newcomer {
                out.push(NameCandidate {
                    safety_number: self.safety_number_of(&newcomer),
                    contact: self.describe(&newcomer).await?,
                });
            }
        }
        Ok(out)
    }

    /// The user compared `compared` and decided: `name` means the account
    /// whose current safety number it is (the one it meant, or its
    /// newcomer), and that account's key is accepted (`verify = false`:
    /// a changed key becomes `Unverified`, other trust stays) or verified.
    /// Checked under the op lock, so a key or claim that changed since the
    /// user looked is never accepted unseen.
    pub(crate) async fn decide_name(
        &self,
        name: &Username,
        compared: &SafetyNumber,
        verify: bool,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let unknown = || Error::unknown(name.clone(), UnknownPeer::NotAContact);
        let binding = self
            .name_binding(name.as_str())
            .await?
            .ok_or_else(unknown)?;
        let known = self
            .contact_by_account(&binding.account)
            .await?
            .ok_or_else(unknown)?;
        let newcomer = match binding.newcomer {
            Some(account) => self.contact_by_account(&account).await?,
            None => None,
        };
        let mut chosen = if self.safety_number_of(&known).matches(compared) {
            known
        } else if let Some(newcomer) =
            newcomer.filter(|n| self.safety_number_of(n).matches(compared))
        {
            newcomer
        } else {
            return Err(Error::SafetyNumberMismatch {
                username: name.clone(),
            });
        };
        if verify {
            chosen.mark_verified();
        } else if chosen.trust == TrustLevel::Changed {
            chosen.accept_change();
        }
        let mut txn = Txn::new();
        self.vault.save(
            &mut txn,
            records::contact::slot(&self.vault, &chosen.account),
            &chosen,
        )?;
        self.put_binding(
            &mut txn,
            name.as_str(),
            &NameBinding {
                account: chosen.account,
                newcomer: None,
            },
        )?;
        self.vault.commit(txn).await?;
        self.identity_checks.forget(&chosen.account);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_labels_carry_the_account_prefix() {
        let mut account = [0u8; 16];
        account[0] = 0x5e;
        account[1] = 0x6f;
        assert_eq!(distinct_label("bob", &account), "bob#5e6f0000");
    }
}
