//! The client API for messages about messages (docs/PROTOCOL.md §10.6):
//! replies, reactions, edits and deletes for everyone, 1:1 and in groups.
//!
//! Each applies the change to our own history by the rule every receiver
//! uses, then sends it; one the rule refuses is
//! [`Error::ChangeRefused`] and nothing is sent.
//!
//! Must never: send what our own history refuses, or apply what was not
//! queued to be sent (both happen in one transaction).

use umbra_protocol::wire::Username;

use super::{new_reference, Change};
use crate::groups::{GroupId, GroupSendReport};
use crate::{Client, Error, MessageId};

/// Replies, reactions, edits and deletes for everyone.
impl Client {
    /// Sends `text` to `to` as a reply quoting `target`, a message of that
    /// conversation (ours or theirs). Returns the reply's id.
    pub async fn send_reply(
        &self,
        to: &Username,
        target: &MessageId,
        text: &str,
    ) -> Result<MessageId, Error> {
        self.inner.send_text_reply(to, text, Some(*target)).await
    }

    /// Adds our `emoji` reaction to `target`, a message of the conversation
    /// with `to` (either side's, not deleted), or with `remove` takes it
    /// back. Adding one we hold, or removing one we do not, sends it all
    /// the same and changes nothing. Returns the reaction's id.
    pub async fn react(
        &self,
        to: &Username,
        target: &MessageId,
        emoji: &str,
        remove: bool,
    ) -> Result<MessageId, Error> {
        let reference = new_reference(*target, react(emoji, remove))?;
        self.inner.send_reference(to, reference).await
    }

    /// Replaces the text of our message `target` to `to` with `text`: a
    /// text of ours, not deleted, sent at most 24 hours ago. Returns the
    /// edit's id.
    pub async fn edit(
        &self,
        to: &Username,
        target: &MessageId,
        text: &str,
    ) -> Result<MessageId, Error> {
        let change = Change::Edit {
            body: text.to_owned(),
        };
        let reference = new_reference(*target, change)?;
        self.inner.send_reference(to, reference).await
    }

    /// Deletes our message `target` to `to` for everyone: its text is
    /// erased from our store and theirs; a placeholder stays. A text of
    /// ours sent at most 24 hours ago. Returns the delete's id.
    pub async fn delete_for_everyone(
        &self,
        to: &Username,
        target: &MessageId,
    ) -> Result<MessageId, Error> {
        let reference = new_reference(*target, Change::Delete)?;
        self.inner.send_reference(to, reference).await
    }

    /// [`Client::send_reply`] in a group: `target` is a message of the group.
    pub async fn send_group_reply(
        &self,
        group: &GroupId,
        target: &MessageId,
        text: &str,
    ) -> Result<GroupSendReport, Error> {
        self.inner.send_group_text(group, text, Some(*target)).await
    }

    /// [`Client::react`] in a group: any message of the group.
    pub async fn react_in_group(
        &self,
        group: &GroupId,
        target: &MessageId,
        emoji: &str,
        remove: bool,
    ) -> Result<GroupSendReport, Error> {
        let reference = new_reference(*target, react(emoji, remove))?;
        self.inner.send_group_reference(group, reference).await
    }

    /// [`Client::edit`] in a group: only a message we wrote.
    pub async fn edit_in_group(
        &self,
        group: &GroupId,
        target: &MessageId,
        text: &str,
    ) -> Result<GroupSendReport, Error> {
        let change = Change::Edit {
            body: text.to_owned(),
        };
        let reference = new_reference(*target, change)?;
        self.inner.send_group_reference(group, reference).await
    }

    /// [`Client::delete_for_everyone`] in a group: only a message we wrote.
    pub async fn delete_in_group_for_everyone(
        &self,
        group: &GroupId,
        target: &MessageId,
    ) -> Result<GroupSendReport, Error> {
        let reference = new_reference(*target, Change::Delete)?;
        self.inner.send_group_reference(group, reference).await
    }
}

fn react(emoji: &str, remove: bool) -> Change {
    Change::React {
        emoji: emoji.to_owned(),
        remove,
    }
}
