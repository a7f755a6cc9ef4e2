//! Group conversations on the chat screen: a group is a conversation whose
//! key is `group:` and its id, with a [`GroupPanel`] (members, admins,
//! whether we are still in it); its incoming messages carry their sender,
//! and membership changes appear inline as [`Direction::Change`] lines.
//!
//! It must never treat a group as a contact or the other way round (their
//! keys cannot collide: usernames have no `:`), never let a message leave
//! for a group we left or were removed from, and never hold a group or
//! member name except as [`SafeText`].

use time::OffsetDateTime;

use super::{Action, ChatState, Direction};
use crate::sanitize::SafeText;

/// What a group conversation shows besides its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPanel {
    /// The group id, 64 hex digits.
    pub id: String,
    /// Admins first, then by name.
    pub members: Vec<GroupMemberLine>,
    /// False once we left or were removed: read-only.
    pub active: bool,
    /// Members typing now, in the order they started (ephemeral: cleared
    /// by their message or their stop).
    pub typing: Vec<SafeText>,
    /// Whether any member may rename the group, not only its admins (its
    /// policy, fixed when it was created).
    pub members_may_rename: bool,
}

/// One member as the header lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMemberLine {
    pub name: SafeText,
    pub admin: bool,
    pub me: bool,
}

/// One member as the event loop hands it over (untrusted name).
pub struct MemberInput<'a> {
    pub name: &'a str,
    pub admin: bool,
    pub me: bool,
}

/// The conversation key of the group `id`.
pub fn group_key(id: &str) -> String {
    format!("group:{id}")
}

/// The group id in a conversation key, if it is a group's.
pub fn group_id_of(key: &str) -> Option<&str> {
    key.strip_prefix("group:")
}

impl ChatState {
    /// Adds or updates a group: its name as shown (`display_name`, already
    /// told apart from same-named groups), members and whether we are in it.
    pub fn set_group(
        &mut self,
        id: &str,
        display_name: &str,
        members: &[MemberInput<'_>],
        active: bool,
    ) {
        let mut lines: Vec<GroupMemberLine> = members
            .iter()
            .map(|m| GroupMemberLine {
                name: SafeText::line(m.name),
                admin: m.admin,
                me: m.me,
            })
            .collect();
        lines.sort_by(|a, b| {
            b.admin
                .cmp(&a.admin)
                .then_with(|| a.name.as_str().cmp(b.name.as_str()))
        });
        let key = group_key(id);
        let conversation = self.conversation_mut(&key);
        conversation.display = SafeText::line(display_name);
        // A refresh keeps who is typing, but not anyone no longer a member,
        // and the policy (set apart, by `set_group_policy`).
        let previous = conversation.group.take();
        let members_may_rename = previous.as_ref().is_some_and(|g| g.members_may_rename);
        let typing = previous
            .map(|g| g.typing)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| active && lines.iter().any(|m| m.name == *t && !m.me))
            .collect();
        conversation.group = Some(GroupPanel {
            id: id.to_owned(),
            members: lines,
            active,
            typing,
            members_may_rename,
        });
        self.sort();
        if self.selected.is_none() {
            self.selected = Some(key);
        }
    }

    /// Records group `id`'s policy: whether any member may rename it.
    /// Nothing for a group not set yet.
    pub fn set_group_policy(&mut self, id: &str, members_may_rename: bool) {
        let key = group_key(id);
        if let Some(panel) = self
            .conversations
            .iter_mut()
            .find(|c| c.username == key)
            .and_then(|c| c.group.as_mut())
        {
            panel.members_may_rename = members_may_rename;
        }
    }

    /// A message from `from` in the group `id`. Returns read receipts to
    /// send when the group is open.
    pub fn receive_group_message(
        &mut self,
        group: &str,
        from: &str,
        id: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Option<Action> {
        let sender = SafeText::line(from);
        if let Some(panel) = self.group_panel_mut(group) {
            panel.typing.retain(|t| *t != sender);
        }
        self.receive_in(&group_key(group), Some(sender), id, body, at)
    }

    /// A member of the group `group` started or stopped typing. Ignored
    /// for a group the screen does not know, or is out of.
    pub fn group_typing(&mut self, group: &str, from: &str, started: bool) {
        let Some(panel) = self.group_panel_mut(group) else {
            return;
        };
        let name = SafeText::line(from);
        panel.typing.retain(|t| *t != name);
        if started && panel.active {
            panel.typing.push(name);
        }
    }

    fn group_panel_mut(&mut self, id: &str) -> Option<&mut GroupPanel> {
        let key = group_key(id);
        self.conversations
            .iter_mut()
            .find(|c| c.username == key)
            .and_then(|c| c.group.as_mut())
    }

    /// The group `id`'s panel, if the screen knows the group.
    pub fn find_group(&self, id: &str) -> Option<&GroupPanel> {
        let key = group_key(id);
        self.conversations
            .iter()
            .find(|c| c.username == key)
            .and_then(|c| c.group.as_ref())
    }

    /// A membership change, shown inline as `text` (already a sentence:
    /// "alice added carol"). The same change reported twice at the same
    /// moment (the client and a daemon can both report it) shows once.
    pub fn group_change(&mut self, group: &str, text: &str, at: OffsetDateTime) {
        let body = SafeText::line(text);
        let key = group_key(group);
        let repeated = self.conversations.iter().any(|c| {
            c.username == key
                && c.messages
                    .iter()
                    .any(|m| m.direction == Direction::Change && m.at == at && m.body == body)
        });
        if repeated {
            return;
        }
        self.next_change_id += 1;
        let id = format!("change-{}", self.next_change_id);
        self.system_line(&key, &id, text, at);
    }
}
