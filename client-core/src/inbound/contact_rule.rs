//! Which content from an account that is not a contact yet makes it one.
//!
//! A stranger becomes a contact only by what the user sees (a text, a
//! file) or by a group that names them; upkeep (a session reset, typing,
//! a receipt, ...) would otherwise let anyone plant a contact here, and so
//! in the account backup (docs/PROTOCOL.md §12.15).
//!
//! Must never: let content the user is not shown create a contact.

use umbra_protocol::content::Content;

/// Whether `content` from an account that is no contact yet makes it one
/// (a message or a reply, or a group change, welcome, sender key or group
/// message, which the group layer checks against the group's members). Not
/// a reaction, edit or delete: they name a message of a conversation that
/// a stranger does not have.
pub(super) fn makes_contact(content: &Content) -> bool {
    matches!(
        content,
        Content::Text { .. }
            | Content::TextReply { .. }
            | Content::FilePointer(_)
            | Content::GroupControl { .. }
            | Content::GroupWelcome { .. }
            | Content::SenderKeyDistribution { .. }
            | Content::GroupText { .. }
            | Content::GroupTextReply { .. }
            | Content::GroupSync { .. }
    )
}
