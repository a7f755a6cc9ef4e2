//! The group parts of the output schema: how a group is named inside a
//! record ([`GroupRef`]), what kind of membership change a `group_change`
//! record reports ([`GroupChangeKind`]), and the human lines of the group
//! records.
//!
//! Group names are chosen by whoever created or renamed the group, so they
//! are untrusted exactly like message bodies. This module must never print
//! one except through [`SafeText`], and must never let a group name pass
//! for the bracketed group label of another line: inside `[...]` a `[` or
//! `]` of the name is shown as `(` or `)`.

use serde::{Deserialize, Serialize};

use super::human::human_time;
use super::record::Record;
use crate::sanitize::SafeText;

/// A group as records name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    /// The group id: 64 lower-case hex digits.
    pub id: String,
    /// The group's name, exact (untrusted).
    pub name: String,
    /// How umbra shows it: `name`, or `name#xxxxxxxx` (the first 8 hex
    /// digits of the id) when another of this account's groups has the
    /// same name, so a group cannot pass for another by copying its name.
    pub display_name: String,
}

/// What a `group_change` record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChangeKind {
    /// The group was created (with `members`).
    Created,
    /// `members` joined.
    Added,
    /// `members` were removed.
    Removed,
    /// `by` left the group.
    Left,
    /// The group got a new name (`old_name` before).
    Renamed,
    /// `members` became admins.
    Promoted,
    /// A change made from this account lost to a concurrent change by
    /// another admin (every member keeps the same one of the two);
    /// `reissued` says whether umbra made it again on top of the winner.
    Superseded,
    /// Some other change, which this umbra does not describe.
    Changed,
    /// This account is a member again: a concurrent change by `by` won
    /// over its removal (by `removed_by`) or its own leave (made again).
    Restored,
}

/// `[name]` for a human line, sanitised, with brackets in the name
/// defused so `x] bob` cannot end the label early.
pub fn label(group: &GroupRef) -> String {
    let text = SafeText::line(&group.display_name);
    let inner: String = text
        .as_str()
        .chars()
        .map(|c| match c {
            '[' => '(',
            ']' => ')',
            c => c,
        })
        .collect();
    format!("[{inner}]")
}

/// Names joined for a human line, each sanitised.
fn names(members: &[String]) -> String {
    let shown: Vec<String> = members
        .iter()
        .map(|m| SafeText::line(m).to_string())
        .collect();
    if shown.is_empty() {
        "nobody".to_owned()
    } else {
        shown.join(", ")
    }
}

/// The human line of a group record; `None` for records that are not
/// about groups.
pub(super) fn to_human(record: &Record) -> Option<String> {
    let s = SafeText::line;
    Some(match record {
        Record::Group {
            display_name,
            members,
            admin,
            active,
            id,
            ..
        } => format!(
            "{}\t{} {}\t{}\t{}",
            s(display_name),
            members,
            if *members == 1 { "member" } else { "members" },
            match (active, admin) {
                (false, _) => "left (read-only)",
                (true, true) => "admin",
                (true, false) => "member",
            },
            s(id)
        ),
        Record::GroupMember {
            username,
            admin,
            me,
            ..
        } => format!(
            "{}{}\t{}",
            s(username),
            if *me { " (you)" } else { "" },
            if *admin { "admin" } else { "member" }
        ),
        Record::GroupChange { group, at, .. } => format!(
            "[{}] {} {}",
            human_time(*at),
            label(group),
            change_sentence(record).unwrap_or_default()
        ),
        _ => return None,
    })
}

/// What a `group_change` record says, as a sentence without its time and
/// group label ("alice added carol"); `None` for other records. `umbra
/// chat` shows it inline in the group's conversation.
pub fn change_sentence(record: &Record) -> Option<String> {
    let s = SafeText::line;
    let Record::GroupChange {
        change,
        by,
        members,
        includes_me,
        old_name,
        reissued,
        new_name,
        removed_by,
        ..
    } = record
    else {
        return None;
    };
    let by = s(by);
    let what = match change {
        GroupChangeKind::Created => {
            format!("{by} created the group with {}", names(members))
        }
        GroupChangeKind::Added if *includes_me => {
            format!("{by} added you ({})", names(members))
        }
        GroupChangeKind::Added => format!("{by} added {}", names(members)),
        GroupChangeKind::Removed if *includes_me => format!(
            "{by} removed you ({}): you get no more messages from this group",
            names(members)
        ),
        GroupChangeKind::Removed => format!("{by} removed {}", names(members)),
        GroupChangeKind::Left => format!("{by} left the group"),
        GroupChangeKind::Renamed => match (old_name, new_name) {
            (Some(old), Some(new)) => {
                format!("{by} renamed the group from {} to {}", s(old), s(new))
            }
            (Some(old), None) => format!("{by} renamed the group (was {})", s(old)),
            (None, Some(new)) => format!("{by} renamed the group to {}", s(new)),
            (None, None) => format!("{by} renamed the group"),
        },
        GroupChangeKind::Restored => match removed_by {
            Some(remover) => format!(
                "{by}'s concurrent change won over {}'s removal of you ({}): \
                 you are a member of this group again",
                s(remover),
                names(members)
            ),
            None => format!(
                "{by}'s concurrent change won over your leaving ({}): \
                 umbra leaves the group again",
                names(members)
            ),
        },
        GroupChangeKind::Changed => format!("{by} changed the group"),
        GroupChangeKind::Promoted if *includes_me => format!("{by} made you an admin"),
        GroupChangeKind::Promoted => format!("{by} made {} an admin", names(members)),
        GroupChangeKind::Superseded if *reissued == Some(true) => {
            "your last change lost to a concurrent change by another admin; \
                     umbra made it again on top of it"
                .to_owned()
        }
        GroupChangeKind::Superseded => "your last change lost to a concurrent change \
                     by another admin and no longer applies"
            .to_owned(),
    };
    Some(what)
}
