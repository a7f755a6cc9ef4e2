//! Sending to a group: text messages and replies, file pointers
//! (`files/group.rs`), reactions, edits and deletes (§10.6), typing notices, and what a send reports member by
//! member.
//!
//! A group message is encrypted once under our sender key (rotated first
//! if a member was removed since it was made, `keys.rs`) and sealed to
//! each member's pinned identity with no pairwise ratchet layer (sealed
//! inner type 0x04, docs/PROTOCOL.md §8). Its plaintext is the padded
//! client payload (§12.1), as a pairwise message's, so the receiver files
//! it the same way. Members without our current key get it first, over
//! their pairwise session, in the same fan-out. The advanced sender key,
//! the sessions and the fan-out are committed in one transaction before
//! anything leaves: a message key is used once, across restarts.
//!
//! Must never: send with a sender key a removed member holds, seal to a
//! member whose key is `Changed`, or report a member reached whom the
//! relay did not accept the message for.

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::wire::{AccountId, DeviceId, Request};

use crate::about::Reference;
use crate::consts::MAX_GROUP_TYPING_MEMBERS;
use crate::conversation::HistoryEntry;
use crate::engine::Engine;
use crate::failure::CryptoFailure;
use crate::payload::Payload;
use crate::store::Txn;
use crate::{ChangeRefusal, Error, MessageId};

use super::control::{merge_round, recipients_of};
use super::fanout::{FanoutEntry, FanoutItem, FanoutPurpose};
use super::keys::OwnSenderKey;
use super::{GroupFailure, GroupId, GroupSendReport, MemberOutcome, MemberReport};

impl Engine {
    /// Sends `text` to every member of `group`, as a reply quoting
    /// `reply_to` (a message of the group) if given; see the module docs.
    pub(crate) async fn send_group_text(
        self: &Arc<Self>,
        group: &GroupId,
        text: &str,
        reply_to: Option<MessageId>,
    ) -> Result<GroupSendReport, Error> {
        self.check_open()?;
        let (id, sent_at_ms, body) = crate::outbound::new_text(text)?;
        let body = match reply_to {
            Some(target) => crate::about::as_reply(body, target)?,
            None => body,
        };
        let outgoing = Outgoing::Text {
            body,
            text: text.to_owned(),
            reply_to,
        };
        self.send_group(group, id, sent_at_ms, outgoing).await
    }

    /// Sends the pointer of a file already uploaded (`files/group.rs`) to
    /// every member of `group`, and keeps its record and history entry.
    pub(crate) async fn send_group_pointer(
        self: &Arc<Self>,
        group: &GroupId,
        pointer: umbra_protocol::content::FilePointer,
    ) -> Result<GroupSendReport, Error> {
        self.check_open()?;
        let (id, sent_at_ms) = (pointer.id, crate::engine::now_ms());
        self.send_group(group, id, sent_at_ms, Outgoing::File(pointer))
            .await
    }

    /// Sends a disappearing-message timer change (`ExpirationTimer`) to
    /// every member of `group` and applies it to our copy, in the send's
    /// commit (`disappearing/group.rs`).
    pub(crate) async fn send_group_timer(
        self: &Arc<Self>,
        group: &GroupId,
        timer: Content,
    ) -> Result<GroupSendReport, Error> {
        let Content::ExpirationTimer { id, sent_at_ms, .. } = timer else {
            return Err(GroupFailure::Refused("not a timer change".to_owned()).into());
        };
        self.send_group(group, id, sent_at_ms, Outgoing::Timer(timer))
            .await
    }

    /// Sends a reaction, edit or delete to every member of `group` and
    /// applies it to our copy of the group's history (§10.6).
    pub(crate) async fn send_group_reference(
        self: &Arc<Self>,
        group: &GroupId,
        reference: Reference,
    ) -> Result<GroupSendReport, Error> {
        self.check_open()?;
        let (id, sent_at_ms) = (reference.id, reference.sent_at_ms);
        self.send_group(group, id, sent_at_ms, Outgoing::About(reference))
            .await
    }

    /// Sends `reference` past our own rule, as a cheating member could.
    #[cfg(test)]
    pub(crate) async fn send_group_forged(
        self: &Arc<Self>,
        group: &GroupId,
        reference: Reference,
    ) -> Result<GroupSendReport, Error> {
        let (id, sent_at_ms) = (reference.id, reference.sent_at_ms);
        self.send_group(group, id, sent_at_ms, Outgoing::Forged(reference))
            .await
    }

    async fn send_group(
        self: &Arc<Self>,
        group: &GroupId,
        id: MessageId,
        sent_at_ms: u64,
        outgoing: Outgoing,
    ) -> Result<GroupSendReport, Error> {
        let me = self.me();
        // Network first: sessions with members our current key must reach.
        let current = self.groups.require(group).await?;
        current.require_active()?;
        let stored = self.groups.own_key(group).await?;
        let key = OwnSenderKey::for_sending(self.unless_unlisted(stored).await?, current.state())?;
        let mut lacking = Vec::new();
        for member in recipients_of(current.state(), None, &me.account) {
            // §15.3 rule 1: the member's list, at most once per
            // RECHECK_AFTER on a connection, so a device it added since
            // gets our key with this send.
            if let Some(contact) = self.contact_by_account(member.0.as_bytes()).await? {
                if contact.may_send() {
                    self.refresh_member_list(&contact).await?;
                }
            }
            if !self.lacking_devices(&key, &member.0).await?.is_empty() {
                lacking.push(member);
            }
        }
        let mut bundles = self.member_bundles(&lacking).await?;
        let (seq, mut report) = {
            let _guard = self.op_lock.lock().await;
            let mut group_rec = self.groups.require(group).await?;
            group_rec.require_active()?;
            // Our own change is refused as every member would refuse it,
            // before any key moves; a reply must quote a message we hold.
            let changed = outgoing.check(self, group, &me.account).await?;
            let state = group_rec.state().clone();
            let stored = self.groups.own_key(group).await?;
            // Who had the key we held (before a rotation replaces it).
            let reached = super::resend::Reached::before(stored.as_ref());
            let mut key = OwnSenderKey::for_sending(self.unless_unlisted(stored).await?, &state)?;
            key.retain_members(&state);
            let recipients = recipients_of(&state, None, &me.account);
            let mut lacking = Vec::new();
            for member in &recipients {
                if !self.lacking_devices(&key, &member.0).await?.is_empty() {
                    lacking.push(member.clone());
                }
            }
            let mut sessions = self.member_sessions(&lacking, &mut bundles).await?;
            let mut items = Vec::new();
            // Whom this send distributes the key to, noted with the chain
            // so a member that loses it can ask for it again (§8.16).
            let mut given = Vec::new();
            if !lacking.is_empty() {
                let distribution = zeroize::Zeroizing::new(key.distribution(&self.identity)?);
                let mut welcomes = super::resend::Welcomes::new(&group_rec, me.account, reached);
                for (account, username) in &lacking {
                    // Each listed device of the member without our key,
                    // on its own session (§8.14).
                    let devices: Vec<_> = sessions
                        .devices(account)
                        .into_iter()
                        .filter(|d| !key.has(account, *d))
                        .collect();
                    // A member we added that lacks our key may never have
                    // had its welcome (it was not sent: no session then):
                    // it goes again, ahead of the key (§8.15; a member that
                    // had it takes it as a duplicate Add). Not to one whose
                    // own sender key we hold: it had the state to send it;
                    // nor to one given a key made after that Add (resend.rs).
                    let held = self.groups.member_keys(group, account).await?;
                    let proven = held.is_some_and(|k| !k.is_empty());
                    let welcome = (!proven && !devices.is_empty())
                        .then(|| welcomes.for_member(account))
                        .flatten();
                    for &device in &devices {
                        if let Some(welcome) = &welcome {
                            let sealed =
                                sessions.seal_to(self, account, device, welcome.clone())?;
                            if let Some(envelope) = sealed {
                                items.push(item(account, device, username.as_str(), envelope));
                            }
                        }
                        let content = Content::SenderKeyDistribution {
                            group: *group,
                            payload: distribution.to_vec(),
                        };
                        if let Some(envelope) = sessions.seal_to(self, account, device, content)? {
                            let mut carried = item(account, device, username.as_str(), envelope);
                            carried.sender_key_epoch = Some(key.epoch);
                            items.push(carried);
                            key.mark_distributed(account, device);
                            if given.last() != Some(account) {
                                given.push(*account);
                            }
                        }
                    }
                }
                tracing::debug!(snapshots = welcomes.encoded, "welcomes sent again");
            }
            // A text carries our head, so a member behind sees it (§8.15).
            let content = outgoing.content(*group_rec.log.head(), state.version());
            let payload = zeroize::Zeroizing::new(
                Payload {
                    sender: me.address(),
                    sender_username: me.username.clone(),
                    content,
                }
                .encode()?,
            );
            // The chain as it is before it encrypts: its iteration is the
            // message's, noted with the send (§8.16).
            let before = key.sender()?;
            // Padded inside, and refused there if too long, before
            // anything is stored or sent.
            let message = key.encrypt(&payload)?;
            let mut report = GroupSendReport {
                group: *group,
                id,
                members: Vec::new(),
                frame_bytes: 0,
            };
            for (account, username) in &recipients {
                // The listed devices of the member that hold our key.
                let listed = self.devices.held(account).await?;
                let reached: Vec<_> = listed
                    .devices()
                    .iter()
                    .copied()
                    .filter(|d| key.has(account, *d))
                    .collect();
                let identity = match (reached.is_empty(), sessions.contact(account)) {
                    (false, Some(contact)) => Ok(contact.pinned.clone()),
                    (false, None) => self.member_identity(account).await?,
                    (true, _) => Err(sessions
                        .failed
                        .get(account.as_bytes())
                        .cloned()
                        .unwrap_or_else(|| "no pairwise session".to_owned())),
                };
                let outcome = if let Ok(identity) = identity {
                    for device in reached {
                        let envelope = message
                            .seal_to(&self.identity, &me.address(), &identity, &mut OsRng)
                            .map_err(|e| GroupFailure::Refused(e.to_string()))?;
                        items.push(item(account, device, username.as_str(), envelope));
                    }
                    MemberOutcome::Queued
                } else {
                    MemberOutcome::NotSent(identity.err().unwrap_or_default())
                };
                report.members.push(MemberReport {
                    account_id: *account,
                    username: username.as_str().to_owned(),
                    outcome,
                });
            }
            if matches!(outgoing, Outgoing::Text { .. } | Outgoing::File(_)) {
                // Receipts name texts and files only.
                group_rec.note_sent(id);
            }
            let mut txn = Txn::new();
            sessions.store(self, &mut txn).await?;
            self.groups.put_own_key(&mut txn, group, &key)?;
            super::sent_keys::note_sent(self, &mut txn, group, &before, &given).await?;
            self.groups.put(&mut txn, &group_rec)?;
            let mut counters = self.counters().await?;
            match (&outgoing, changed) {
                // Our copy; its status stays Pending: each member's outcome
                // is the report's.
                (Outgoing::Text { text, reply_to, .. }, _) => {
                    let mut entry = HistoryEntry::outgoing(id, text.clone(), sent_at_ms);
                    entry.about.reply_to = *reply_to;
                    let mine = (&me.account, me.username.as_str());
                    self.append_group_history(&mut txn, &mut counters, group, mine, &entry)
                        .await?;
                }
                (Outgoing::File(pointer), _) => {
                    let (group, mine) = (group, *me.account.as_bytes());
                    let outgoing = crate::conversation::Direction::Outgoing;
                    let file =
                        self.store_group_file(&mut txn, group, outgoing, mine, pointer.clone())?;
                    let body = crate::files::summary(&file.name, file.size);
                    let entry = HistoryEntry::outgoing(id, body, sent_at_ms);
                    let mine = (&me.account, me.username.as_str());
                    self.append_group_history(&mut txn, &mut counters, group, mine, &entry)
                        .await?;
                }
                (Outgoing::Timer(timer), _) => {
                    crate::disappearing::group::apply(&self.vault, &mut txn, group, timer).await?;
                }
                (Outgoing::About(_), Some(found)) => {
                    self.replace_group_entry(&mut txn, group, found)?
                }
                _ => {}
            }
            let entry = FanoutEntry {
                id,
                group: *group,
                purpose: FanoutPurpose::Message,
                items,
                queued_at_ms: sent_at_ms,
            };
            let seq = self.queue_fanout(&mut txn, &mut counters, &entry)?;
            self.put_counters(&mut txn, &counters)?;
            // The advanced chain is durable before any envelope leaves.
            self.vault.commit(txn).await?;
            for event in sessions.events.drain(..) {
                self.emit(event);
            }
            (seq, report)
        };
        // The connection starts once the message is durable (offline, it
        // waits in the fan-out queue).
        self.ensure_connected()?;
        let round = self.send_fanout(seq, false).await?;
        merge_round(&mut report, round);
        self.refresh_lists_after_send(group).await;
        Ok(report)
    }

    /// §15.3 rule 1 for a send that began with no connection (a one-shot
    /// `umbra group send`): its lists were not fetched before it (that
    /// would have connected first and taken in what waits, such as our
    /// removal, before the send was decided), so they are fetched now that
    /// the fan-out connected, and a device a member listed since gets our
    /// key with the next send. A list fetched on this connection already
    /// is not asked again. Best effort: a failure leaves the held list.
    async fn refresh_lists_after_send(self: &Arc<Self>, group: &GroupId) {
        let Ok(Some(record)) = self.groups.get(group).await else {
            return;
        };
        for (member, _) in recipients_of(record.state(), None, &self.me().account) {
            let Ok(Some(contact)) = self.contact_by_account(member.as_bytes()).await else {
                continue;
            };
            if !contact.may_send() {
                continue;
            }
            if let Err(e) = self.refresh_member_list(&contact).await {
                tracing::debug!(error = %crate::error::LogSafe(&e), "member list not refreshed");
            }
        }
    }

    /// `stored` (our sender key), unless a device that its account's held
    /// list no longer names has it (removed from the account since it was
    /// given the key): then none, so the send rotates (docs/PROTOCOL.md
    /// §8.12). The lists are the ones the send just refreshed (§15.3 rule
    /// 1), our own account's included should a device of ours hold it.
    async fn unless_unlisted(
        &self,
        stored: Option<OwnSenderKey>,
    ) -> Result<Option<OwnSenderKey>, Error> {
        let Some(key) = stored else {
            return Ok(None);
        };
        let mut lists = std::collections::HashMap::new();
        for account in key.accounts() {
            let held = self.devices.held(&AccountId::from_bytes(account)).await?;
            lists.insert(account, held.devices().to_vec());
        }
        let unlisted = key.held_by_unlisted(|account, device| {
            lists
                .get(account.as_bytes())
                .is_some_and(|devices| devices.contains(&device))
        });
        if unlisted {
            tracing::debug!("a device given our sender key left its account's list; rotating");
            return Ok(None);
        }
        Ok(Some(key))
    }

    /// The devices of `member`'s held list that lack our `key`.
    async fn lacking_devices(
        &self,
        key: &OwnSenderKey,
        member: &AccountId,
    ) -> Result<Vec<DeviceId>, Error> {
        let listed = self.devices.held(member).await?;
        Ok(listed
            .devices()
            .iter()
            .copied()
            .filter(|d| !key.has(member, *d))
            .collect())
    }

    /// The identity we seal to for `member`: its pinned one, unless its
    /// key changed and the user has not decided (then why not).
    async fn member_identity(
        &self,
        member: &AccountId,
    ) -> Result<Result<umbra_protocol::identity::IdentityPublic, String>, Error> {
        Ok(match self.contact_by_account(member.as_bytes()).await? {
            Some(contact) if contact.may_send() => Ok(contact.pinned),
            Some(contact) => Err(contact.untrusted().to_string()),
            None => Err("no contact record".to_owned()),
        })
    }

    /// Tells the group we started or stopped typing: an ephemeral notice
    /// to each listed device of each member we have a session with, for
    /// groups of at most
    /// [`MAX_GROUP_TYPING_MEMBERS`] (beyond that it is skipped: best
    /// effort, and not worth a frame per member).
    pub(crate) async fn send_group_typing(
        self: &Arc<Self>,
        group: &GroupId,
        started: bool,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        if !self.settings().await?.typing {
            // Typing is off (crate::settings): nothing leaves.
            return Ok(());
        }
        let me = self.me();
        let mut notices = Vec::new();
        {
            let _guard = self.op_lock.lock().await;
            let group_rec = self.groups.require(group).await?;
            group_rec.require_active()?;
            if group_rec.state().members().len() > MAX_GROUP_TYPING_MEMBERS {
                return Ok(());
            }
            let mut txn = Txn::new();
            // No typing notice to a blocked member (crate::blocking).
            let blocked = self.blocked_accounts().await?;
            for (account, _) in recipients_of(group_rec.state(), None, &me.account) {
                if blocked.contains(account.as_bytes()) {
                    continue;
                }
                let Some(contact) = self.contact_by_account(account.as_bytes()).await? else {
                    continue;
                };
                if !contact.may_send() {
                    continue;
                }
                // Every device of the member's held list that we have a
                // session with (§8.14), as a 1:1 notice goes (§15.3).
                let mut records = self.listed_sessions(&contact).await?;
                if records.is_empty() {
                    continue;
                }
                let payload = zeroize::Zeroizing::new(
                    Payload {
                        sender: me.address(),
                        sender_username: me.username.clone(),
                        content: Content::GroupTyping {
                            group: *group,
                            started,
                        },
                    }
                    .encode()?,
                );
                for record in &mut records {
                    let envelope = record
                        .current_mut()
                        .seal_ephemeral(&self.identity, &payload, self.clock.now_ms(), &mut OsRng)
                        .map_err(|e| Error::Crypto(CryptoFailure::Encrypt(e)))?;
                    self.sessions.save_for_contact(&mut txn, &contact, record)?;
                    notices.push((*record.current().remote_address(), envelope));
                }
            }
            self.vault.commit(txn).await?;
        }
        for (to, payload) in notices {
            // Best effort: an offline member simply misses it.
            let _ = self.request(Request::Ephemeral { to, payload }).await;
        }
        Ok(())
    }
}

fn item(account: &AccountId, device: DeviceId, username: &str, envelope: Vec<u8>) -> FanoutItem {
    FanoutItem {
        to_account: *account.as_bytes(),
        to_device: device.0,
        to_username: username.to_owned(),
        envelope,
        sender_key_epoch: None,
    }
}

/// What a group send carries.
enum Outgoing {
    /// A text or reply: `body` is its `Text` or `TextReply` content.
    Text {
        body: Content,
        text: String,
        reply_to: Option<MessageId>,
    },
    /// A file's pointer (the blob already uploaded, `files/group.rs`).
    File(umbra_protocol::content::FilePointer),
    /// A disappearing-message timer change (`ExpirationTimer`).
    Timer(Content),
    /// A reaction, edit or delete.
    About(Reference),
    /// One sent without our own rule (tests: a cheating member).
    #[cfg(test)]
    Forged(Reference),
}

impl Outgoing {
    /// Our own rule on our own change: the entry it changes (`None`: a
    /// text, or a change that changes nothing), or the refusal as an error.
    async fn check(
        &self,
        engine: &Engine,
        group: &GroupId,
        me: &AccountId,
    ) -> Result<Option<super::history::FoundGroupEntry>, Error> {
        let (target, found) = match self {
            Outgoing::Text {
                reply_to: Some(target),
                ..
            } => {
                if super::about::knows(engine, group, target).await? {
                    return Ok(None);
                }
                (*target, Err(ChangeRefusal::UnknownTarget))
            }
            Outgoing::Text { .. } | Outgoing::File(_) | Outgoing::Timer(_) => return Ok(None),
            #[cfg(test)]
            Outgoing::Forged(_) => return Ok(None),
            Outgoing::About(reference) => (
                reference.target,
                super::about::applied(engine, group, me, reference, None).await?,
            ),
        };
        found.map_err(|reason| Error::ChangeRefused { target, reason })
    }

    /// The plaintext of the sealed group message, at our `head`/`version`.
    fn content(&self, head: umbra_protocol::group::ChangeHash, version: u64) -> Content {
        match self {
            Outgoing::Text { body, .. } => match body.clone() {
                Content::Text {
                    id,
                    body,
                    sent_at_ms,
                } => Content::GroupText {
                    id,
                    body,
                    sent_at_ms,
                    head,
                    version,
                },
                Content::TextReply {
                    id,
                    target,
                    body,
                    sent_at_ms,
                } => Content::GroupTextReply {
                    id,
                    target,
                    body,
                    sent_at_ms,
                    head,
                    version,
                },
                other => other,
            },
            // No head: a file is sent as the 1:1 pointer is (§8.4).
            Outgoing::File(pointer) => Content::FilePointer(pointer.clone()),
            Outgoing::Timer(timer) => timer.clone(),
            Outgoing::About(reference) => reference.content(),
            #[cfg(test)]
            Outgoing::Forged(reference) => reference.content(),
        }
    }
}
