//! Group messages stored while no interface showed them (a `send` or a
//! daemon was connected when they arrived, or a `receive` stopped before
//! it printed them): `receive` prints them first, as it does 1:1 ones, and
//! marks them reported only after printing.
//!
//! Must never print one twice in a run (one that this run's events carry
//! is printed from its event) or mark one reported before it was printed.

use std::collections::HashSet;

use umbra_client_core::{Event, GroupId, MessageId, UnreportedGroupMessage};

use super::events::reference;
use super::view::GroupSummary;
use crate::output::{time_from_unix_ms, Record};

/// The stored group messages that this run's events do not carry.
pub(crate) fn earlier<'a>(
    unreported: &'a [UnreportedGroupMessage],
    events: &[Event],
) -> Vec<&'a UnreportedGroupMessage> {
    not_in(unreported, |m| (m.group, m.id), events)
}

/// The items whose (group, message id) no group message event carries.
fn not_in<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> (GroupId, MessageId),
    events: &[Event],
) -> Vec<&'a T> {
    let in_this_run: HashSet<(GroupId, MessageId)> = events
        .iter()
        .filter_map(|event| match event {
            Event::GroupMessage { group, id, .. } => Some((*group, *id)),
            _ => None,
        })
        .collect();
    items
        .iter()
        .filter(|item| !in_this_run.contains(&key(item)))
        .collect()
}

/// The `message` record of a stored group message.
pub(crate) fn record(message: &UnreportedGroupMessage, groups: &[GroupSummary]) -> Record {
    Record::Message {
        from: message.from.clone(),
        id: message.id.to_hex(),
        sent_at: time_from_unix_ms(message.sent_at_ms),
        received_at: time_from_unix_ms(message.received_at_ms),
        body: message.body.clone(),
        group: Some(reference(groups, &message.group, &message.group_name)),
        file: message.file.as_ref().map(crate::output::FileRef::from),
        reply_to: message.reply_to.map(|id| id.to_hex()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_client_core::AccountId;

    fn arrived(group: u8, id: u8) -> Event {
        Event::GroupMessage {
            group: GroupId([group; 32]),
            group_name: "family".into(),
            from: "bob".into(),
            from_account: AccountId::from_bytes([9; 16]),
            id: MessageId([id; 16]),
            body: "now".into(),
            sent_at_ms: 1,
            received_at_ms: 2,
            reply_to: None,
            file: None,
        }
    }

    #[test]
    fn a_stored_group_message_this_run_carries_is_printed_once() {
        let stored = [
            (GroupId([1; 32]), MessageId([1; 16])),
            (GroupId([1; 32]), MessageId([2; 16])),
            // The same message id in another group is another message.
            (GroupId([2; 32]), MessageId([2; 16])),
        ];
        let key = |item: &(GroupId, MessageId)| *item;
        let left = not_in(&stored, key, &[arrived(1, 2), Event::QueueEmpty]);
        assert_eq!(left, vec![&stored[0], &stored[2]]);
        assert_eq!(not_in(&stored, key, &[]).len(), 3);
    }
}
