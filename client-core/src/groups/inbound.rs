//! What arrives for a group: sealed group messages (no ratchet layer) and,
//! over a pairwise session, changes, welcomes, sender keys and typing.
//!
//! Everything here runs inside one delivery's store transaction
//! (`crate::inbound`): the caller commits, then acks. A group message is
//! accepted only from a current member whose pinned identity sealed it,
//! under a sender key that member distributed to us; a change only if the
//! group log accepts it (signed by its author, authorised by its parent
//! state, fork choice, §8); a welcome only from the admin it names (and,
//! for a group we left or were removed from, only from an account that was
//! an admin in the last state we know of it; for a group we are in, one
//! whose Add does not connect to our log replaces the log only if its
//! sender is an admin of our state and it is newer than our head). A
//! delivery whose prerequisite may still arrive (the welcome before a
//! change, the sender key before a message) is kept for redelivery, never
//! dropped.
//!
//! Must never: read a message from someone removed from the group, apply
//! a change the log refused, or keep reading a group we were removed from.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use umbra_protocol::content::Content;
use umbra_protocol::group::{
    GroupAction, GroupChange, GroupChangeError, GroupLog, GroupWelcome, HeadMove, LogOutcome,
};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::{AccountId, DeviceId};

use crate::engine::Engine;
use crate::inbound::{Failure, Rejected};
use crate::payload::Payload;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{DecryptFailure, Event, GroupRefusal};

use super::events::{membership_event, restored_event};
use super::key_request;
use super::keys::{Failed, ReceiverKeys};
use super::manager::{Group, Membership};
pub(crate) use super::receipts::receipt_groups;

fn rejected(from: Option<&str>, reason: GroupRefusal) -> Failure {
    Failure::Rejected(Rejected {
        from: from.map(str::to_owned),
        reason: DecryptFailure::Group(reason),
    })
}

fn kept(from: Option<&str>, reason: GroupRefusal) -> Failure {
    Failure::Kept(Rejected {
        from: from.map(str::to_owned),
        reason: DecryptFailure::Group(reason),
    })
}

/// A sealed group message (inner type 0x04) from `inbound`'s sender. One
/// claiming a blocked account that is refused is dropped without an
/// event, which would name the blocked account (crate::blocking).
pub(crate) async fn accept_message(
    engine: &Arc<Engine>,
    inbound: &InboundEnvelope,
    received_at_ms: u64,
    txn: &mut Txn,
) -> Result<Vec<Event>, Failure> {
    let account = *inbound.sender_address().account.as_bytes();
    let blocked = engine.is_blocked(&account).await?;
    match open_message(engine, inbound, received_at_ms, txn, blocked).await {
        Err(Failure::Rejected(_) | Failure::Kept(_)) if blocked => Err(Failure::Blocked),
        other => other,
    }
}

/// [`accept_message`] for a sender whose account is `blocked` or not.
async fn open_message(
    engine: &Arc<Engine>,
    inbound: &InboundEnvelope,
    received_at_ms: u64,
    txn: &mut Txn,
    blocked: bool,
) -> Result<Vec<Event>, Failure> {
    let sender = *inbound.sender_address();
    let Some(contact) = engine.contact_by_account(sender.account.as_bytes()).await? else {
        return Err(kept(None, GroupRefusal::SenderUnknown));
    };
    let from = engine.names.display_name(&contact).await?;
    if !bool::from(contact.pinned.ct_eq(inbound.sender())) {
        return Err(rejected(Some(&from), GroupRefusal::NotPinnedIdentity));
    }
    let Some(message) = inbound.group_message() else {
        return Err(rejected(Some(&from), GroupRefusal::NotGroupMessage));
    };
    let group_id = *message.group_id();
    let Some(group) = engine.groups.get(&group_id).await? else {
        return Err(kept(Some(&from), GroupRefusal::UnknownGroup));
    };
    if group.membership != Membership::Active {
        return Err(rejected(Some(&from), GroupRefusal::GroupLeft));
    }
    let held = super::held::message_key(&group_id, &sender.account, message.as_bytes());
    if !group.state().is_member(&sender.account) {
        if blocked {
            // Not held: no sync is asked for a message that is dropped.
            return Err(Failure::Blocked);
        }
        // Perhaps a member whose Add we missed: held, and a sync asked.
        let (account, refusal) = (&sender.account, GroupRefusal::NotMember);
        return Err(
            super::held::hold_or_refuse(engine, &group, account, held, &from, refusal).await,
        );
    }
    let mut keys = engine
        .groups
        .member_keys(&group_id, &sender.account)
        .await?
        .unwrap_or_default();
    let plain = match keys.decrypt(inbound) {
        Ok(plain) => plain,
        Err(Failed::NoKey) if blocked => {
            // Never ask a blocked member for its key (crate::blocking):
            // the message would be dropped anyway, so acknowledge it.
            tracing::debug!("blocked member's group message without a key dropped");
            return Ok(Vec::new());
        }
        Err(Failed::NoKey) => {
            let asked = (&contact, sender.device);
            return Err(key_request::no_key(engine, &group, asked, message, &from).await);
        }
        Err(Failed::Replay) => return Err(Failure::Duplicate),
        Err(Failed::Bad(reason)) => {
            return Err(rejected(Some(&from), GroupRefusal::Unopenable(reason)))
        }
    };
    let payload =
        Payload::decode(&plain).map_err(|e| rejected(Some(&from), GroupRefusal::Undecodable(e)))?;
    if payload.sender != sender {
        return Err(rejected(Some(&from), GroupRefusal::SenderMismatch));
    }
    engine
        .groups
        .put_member_keys(txn, &group_id, &sender.account, &keys)?;
    engine.groups.held.release(&held);
    if blocked {
        // Decrypted (the member's chain advanced and is stored) and
        // discarded: not shown, no receipt, no sync asked of it
        // (crate::blocking).
        tracing::debug!("blocked member's group message dropped");
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    let (content, head) = match payload.content {
        Content::GroupText {
            id,
            body,
            sent_at_ms,
            head,
            version,
        } => (
            Content::Text {
                id,
                body,
                sent_at_ms,
            },
            Some((head, version)),
        ),
        Content::GroupTextReply {
            id,
            target,
            body,
            sent_at_ms,
            head,
            version,
        } => (
            Content::TextReply {
                id,
                target,
                body,
                sent_at_ms,
            },
            Some((head, version)),
        ),
        other => (other, None),
    };
    // A head our log does not know, at or above our version: the sender
    // has changes we lack (§8.15). One behind us is not asked.
    let ask = head
        .filter(|(head, version)| super::sync::text_shows_more(&group, head, *version))
        .filter(|_| {
            super::sync::should_ask(
                &engine.groups.sync,
                &group,
                &sender.account,
                engine.clock.now_ms(),
            )
        })
        .map(|_| super::sync::request(&group));
    let member = super::about::Member {
        contact: &contact,
        account: sender.account,
        from: &from,
        ask,
    };
    let opened = super::about::accept_opened(engine, txn, &group, member, content, received_at_ms);
    events.extend(opened.await?);
    Ok(events)
}

/// Group content that came over `contact`'s pairwise session, sealed by
/// `identity`. Returns the events to raise; writes go to `txn`, and what
/// we answer the sender over that session to `replies` (sync requests and
/// answers, §8.15), which the caller encrypts with the session this
/// delivery advanced.
pub(crate) async fn accept_content(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    peer: (&ContactRecord, DeviceId),
    identity: &IdentityPublic,
    from: &str,
    content: Content,
    replies: &mut Vec<Content>,
) -> Result<Vec<Event>, Failure> {
    let contact = peer.0;
    let events = accept(engine, txn, peer, identity, from, content, replies).await?;
    // The caller queues `replies` if the contact may be sent to: only then
    // is a request noted as asked (§8.15).
    if contact.may_send() {
        let (sync, now) = (&engine.groups.sync, engine.clock.now_ms());
        super::sync::note_requests(sync, &AccountId::from_bytes(contact.account), replies, now);
    }
    Ok(events)
}

async fn accept(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    (contact, device): (&ContactRecord, DeviceId),
    identity: &IdentityPublic,
    from: &str,
    content: Content,
    replies: &mut Vec<Content>,
) -> Result<Vec<Event>, Failure> {
    let sender = AccountId::from_bytes(contact.account);
    match content {
        Content::GroupControl { change } => {
            let change = GroupChange::from_bytes(&change)
                .map_err(|e| rejected(Some(from), GroupRefusal::MalformedChange(e)))?;
            control(engine, txn, sender, identity, from, change, replies).await
        }
        Content::GroupWelcome { state, change } => {
            let welcome = GroupWelcome::from_parts(&state, &change)
                .map_err(|e| rejected(Some(from), GroupRefusal::MalformedWelcome(e)))?;
            welcome_in(engine, txn, sender, identity, from, welcome, replies).await
        }
        Content::GroupSync {
            group,
            have,
            version,
        } => {
            if let Some(rec) = engine.groups.get(&group).await? {
                // The answer first (empty for a stranger), then the limit:
                // only an answer sent takes an entry of it.
                let me = engine.me().account;
                let answer = super::sync::answer(&rec, &sender, &me, &have, version);
                let now = engine.clock.now_ms();
                if !answer.is_empty() && engine.groups.sync.may_answer(&group, &sender, now) {
                    replies.extend(answer);
                }
            }
            Ok(Vec::new())
        }
        done @ Content::GroupSyncDone { .. } => {
            super::sync::done_in(engine, &sender, &done).await?;
            Ok(Vec::new())
        }
        request @ Content::GroupKeyRequest { .. } => {
            key_request::answer_to(engine, contact, request, replies).await
        }
        Content::SenderKeyDistribution { group, payload } => {
            let Some(rec) = engine.groups.get(&group).await? else {
                return Err(kept(Some(from), GroupRefusal::SenderKeyUnknownGroup));
            };
            if rec.membership != Membership::Active {
                return Err(rejected(Some(from), GroupRefusal::SenderKeyFromNonMember));
            }
            let held = super::held::distribution_key(&group, &sender, &payload);
            if !rec.state().is_member(&sender) {
                // Only a distribution its sender signed is held (§8.15).
                ReceiverKeys::default()
                    .accept(&payload, identity, &group, device)
                    .map_err(|e| rejected(Some(from), GroupRefusal::SenderKeyRefused(e)))?;
                let refusal = GroupRefusal::SenderKeyFromNonMember;
                let failure =
                    super::held::hold_or_refuse(engine, &rec, &sender, held, from, refusal);
                return Err(failure.await);
            }
            let mut keys = engine
                .groups
                .member_keys(&group, &sender)
                .await?
                .unwrap_or_else(ReceiverKeys::default);
            // Each device of the member has its own chain (§8.2): kept
            // under the device whose session carried it.
            keys.accept(&payload, identity, &group, device)
                .map_err(|e| rejected(Some(from), GroupRefusal::SenderKeyRefused(e)))?;
            engine.groups.put_member_keys(txn, &group, &sender, &keys)?;
            engine.groups.held.release(&held);
            Ok(Vec::new())
        }
        Content::GroupTyping { group, started } => {
            let known = engine.groups.get(&group).await?;
            Ok(match known {
                Some(g) if g.membership == Membership::Active && g.state().is_member(&sender) => {
                    vec![Event::GroupTyping {
                        group,
                        from: from.to_owned(),
                        started,
                    }]
                }
                _ => Vec::new(),
            })
        }
        // The pre-key message it came in already made its session the
        // current one (docs/PROTOCOL.md §12.15); there is nothing to show.
        Content::SessionReset => Ok(Vec::new()),
        other => {
            tracing::debug!(kind = other.kind(), "ignoring unsupported content");
            Ok(Vec::new())
        }
    }
}

/// A signed change from `sender` (who may have authored it, or forwards it).
async fn control(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    sender: AccountId,
    identity: &IdentityPublic,
    from: &str,
    change: GroupChange,
    replies: &mut Vec<Content>,
) -> Result<Vec<Event>, Failure> {
    let me = engine.me().account;
    let group_id = *change.group();
    let author_identity = if change.author() == sender {
        identity.clone()
    } else {
        match engine
            .contact_by_account(change.author().as_bytes())
            .await?
        {
            Some(author) => author.pinned,
            None => return Err(rejected(Some(from), GroupRefusal::ChangeByStranger)),
        }
    };
    let Some(mut group) = engine.groups.get(&group_id).await? else {
        if !matches!(change.action(), GroupAction::Create { .. }) {
            // Its welcome (or the Create) may still be on its way.
            return Err(kept(Some(from), GroupRefusal::ChangeUnknownGroup));
        }
        let log = GroupLog::create(change.clone(), &author_identity)
            .map_err(|e| rejected(Some(from), GroupRefusal::CreateRefused(e)))?;
        if !log.state().is_member(&me) {
            return Err(rejected(Some(from), GroupRefusal::NotInNewGroup));
        }
        let group = Group::new(log);
        engine.groups.put(txn, &group)?;
        return Ok(vec![membership_event(&group, &change, from)]);
    };
    // Also after we left or were removed the log follows the changes that
    // reach us: a concurrent change that wins the fork choice may undo our
    // removal (or our Leave), and then we are a member again.
    let was = group.membership;
    let outcome = match group.log.apply(change, &author_identity) {
        Ok(outcome) => outcome,
        // Our queue of changes waiting for their parents is full: this one
        // is valid as far as we can tell, so it is kept (not acknowledged)
        // and comes again, by when its parent may have emptied the queue.
        // Refusing it would lose it, and every change built on it.
        // So is one whose author the log does not know as a member yet: its
        // Add may still be on its way.
        Err(
            e @ (GroupChangeError::PendingFull { .. } | GroupChangeError::PendingUnknownAuthor(_)),
        ) => return Err(kept(Some(from), GroupRefusal::ChangeKept(e))),
        Err(e) => return Err(rejected(Some(from), GroupRefusal::ChangeRefused(e))),
    };
    if matches!(outcome, LogOutcome::Pending { .. })
        && super::sync::should_ask(&engine.groups.sync, &group, &sender, engine.clock.now_ms())
    {
        // Its parent is a change we missed: ask the member that sent it.
        replies.push(super::sync::request(&group));
    }
    let mut events = Vec::new();
    let (mut winner, mut undone_exit) = (None, false);
    if let LogOutcome::Applied(moved) = outcome {
        winner = moved.applied.first().map(GroupChange::author);
        undone_exit = moved.undone.iter().any(|c| removes_or_leaves(c, &me));
        apply_moved(engine, txn, &mut group, &moved, &mut events)?;
        // Items held for a member this brought in are no longer evictable.
        engine.groups.held.confirm(&group_id, group.state());
    }
    if group.membership != Membership::Active {
        if group.state().is_member(&me) {
            // Our removal or Leave was undone by the fork choice (an
            // undone Leave of ours is made again by `reissue_superseded`):
            // the user is told first, then what the winning changes did.
            // Otherwise an Add brought us back: an ordinary change, whose
            // event is already there. Our keys went with the removal
            // either way: our next send makes a fresh one.
            if undone_exit {
                events.insert(0, restored_event(&group, group.membership, winner));
            }
            group.membership = Membership::Active;
        } else if was != Membership::Active {
            // Still out: the group's changes no longer concern the user.
            events.clear();
        }
    }
    engine.groups.put(txn, &group)?;
    Ok(events)
}

/// Whether `change` is a Remove of `me` or our own Leave.
fn removes_or_leaves(change: &GroupChange, me: &AccountId) -> bool {
    match change.action() {
        GroupAction::Remove { accounts } => accounts.contains(me),
        GroupAction::Leave => change.author() == *me,
        _ => false,
    }
}

/// The effects of a head move: keys of removed members dropped, our own
/// removal, our undone changes queued to be made again, events.
fn apply_moved(
    engine: &Engine,
    txn: &mut Txn,
    group: &mut Group,
    moved: &HeadMove,
    events: &mut Vec<Event>,
) -> Result<(), Failure> {
    let me = engine.me().account;
    let id = group.id();
    for undone in &moved.undone {
        if undone.author() == me {
            group
                .superseded
                .push(serde_bytes::ByteBuf::from(undone.as_bytes().to_vec()));
        }
    }
    for change in &moved.applied {
        let by = super::events::name_in(group, &change.author());
        let removed: Vec<AccountId> = match change.action() {
            GroupAction::Remove { accounts } => accounts.clone(),
            GroupAction::Leave => vec![change.author()],
            _ => Vec::new(),
        };
        for account in &removed {
            engine.groups.drop_member_keys(txn, &id, account);
        }
        if removed.contains(&me) && change.author() != me {
            group.membership = Membership::Removed(*change.author().as_bytes());
            let members: Vec<_> = group.state().members().iter().map(|m| m.account).collect();
            engine.groups.drop_all_keys(txn, &id, &members);
            events.push(Event::RemovedFromGroup {
                group: id,
                group_name: group.name(),
                by,
            });
            return Ok(());
        }
        events.push(membership_event(group, change, &by));
    }
    Ok(())
}

/// A welcome: we were added by `sender`.
async fn welcome_in(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    sender: AccountId,
    identity: &IdentityPublic,
    from: &str,
    welcome: GroupWelcome,
    replies: &mut Vec<Content>,
) -> Result<Vec<Event>, Failure> {
    let me = engine.me().account;
    let id = *welcome.state().group();
    if let Some(group) = engine.groups.get(&id).await? {
        if group.membership == Membership::Active {
            if let Some(log) = newer_welcome(&group, &welcome, sender, identity, me) {
                return replace_log(engine, txn, group, log, &welcome, from);
            }
            // Already in it: the welcome's Add is an ordinary change.
            let add = welcome.add().clone();
            return control(engine, txn, sender, identity, from, add, replies).await;
        }
        // A group we left or were removed from: its id is known to every
        // member and ex-member, and a welcome's snapshot is trusted as the
        // adder says it. Only someone who was an admin in the last state
        // we know may bring us back; anyone else could replace the group's
        // history under its id with a snapshot of their own.
        if !group.state().is_admin(&sender) {
            return Err(rejected(Some(from), GroupRefusal::WelcomeFromNonAdmin));
        }
        // Only a re-add after our Leave or removal brings us back: a
        // welcome no newer than the last state we know (which holds our
        // Leave or Remove) is an old one sent again by an adder that has
        // not seen us go (§8.15), and its snapshot would revive us.
        if welcome.state().version() <= group.state().version() {
            return Err(Failure::Duplicate);
        }
    }
    let log = GroupLog::from_welcome(&welcome, sender, identity, me)
        .map_err(|e| rejected(Some(from), GroupRefusal::WelcomeRefused(e)))?;
    let group = Group::new(log);
    engine.groups.put(txn, &group)?;
    Ok(vec![membership_event(&group, welcome.add(), from)])
}

/// For a group we hold as Active: the log `welcome` starts, if it is to
/// replace ours (§8.11). That is when its Add does not connect to our log
/// (it would wait for a parent, or is older than our base: we were added
/// on a branch the fork choice dropped, and the adder made its Add again
/// on the winner, whose changes never reached us, as we were no member of
/// their states), the welcome passes a first welcome's checks, its sender
/// is an admin in our current state, and it is newer than our head.
/// Otherwise the Add is taken as an ordinary change.
fn newer_welcome(
    group: &Group,
    welcome: &GroupWelcome,
    sender: AccountId,
    identity: &IdentityPublic,
    me: AccountId,
) -> Option<GroupLog> {
    // Tried on a copy: the ordinary path applies it for real.
    let mut trial = group.log.clone();
    let connects = match trial.apply(welcome.add().clone(), identity) {
        Ok(LogOutcome::Pending { .. }) => false,
        // Applied, lost the fork choice, or already known.
        Ok(_) => true,
        Err(
            GroupChangeError::Stale { .. }
            | GroupChangeError::TooFarAhead { .. }
            | GroupChangeError::PendingFull { .. }
            | GroupChangeError::PendingUnknownAuthor(_),
        ) => false,
        // Refused on its merits: the ordinary path says why.
        Err(_) => true,
    };
    if connects
        || !group.state().is_admin(&sender)
        || welcome.state().version() <= group.state().version()
    {
        return None;
    }
    GroupLog::from_welcome(welcome, sender, identity, me).ok()
}

/// Replaces `group`'s log with `log`, started from `welcome`. The keys of
/// members the new state lacks are dropped; the others' stay. Our own
/// sender key needs nothing here: before our next send it is replaced if
/// anyone outside the new state holds it (`keys.rs`).
fn replace_log(
    engine: &Engine,
    txn: &mut Txn,
    mut group: Group,
    log: GroupLog,
    welcome: &GroupWelcome,
    from: &str,
) -> Result<Vec<Event>, Failure> {
    let id = group.id();
    for member in group.state().members() {
        if !log.state().is_member(&member.account) {
            engine.groups.drop_member_keys(txn, &id, &member.account);
        }
    }
    tracing::debug!(
        from = group.state().version(),
        to = log.state().version(),
        "group log replaced by a newer welcome whose Add did not connect to it"
    );
    group.log = log;
    engine.groups.put(txn, &group)?;
    Ok(vec![membership_event(&group, welcome.add(), from)])
}
