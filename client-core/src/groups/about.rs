//! Texts, replies and messages about messages in a group (docs/PROTOCOL.md
//! §10.6): a group text or reply becomes an entry of the group's history;
//! a reaction, edit or delete is applied to the group message it names by
//! the rule in `crate::about`, or refused with an event. The same lookup
//! and rule serve our own sends (`send.rs`), so we apply ours as every
//! member does.
//!
//! Only a current member's sealed group message reaches here (checked in
//! `inbound.rs` before it is opened), so a reaction comes from a member
//! only. A replayed copy is refused before it is opened, by the sender-key
//! chain (a message key opens once, §8); a group message is never sent
//! again under another key, so no copy of a reference arrives twice.
//!
//! Must never: honour an edit or delete from anyone but the author of the
//! message it names (the entry's recorded `from_account`), or reach into
//! another group's or conversation's history.

use std::sync::Arc;

use umbra_protocol::content::Content;
use umbra_protocol::wire::AccountId;

use crate::about::{self, Change, Reference, Target};
use crate::conversation::HistoryEntry;
use crate::engine::Engine;
use crate::inbound::Failure;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{ChangeRefusal, Error, Event, MessageId};

use super::history::FoundGroupEntry;
use super::manager::Group;
use super::GroupId;

/// The member a sealed group message came from.
pub(crate) struct Member<'a> {
    pub(crate) contact: &'a ContactRecord,
    pub(crate) account: AccountId,
    /// As shown.
    pub(crate) from: &'a str,
    /// A sync request to send the member with a text's receipt (§8.15).
    pub(crate) ask: Option<Content>,
}

/// The content of a group message that opened, from `member`: a text or
/// reply, the group's disappearing timer (`disappearing/group.rs`), a file
/// (`files/group.rs`), or a reaction, edit or delete; anything else is
/// acknowledged and not shown (§12.14).
pub(crate) async fn accept_opened(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    group: &Group,
    member: Member<'_>,
    content: Content,
    received_at_ms: u64,
) -> Result<Vec<Event>, Failure> {
    match content {
        text @ (Content::Text { .. } | Content::TextReply { .. }) => {
            accept_text(engine, txn, group, member, text, received_at_ms).await
        }
        timer @ Content::ExpirationTimer { .. } => {
            let from = member.from;
            Ok(crate::disappearing::group::accept(engine, txn, group, from, timer).await?)
        }
        Content::FilePointer(pointer) => {
            crate::files::accept_group(engine, txn, group, member, pointer, received_at_ms).await
        }
        other => match crate::about::Reference::of(&other) {
            Some(reference) => accept_reference(engine, txn, group, member, reference).await,
            None => {
                tracing::debug!(kind = other.kind(), "group content not shown");
                Ok(Vec::new())
            }
        },
    }
}

/// A `Text` (from a `GroupText`) or `TextReply` (from a `GroupTextReply`):
/// stored in the group's history, a delivery receipt and `ask` (a sync
/// request, if the text showed a head we lack) queued pairwise to the
/// sender. Other content: nothing.
pub(crate) async fn accept_text(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    group: &Group,
    member: Member<'_>,
    content: Content,
    received_at_ms: u64,
) -> Result<Vec<Event>, Failure> {
    let Some((id, body, sent_at_ms, reply_to)) = crate::about::text_parts(content) else {
        return Ok(Vec::new());
    };
    let group_id = group.id();
    let mut counters = engine.counters().await?;
    // A reply is stored whether or not its target is known here (§10.6).
    let entry = HistoryEntry::incoming(id, body.clone(), sent_at_ms, received_at_ms, reply_to);
    let from = (&member.account, member.from);
    engine
        .append_group_history(txn, &mut counters, &group_id, from, &entry)
        .await?;
    // A delivery receipt goes pairwise to the sender, as in 1:1.
    let mut replies = vec![Content::DeliveryReceipt { ids: vec![id] }];
    replies.extend(member.ask);
    super::sync::receipt(engine, txn, &mut counters, member.contact, replies).await?;
    engine.put_counters(txn, &counters)?;
    Ok(vec![Event::GroupMessage {
        group: group_id,
        group_name: group.name(),
        from: member.from.to_owned(),
        from_account: member.account,
        id,
        body,
        sent_at_ms,
        received_at_ms,
        reply_to,
        file: None,
    }])
}

/// A reaction, edit or delete from `member`: applied to the group message
/// it names, or refused (an event either way; none for a change that
/// changes nothing).
pub(crate) async fn accept_reference(
    engine: &Engine,
    txn: &mut Txn,
    group: &Group,
    member: Member<'_>,
    reference: Reference,
) -> Result<Vec<Event>, Failure> {
    let group_id = group.id();
    // The delivery's transaction indexes the group if it is not yet, so a
    // flood of references scans its history at most once.
    let found = applied(engine, &group_id, &member.account, &reference, Some(txn)).await?;
    let event = match found {
        Err(reason) => Event::MessageChangeRefused {
            group: Some(group_id),
            from: member.from.to_owned(),
            id: reference.id,
            target: reference.target,
            reason,
        },
        Ok(None) => return Ok(Vec::new()),
        Ok(Some(found)) => {
            engine.replace_group_entry(txn, &group_id, found)?;
            Event::MessageChanged {
                group: Some(group_id),
                from: member.from.to_owned(),
                from_account: member.account,
                id: reference.id,
                target: reference.target,
                change: reference.event_change(),
            }
        }
    };
    Ok(vec![event])
}

/// `reference` from `sender` applied to the message of `group` it names:
/// the changed entry to store, `None` if it changes nothing, or why it is
/// refused. Nothing is written but, with `build`, the group's message
/// index if it has none yet (`history_index.rs`).
pub(crate) async fn applied(
    engine: &Engine,
    group: &GroupId,
    sender: &AccountId,
    reference: &Reference,
    build: Option<&mut Txn>,
) -> Result<Result<Option<FoundGroupEntry>, ChangeRefusal>, Error> {
    let found = engine
        .group_entries_with_id(group, &reference.target, build)
        .await?;
    let react = matches!(reference.change, Change::React { .. });
    // An edit or delete names one of the sender's own messages: another
    // author's message with that id (ids are unique per sender only) is
    // the target only if the sender has none, and is then refused. A
    // reaction names the oldest: a member who reuses an id after seeing it
    // cannot take the original's reactions.
    let mut found = found;
    let at = match found.iter().position(|f| f.from_account == *sender) {
        Some(own) if !react => own,
        _ => 0,
    };
    if found.is_empty() {
        return Ok(Err(ChangeRefusal::UnknownTarget));
    }
    let mut target = found.swap_remove(at);
    let by_sender = target.from_account == *sender;
    // Groups carry texts only (no file messages yet).
    let rule = Target {
        entry: &mut target.entry,
        by_sender,
        is_text: true,
    };
    Ok(match about::apply(rule, sender, reference) {
        Err(reason) => Err(reason),
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(target)),
    })
}

/// Whether `group` holds a message with id `id` (a reply's target).
pub(crate) async fn knows(engine: &Engine, group: &GroupId, id: &MessageId) -> Result<bool, Error> {
    Ok(!engine
        .group_entries_with_id(group, id, None)
        .await?
        .is_empty())
}
