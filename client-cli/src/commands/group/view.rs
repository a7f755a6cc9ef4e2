//! The CLI's own view of a group: what `group list`, `group members`, the
//! daemon's group methods and `umbra chat` need, as plain strings and
//! flags. client-core's group types are turned into these in one place,
//! so the commands, the daemon and the TUI share one reading of them.
//!
//! Must never hold anything but display data (no key material reaches it)
//! and never present a name as trusted: every string here is shown only
//! through the sanitising output paths.

use crate::output::{GroupRef, Record};

/// One group this account is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    /// 64 lower-case hex digits.
    pub id: String,
    pub name: String,
    pub version: u64,
    /// This account is an admin.
    pub admin: bool,
    /// False once this account left or was removed.
    pub active: bool,
    /// Any member may rename it, not only admins (fixed at creation).
    pub members_may_rename: bool,
    pub members: Vec<MemberSummary>,
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSummary {
    /// As contacts show it: `name`, or `name#xxxxxxxx`.
    pub username: String,
    /// 32 lower-case hex digits.
    pub account_id: String,
    pub admin: bool,
    /// This account.
    pub me: bool,
}

impl GroupSummary {
    /// How records name this group, under the label `display_name`.
    pub fn reference(&self, display_name: &str) -> GroupRef {
        GroupRef {
            id: self.id.clone(),
            name: self.name.clone(),
            display_name: display_name.to_owned(),
        }
    }

    /// The `group list` row.
    pub fn record(&self, display_name: &str) -> Record {
        Record::Group {
            id: self.id.clone(),
            name: self.name.clone(),
            display_name: display_name.to_owned(),
            members: u64::try_from(self.members.len()).unwrap_or(u64::MAX),
            admin: self.admin,
            active: self.active,
            version: self.version,
            members_may_rename: self.members_may_rename,
        }
    }

    /// The `group members` rows, admins first, then by name.
    pub fn member_records(&self, display_name: &str) -> Vec<Record> {
        let mut members: Vec<&MemberSummary> = self.members.iter().collect();
        members.sort_by(|a, b| {
            b.admin
                .cmp(&a.admin)
                .then_with(|| a.username.cmp(&b.username))
        });
        members
            .into_iter()
            .map(|m| Record::GroupMember {
                group: self.reference(display_name),
                username: m.username.clone(),
                account_id: m.account_id.clone(),
                admin: m.admin,
                me: m.me,
            })
            .collect()
    }
}
