//! A pairwise session with each device of each member a group operation
//! must reach (changes, welcomes and sender keys travel pairwise, to every
//! device of the member's held list, docs/PROTOCOL.md §8.14, §15.3), made
//! as a 1:1 first contact is: a member we have no session with gets one from a
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
use std::time::Instant;

use umbra_protocol::content::Content;
use umbra_protocol::device_list::HeldDeviceList;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{AccountId, Address, DeviceId, Username};

use crate::engine::Engine;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{Error, Event, UnknownPeer};

/// Bundles claimed for the devices of members without a session (or why
/// none could be).
pub(crate) type Bundles = BTreeMap<[u8; 16], Result<Vec<(DeviceId, VerifiedPreKeyBundle)>, String>>;

/// The sessions of one operation's members, one per device of each
/// member's held list that has one, advanced as it seals, stored together
/// at the end ([`Sessions::store`]).
#[derive(Default)]
pub(crate) struct Sessions {
    ready: BTreeMap<[u8; 16], (ContactRecord, Vec<SessionRecord>, bool)>,
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

    /// The devices of `member` we have a session with, in device order.
    pub(crate) fn devices(&self, member: &AccountId) -> Vec<DeviceId> {
        self.ready
            .get(member.as_bytes())
            .map(|(_, records, _)| records.iter().map(device_of).collect())
            .unwrap_or_default()
    }

    /// Seals `content` to every device of `member` we have a session with
    /// (advancing each), in device order.
    pub(crate) fn seal(
        &mut self,
        engine: &Engine,
        member: &AccountId,
        content: Content,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>, Error> {
        let Some((_, records, _)) = self.ready.get_mut(member.as_bytes()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(records.len());
        for record in records.iter_mut() {
            let device = device_of(record);
            out.push((device, engine.seal_content(record, content.clone())?));
        }
        Ok(out)
    }

    /// Seals `content` to one device of `member`, if we have a session
    /// with it.
    pub(crate) fn seal_to(
        &mut self,
        engine: &Engine,
        member: &AccountId,
        device: DeviceId,
        content: Content,
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some((_, records, _)) = self.ready.get_mut(member.as_bytes()) else {
            return Ok(None);
        };
        match records.iter_mut().find(|r| device_of(r) == device) {
            Some(record) => engine.seal_content(record, content).map(Some),
            None => Ok(None),
        }
    }

    /// Adds every advanced session (and every first-contact record) to `txn`.
    pub(crate) async fn store(&mut self, engine: &Engine, txn: &mut Txn) -> Result<(), Error> {
        for (contact, records, fresh) in self.ready.values() {
            for record in records {
                engine.sessions.save_for_contact(txn, contact, record)?;
            }
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
    /// Whether a connection to the relay is up now.
    fn is_connected(&self) -> bool {
        *self.conn_state.borrow() == crate::ConnectionState::Connected
    }
}

fn device_of(record: &SessionRecord) -> DeviceId {
    record.current().remote_address().device
}

impl Engine {
    /// The network half: verified bundles for the devices of each of
    /// `members` that we have no usable session with (a member whose key
    /// changed needs none: it is skipped under the lock). A known member's
    /// device list is fetched first (docs/PROTOCOL.md §15.3 rule 1), at
    /// most once per [`RECHECK_AFTER`](crate::identity_checks::RECHECK_AFTER)
    /// on a connection; a first contact is written to on its device 1 (the
    /// account's implicit list) until it is a contact whose list we verify.
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
            let missing = match &known {
                Some(contact) => {
                    if !contact.may_send() {
                        continue;
                    }
                    self.refresh_member_list(contact).await?;
                    let missing = self.sessionless_devices(contact).await?;
                    if missing.is_empty() {
                        continue;
                    }
                    missing
                }
                None => vec![DeviceId::PRIMARY],
            };
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
            let verified = match &known {
                Some(contact) => matches!(
                    self.held_devices(contact).await?,
                    HeldDeviceList::Verified(_)
                ),
                None => false,
            };
            let mut got = Vec::new();
            let mut first_refusal = None;
            for device in missing {
                let fetched = if verified {
                    self.fetch_device_bundle(*account, device, name).await
                } else {
                    // Device 1 of the implicit list: as before devices.
                    self.fetch_bundle(*account, name).await
                };
                match fetched {
                    Ok(bundle) => got.push((device, bundle)),
                    // The connection itself failed: no other member will do better.
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(
                        e @ Error::UnknownUser {
                            reason: UnknownPeer::NoPublishedKeys | UnknownPeer::NotOnRelay,
                            ..
                        },
                    ) if verified => {
                        // A listed device without keys, or one the relay
                        // no longer has: skipped for this operation.
                        tracing::debug!(device = device.0, "member device skipped");
                        first_refusal.get_or_insert(e.to_string());
                    }
                    Err(e) => {
                        first_refusal.get_or_insert(e.to_string());
                    }
                }
            }
            let entry = match first_refusal {
                Some(reason) if got.is_empty() => Err(reason),
                _ => Ok(got),
            };
            bundles.insert(*account.as_bytes(), entry);
        }
        Ok(bundles)
    }

    /// §15.3 rule 1 for a group member: its list fetched under its pinned
    /// identity unless fetched on this connection within `RECHECK_AFTER`.
    /// A fetch that could not be made writes on the held list; a list the
    /// relay served wrongly fails the operation (relay misbehaviour).
    pub(crate) async fn refresh_member_list(
        self: &Arc<Self>,
        contact: &ContactRecord,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let checks = &self.groups.member_lists;
        // Only on a connection we hold: a group operation made offline
        // must not connect (and take in what waits, such as our own
        // removal) before it is decided.
        if checks.is_fresh(&contact.account, now) || !self.is_connected() {
            return Ok(());
        }
        let started = checks.start(now);
        let account = AccountId::from_bytes(contact.account);
        self.list_for_sending(account, &contact.pinned).await?;
        checks.record(contact.account, started);
        Ok(())
    }

    /// The state half, under the lock: a session for each listed device of
    /// each member (from the store, or started from its bundle), or why
    /// there is none.
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
            let mut records = Vec::new();
            if let Some(contact) = &existing {
                if !contact.may_send() {
                    out.failed.insert(key, contact.untrusted().to_string());
                    continue;
                }
                records = self.usable_sessions(contact).await?;
            }
            let claimed = match bundles.remove(&key) {
                Some(Ok(claimed)) => claimed,
                Some(Err(reason)) if records.is_empty() => {
                    out.failed.insert(key, reason);
                    continue;
                }
                Some(Err(_)) => Vec::new(),
                None if records.is_empty() => {
                    // The state moved since the bundles were claimed; the
                    // next operation claims one.
                    out.failed
                        .insert(key, "no session yet; try again".to_owned());
                    continue;
                }
                None => Vec::new(),
            };
            let mut contact = match existing {
                Some(contact) => contact,
                None => match claimed.first() {
                    Some((_, bundle)) => ContactRecord::first_seen(
                        key,
                        name.as_str().to_owned(),
                        bundle.identity().clone(),
                    ),
                    None => {
                        out.failed
                            .insert(key, "no session yet; try again".to_owned());
                        continue;
                    }
                },
            };
            let fresh = records.is_empty() && self.contact_by_account(&key).await?.is_none();
            let mut changed = false;
            for (device, bundle) in claimed {
                if records.iter().any(|r| device_of(r) == device) {
                    continue;
                }
                match contact.observe(bundle.identity()) {
                    Observation::Pinned => {}
                    Observation::NewlyChanged => {
                        let mut txn = Txn::new();
                        self.names.put_contact(&mut txn, &contact).await?;
                        self.vault.commit(txn).await?;
                        out.events.push(self.key_changed_event(&contact)?);
                        changed = true;
                        break;
                    }
                    Observation::StillChanged => {
                        changed = true;
                        break;
                    }
                }
                let to = Address {
                    account: *account,
                    device,
                };
                records.push(self.start_session_with(&contact, &bundle, to, now).await?);
            }
            if changed {
                // Never sent to under an identity the user has not accepted.
                out.failed.insert(key, contact.untrusted().to_string());
                continue;
            }
            if records.is_empty() {
                out.failed
                    .insert(key, "no session yet; try again".to_owned());
                continue;
            }
            records.sort_by_key(|r| device_of(r).0);
            out.ready.insert(key, (contact, records, fresh));
        }
        Ok(out)
    }
}
