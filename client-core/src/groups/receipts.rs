//! Pairwise receipts that name our group messages (docs/PROTOCOL.md §8):
//! which group each belongs to, so a receipt for a group message is shown
//! as that group's, not as a 1:1 one.
//!
//! Must never: credit a receipt to a group whose current state does not
//! list its sender (a removed member knows old message ids).

use umbra_protocol::wire::AccountId;

use crate::engine::Engine;
use crate::inbound::Failure;
use crate::{Event, MessageId};

/// Pairwise receipts naming our group messages: the group they belong to,
/// if `sender` is a member of its current state (a removed member, who
/// knows old message ids, cannot claim to have read the group's messages;
/// its receipt stays a 1:1 one).
pub(crate) async fn receipt_groups(
    engine: &Engine,
    sender: &[u8; 16],
    from: &str,
    ids: &[MessageId],
    read: bool,
) -> Result<Vec<Event>, Failure> {
    let sender = AccountId::from_bytes(*sender);
    let mut events = Vec::new();
    for group in engine.groups.all().await? {
        if !group.state().is_member(&sender) {
            continue;
        }
        let mine: Vec<MessageId> = ids
            .iter()
            .filter(|id| group.recent_sent.contains(id))
            .copied()
            .collect();
        if !mine.is_empty() {
            events.push(Event::GroupReceipt {
                group: group.id(),
                from: from.to_owned(),
                ids: mine,
                read,
            });
        }
    }
    Ok(events)
}
