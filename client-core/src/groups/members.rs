//! A pairwise session with each member a group operation must reach
//! (changes, welcomes and sender keys travel pairwise), made as a 1:1
//! first contact is: a member we have no session with gets one from a
//! freshly claimed prekey bundle of its account, its identity pinned on
//! first use, and a member whose key changed is warned about
//! ([`Event::KeyChanged`]) and skipped until the user decides — never sent
//! to under an identity the user has not accepted.
//!
//! Network first, then the lock (docs/ARCHITECTURE.md): [`Engine::member_bundles`]
//! claims the bundles without the state lock; [`Engine::member_sessions`]
//! runs under it and re-reads each contact and session.
//!
//! A member met first through a group is filed as a contact under its
//! username hint only if the directory gives that name to its account:
//! the hint is written by whoever added the member, and would otherwise
//! name that account in 1:1 chats too (a member whose hint does not
//! check out is *not sent* to, with the reason).
//!
//! Must never: send to a member whose key is `Changed`, start a session
//! from a bundle of another account, file a member under a name the
//! directory does not give it, or under a name another contact holds (a
//! newcomer is raised as in 1:1).

use std::collections::BTreeMap;
use std::sync::Arc;

use umbra_protocol::content::Content;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{AccountId, Username};

use crate::engine::Engine;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{Error, Event};

/// Bundles claimed for members without a session (or why not).
pub(crate) type Bundles = BTreeMap<[u8; 16], Result<VerifiedPreKeyBundle, String>>;

/// The sessions of one operation's members, advanced as it seals, stored
/// together at the end ([`Sessions::store`]).
#[derive(Default)]
pub(crate) struct Sessions {
    ready: BTreeMap<[u8; 16], (ContactRecord, SessionRecord, bool)>,
    /// Members no session could be made with, and why.
    pub(crate) failed: BTreeMap<[u8; 16], String>,
    /// Events to raise after the commit (key changes, name newcomers).
    pub(crate) events: Vec<Event>,
}

impl Sessions {
    /// The contact of a member we can seal to (a first contact's record
    /// is stored only with the sessions, at the end).
    pub(crate) fn contact(&self, member: &AccountId) -> Option<&ContactRecord> {
        self.ready.get(member.as_bytes()).map(|(c, _, _)| c)
    }

    /// Seals `content` to `member` with its session (advancing it).
    pub(crate) fn seal(
        &mut self,
        engine: &Engine,
        member: &AccountId,
        content: Content,
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some((_, record, _)) = self.ready.get_mut(member.as_bytes()) else {
            return Ok(None);
        };
        engine.seal_content(record, content).map(Some)
    }

    /// Adds every advanced session (and every first-contact record) to `txn`.
    pub(crate) async fn store(&mut self, engine: &Engine, txn: &mut Txn) -> Result<(), Error> {
        for (contact, record, fresh) in self.ready.values() {
            engine.sessions.save_for_contact(txn, contact, record)?;
            if *fresh {
                if let Some(event) = engine.names.put_contact(txn, contact).await? {
                    self.events.push(event);
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// The network half: a verified bundle for each of `members` we have no
    /// usable session with (a member whose key changed needs none: it is
    /// skipped under the lock).
    pub(crate) async fn member_bundles(
        self: &Arc<Self>,
        members: &[(AccountId, Username)],
    ) -> Result<Bundles, Error> {
        let mut bundles = Bundles::new();
        let me = self.me().account;
        for (account, name) in members {
            if *account == me {
                continue;
            }
            let known = self.contact_by_account(account.as_bytes()).await?;
            if let Some(contact) = &known {
                if !contact.may_send() || self.usable_session(contact).await?.is_some() {
                    continue;
                }
            }
            // Only a member without a session needs the relay now.
            self.ensure_connected()?;
            if known.is_none() {
                // A first contact through a group: the username is a hint
                // whoever added the member wrote (any admin, or a welcome's
                // adder), so it becomes a contact's name only if the
                // directory gives that name to this account, as a 1:1 first
                // contact's name is resolved (`outbound.rs`).
                match self.resolve(name).await {
                    Ok(found) if found == *account => {}
                    Err(e) if e.is_retryable() => return Err(e),
                    _ => {
                        bundles.insert(
                            *account.as_bytes(),
                            Err(format!(
                                "its username in the group ({name}) is not its name in the \
                                 directory; add it as a contact by its real name first"
                            )),
                        );
                        continue;
                    }
                }
            }
            let bundle = match self.fetch_bundle(*account, name).await {
                Ok(bundle) => Ok(bundle),
                // The connection itself failed: no other member will do better.
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => Err(e.to_string()),
            };
            bundles.insert(*account.as_bytes(), bundle);
        }
        Ok(bundles)
    }

    /// The state half, under the lock: a session for each member (from the
    /// store, or started from its bundle), or why there is none.
    pub(crate) async fn member_sessions(
        &self,
        members: &[(AccountId, Username)],
        bundles: &mut Bundles,
    ) -> Result<Sessions, Error> {
        let mut out = Sessions::default();
        let me = self.me();
        let now = self.clock.now_secs();
        for (account, name) in members {
            if *account == me.account {
                continue;
            }
            let key = *account.as_bytes();
            let existing = self.contact_by_account(&key).await?;
            if let Some(contact) = &existing {
                if !contact.may_send() {
                    out.failed.insert(key, contact.untrusted().to_string());
                    continue;
                }
                if let Some(record) = self.usable_session(contact).await? {
                    out.ready.insert(key, (contact.clone(), record, false));
                    continue;
                }
            }
            let bundle = match bundles.remove(&key) {
                Some(Ok(bundle)) => bundle,
                Some(Err(reason)) => {
                    out.failed.insert(key, reason);
                    continue;
                }
                None => {
                    // The state moved since the bundles were claimed; the
                    // next operation claims one.
                    out.failed
                        .insert(key, "no session yet; try again".to_owned());
                    continue;
                }
            };
            let contact = match existing {
                Some(mut contact) => match contact.observe(bundle.identity()) {
                    Observation::Pinned => contact,
                    Observation::NewlyChanged => {
                        let mut txn = Txn::new();
                        self.names.put_contact(&mut txn, &contact).await?;
                        self.vault.commit(txn).await?;
                        out.events.push(self.key_changed_event(&contact)?);
                        out.failed.insert(key, contact.untrusted().to_string());
                        continue;
                    }
                    Observation::StillChanged => {
                        out.failed.insert(key, contact.untrusted().to_string());
                        continue;
                    }
                },
                None => ContactRecord::first_seen(
                    key,
                    name.as_str().to_owned(),
                    bundle.identity().clone(),
                ),
            };
            let record = self.start_session(&contact, &bundle, *account, now).await?;
            out.ready.insert(key, (contact, record, true));
        }
        Ok(out)
    }
}
