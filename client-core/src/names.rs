//! Names are labels; contacts are accounts. This module keeps what each
//! username the user knows *means* (a binding to one account), and decides
//! what happens when the directory or a sender says that name now belongs to
//! another account: a freed username taken over by a stranger, or a contact
//! who renamed away and whose old name someone else registered.
//!
//! The rule (docs/PROTOCOL.md §12.13): a binding changes only when the user
//! says so. A different account claiming a bound name becomes the binding's
//! *newcomer*, [`Event::NameReassigned`](crate::Event::NameReassigned) is raised once, both contacts stay
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
//!
//! The state itself (bindings, contacts, labels) is owned by the
//! [`NameBook`](crate::name_book::NameBook) manager; this file is the
//! engine's side of names: the parts that ask the relay, take the state
//! lock or raise events around it.

use std::sync::Arc;

use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Username};

use crate::contact::{NameCandidate, TrustLevel};
use crate::engine::Engine;
use crate::name_book::NameBinding;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, PeerRef, SafetyNumber, UnknownPeer};

impl Engine {
    /// The contact to send to by `name`, `None` if the name is new to the
    /// user. Refuses while the name is contested, and asks the directory
    /// about a name the contact it means no longer uses (a rename). Call
    /// without the op lock held: it may ask the relay, and recording a
    /// newcomer takes the lock itself (tokio's mutex is not re-entrant).
    pub(crate) async fn contact_for_sending(
        self: &Arc<Self>,
        name: &Username,
    ) -> Result<Option<ContactRecord>, Error> {
        let Some(binding) = self.names.binding(name.as_str()).await? else {
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
        // Whatever the name's state, nothing goes to a blocked account.
        self.refuse_if_blocked(&contact.account, name).await?;
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
    /// numbers) and raise [`Event::NameReassigned`](crate::Event::NameReassigned) once. Call without the
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
                self.names.put_contact(&mut txn, &contact).await?
            }
            _ => {
                self.names
                    .claim_name(&mut txn, name.as_str(), *account.as_bytes())
                    .await?
            }
        };
        self.vault.commit(txn).await?;
        if let Some(event) = event {
            self.emit(event);
        }
        Ok(())
    }

    /// [`Event::KeyChanged`](crate::Event::KeyChanged) for `contact`,
    /// whose key just changed: its safety number is the new key's.
    pub(crate) fn key_changed_event(&self, contact: &ContactRecord) -> Result<crate::Event, Error> {
        Ok(crate::Event::KeyChanged {
            username: contact.name()?,
            account: AccountId::from_bytes(contact.account),
            safety_number: self.safety_number_of(contact),
        })
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
        Ok(self.safety_number_of(&self.names.contact_for_peer(peer).await?))
    }

    /// The accounts `name` could mean: the bound one first, then the
    /// newcomer (if any and its identity is known).
    pub(crate) async fn name_candidates(
        &self,
        peer: &PeerRef,
    ) -> Result<Vec<NameCandidate>, Error> {
        let known = self.names.contact_for_peer(peer).await?;
        let mut out = vec![NameCandidate {
            safety_number: self.safety_number_of(&known),
            contact: self.names.describe(&known).await?,
        }];
        if let PeerRef::Name(name) = peer {
            let newcomer = match self.names.binding(name.as_str()).await? {
                Some(NameBinding {
                    newcomer: Some(account),
                    ..
                }) => self.contact_by_account(&account).await?,
                _ => None,
            };
            if let Some(newcomer) = newcomer {
                out.push(NameCandidate {
                    safety_number: self.safety_number_of(&newcomer),
                    contact: self.names.describe(&newcomer).await?,
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
            .names
            .binding(name.as_str())
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
        self.names.put_chosen(&mut txn, name.as_str(), &chosen)?;
        self.vault.commit(txn).await?;
        self.identity_checks.forget(&chosen.account);
        Ok(())
    }
}
