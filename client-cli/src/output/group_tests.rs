//! Tests of the group records: their documented JSON shape (docs/CLI.md),
//! that older record shapes are unchanged by the new optional fields, and
//! that group and member names are drawn inert in human lines.

use super::*;
use time::macros::datetime;

const ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

fn family() -> GroupRef {
    GroupRef {
        id: ID.into(),
        name: "family".into(),
        display_name: "family".into(),
    }
}

fn json(record: &Record) -> serde_json::Value {
    serde_json::from_str(&record.to_json_line().unwrap()).unwrap()
}

fn group_message(group: GroupRef, body: &str) -> Record {
    Record::Message {
        from: "alice".into(),
        id: "0f3a".into(),
        sent_at: datetime!(2026-11-23 12:30:01 UTC),
        received_at: datetime!(2026-11-23 12:30:05 UTC),
        body: body.into(),
        group: Some(group),
        file: None,
        reply_to: None,
    }
}

fn change(kind: GroupChangeKind, members: &[&str], includes_me: bool) -> Record {
    change_with(kind, members, includes_me, None, None)
}

fn change_with(
    kind: GroupChangeKind,
    members: &[&str],
    includes_me: bool,
    old_name: Option<&str>,
    reissued: Option<bool>,
) -> Record {
    Record::GroupChange {
        group: family(),
        change: kind,
        by: "alice".into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        includes_me,
        old_name: old_name.map(str::to_owned),
        reissued,
        new_name: None,
        removed_by: None,
        at: datetime!(2026-11-23 12:31 UTC),
    }
}

#[test]
fn a_group_message_is_a_message_with_a_group_object() {
    assert_eq!(
        json(&group_message(family(), "hi all")),
        serde_json::json!({
            "type": "message",
            "from": "alice",
            "id": "0f3a",
            "sent_at": "2026-11-23T12:30:01Z",
            "received_at": "2026-11-23T12:30:05Z",
            "body": "hi all",
            "group": {"id": ID, "name": "family", "display_name": "family"},
        })
    );
    // A consumer of an older umbra parses it back (the field is optional),
    // and a 1:1 message still has no `group` key at all.
    let back: Record = serde_json::from_value(json(&group_message(family(), "x"))).unwrap();
    assert_eq!(back, group_message(family(), "x"));
    let mut one_to_one = group_message(family(), "x");
    if let Record::Message { group, .. } = &mut one_to_one {
        *group = None;
    }
    assert!(json(&one_to_one).get("group").is_none());
}

#[test]
fn group_records_have_their_documented_fields() {
    let at = datetime!(2026-11-23 12:31 UTC);
    let cases: Vec<(Record, &str, &[&str])> = vec![
        (
            Record::Group {
                id: ID.into(),
                name: "family".into(),
                display_name: "family".into(),
                members: 3,
                admin: true,
                active: true,
                version: 2,
                members_may_rename: false,
            },
            "group",
            &[
                "id",
                "name",
                "display_name",
                "members",
                "admin",
                "active",
                "version",
                "members_may_rename",
            ],
        ),
        (
            Record::GroupMember {
                group: family(),
                username: "bob".into(),
                account_id: "00".into(),
                admin: false,
                me: false,
            },
            "group_member",
            &["group", "username", "account_id", "admin", "me"],
        ),
        (
            change(GroupChangeKind::Added, &["carol"], false),
            "group_change",
            &["group", "change", "by", "members", "includes_me", "at"],
        ),
        (
            change_with(GroupChangeKind::Renamed, &[], false, Some("fam"), None),
            "group_change",
            &[
                "group",
                "change",
                "by",
                "members",
                "includes_me",
                "old_name",
                "at",
            ],
        ),
        (
            Record::Sent {
                to: "family".into(),
                id: "1".into(),
                sent_at: at,
                group: Some(family()),
            },
            "sent",
            &["to", "id", "sent_at", "group"],
        ),
        (
            Record::SendFailed {
                to: "bob".into(),
                id: "1".into(),
                reason: "r".into(),
                group: Some(family()),
            },
            "send_failed",
            &["to", "id", "reason", "group"],
        ),
        (
            Record::Done {
                action: "group_add".into(),
                detail: "d".into(),
                group: Some(family()),
            },
            "done",
            &["action", "detail", "group"],
        ),
    ];
    for (record, kind, fields) in cases {
        let value = json(&record);
        let object = value.as_object().unwrap();
        assert_eq!(object["type"], kind);
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.retain(|k| *k != "type");
        keys.sort_unstable();
        let mut expected = fields.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{kind}");
        let back: Record = serde_json::from_value(value).unwrap();
        assert_eq!(back, record, "{kind} round trip");
    }
}

#[test]
fn change_kinds_use_their_documented_spelling() {
    let spelled: Vec<String> = [
        GroupChangeKind::Created,
        GroupChangeKind::Added,
        GroupChangeKind::Removed,
        GroupChangeKind::Left,
        GroupChangeKind::Renamed,
        GroupChangeKind::Promoted,
        GroupChangeKind::Superseded,
        GroupChangeKind::Changed,
    ]
    .iter()
    .map(|k| serde_json::to_string(k).unwrap())
    .collect();
    assert_eq!(
        spelled,
        [
            r#""created""#,
            r#""added""#,
            r#""removed""#,
            r#""left""#,
            r#""renamed""#,
            r#""promoted""#,
            r#""superseded""#,
            r#""changed""#
        ]
    );
}

#[test]
fn human_group_message_names_the_group_before_the_sender() {
    assert_eq!(
        group_message(family(), "hi\nall").to_human(),
        "[2026-11-23 12:30 UTC] [family] alice: hi\n                                       all"
    );
}

#[test]
fn a_group_name_cannot_forge_the_label_or_the_terminal() {
    let hostile = GroupRef {
        id: ID.into(),
        name: "x] bob: \x1b]0;pwned\x07\u{202e}fam".into(),
        display_name: "x] bob: \x1b]0;pwned\x07\u{202e}fam".into(),
    };
    let text = group_message(hostile.clone(), "hi").to_human();
    assert_eq!(text, "[2026-11-23 12:30 UTC] [x) bob: fam] alice: hi");
    let listed = Record::Group {
        id: ID.into(),
        name: hostile.name.clone(),
        display_name: hostile.display_name.clone(),
        members: 2,
        admin: false,
        active: true,
        version: 1,
        members_may_rename: false,
    }
    .to_human();
    assert!(
        !listed.chars().any(|c| c.is_control() && c != '\t'),
        "{listed:?}"
    );
    assert!(!listed.contains('\u{202e}'));
    // JSON keeps the exact name, escaped to be inert.
    let line = group_message(hostile.clone(), "hi").to_json_line().unwrap();
    assert!(!line.contains('\u{202e}') && !line.contains('\x1b'));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["group"]["name"], hostile.name);
}

#[test]
fn membership_changes_read_as_sentences() {
    let at = "[2026-11-23 12:31 UTC] [family]";
    let line = |r: Record| r.to_human();
    assert_eq!(
        line(change(GroupChangeKind::Created, &["bob", "carol"], true)),
        format!("{at} alice created the group with bob, carol")
    );
    assert_eq!(
        line(change(GroupChangeKind::Added, &["dave"], false)),
        format!("{at} alice added dave")
    );
    assert_eq!(
        line(change(GroupChangeKind::Removed, &["bob"], true)),
        format!("{at} alice removed you (bob): you get no more messages from this group")
    );
    assert_eq!(
        line(change(GroupChangeKind::Left, &["alice"], false)),
        format!("{at} alice left the group")
    );
    assert_eq!(
        line(change_with(
            GroupChangeKind::Renamed,
            &[],
            false,
            Some("fam\x1b[2J"),
            None
        )),
        format!("{at} alice renamed the group (was fam)")
    );
    assert_eq!(
        line(change(GroupChangeKind::Promoted, &["bob"], false)),
        format!("{at} alice made bob an admin")
    );
    assert_eq!(
        line(change(GroupChangeKind::Promoted, &["carol"], true)),
        format!("{at} alice made you an admin")
    );
    assert_eq!(
        line(change_with(
            GroupChangeKind::Superseded,
            &[],
            true,
            None,
            Some(false)
        )),
        format!(
            "{at} your last change lost to a concurrent change by another admin and no \
             longer applies"
        )
    );
}

#[test]
fn group_sends_and_rows_read_naturally() {
    let sent = Record::Sent {
        to: "family".into(),
        id: "m1".into(),
        sent_at: datetime!(2026-11-23 12:31 UTC),
        group: Some(family()),
    };
    assert_eq!(sent.to_human(), "sent to [family] ✓ (id m1)");
    let refused = Record::SendFailed {
        to: "bob".into(),
        id: "m1".into(),
        reason: "queue full".into(),
        group: Some(family()),
    };
    assert_eq!(
        refused.to_human(),
        "NOT sent to bob in [family] (id m1): queue full"
    );
    let member = Record::GroupMember {
        group: family(),
        username: "alice".into(),
        account_id: "00".into(),
        admin: true,
        me: true,
    };
    assert_eq!(member.to_human(), "alice (you)\tadmin");
    let row = Record::Group {
        id: ID.into(),
        name: "family".into(),
        display_name: "family#1a2b3c4d".into(),
        members: 1,
        admin: false,
        active: true,
        version: 0,
        members_may_rename: false,
    };
    assert_eq!(
        row.to_human(),
        format!("family#1a2b3c4d\t1 member\tmember\t{ID}")
    );
    let left = Record::Group {
        id: ID.into(),
        name: "family".into(),
        display_name: "family#1a2b3c4d".into(),
        members: 4,
        admin: true,
        active: false,
        version: 3,
        members_may_rename: false,
    };
    assert_eq!(
        left.to_human(),
        format!("family#1a2b3c4d\t4 members\tleft (read-only)\t{ID}")
    );
}

#[test]
fn a_rename_names_both_names_and_a_restored_membership_says_whose_change_won() {
    let at = "[2026-11-23 12:31 UTC] [family]";
    let with = |kind, members: &[&str], new_name: Option<&str>, removed_by: Option<&str>| {
        let mut record = change_with(kind, members, true, Some("fam"), None);
        if let Record::GroupChange {
            new_name: n,
            removed_by: r,
            old_name,
            ..
        } = &mut record
        {
            *n = new_name.map(str::to_owned);
            *r = removed_by.map(str::to_owned);
            if kind != GroupChangeKind::Renamed {
                *old_name = None;
            }
        }
        record
    };
    let renamed = with(GroupChangeKind::Renamed, &[], Some("kin\x1b[2J"), None);
    assert_eq!(
        renamed.to_human(),
        format!("{at} alice renamed the group from fam to kin")
    );
    let value = json(&renamed);
    assert_eq!(value["old_name"], "fam");
    assert_eq!(value["new_name"], "kin\x1b[2J", "JSON keeps the exact name");
    let restored = with(GroupChangeKind::Restored, &["carol"], None, Some("bob"));
    assert_eq!(
        restored.to_human(),
        format!(
            "{at} alice's concurrent change won over bob's removal of you (carol): you are a \
             member of this group again"
        )
    );
    let value = json(&restored);
    assert_eq!(value["change"], "restored");
    assert_eq!(value["removed_by"], "bob");
    assert_eq!(value["includes_me"], true);
    assert!(value.get("new_name").is_none());
    let left = with(GroupChangeKind::Restored, &["carol"], None, None);
    assert_eq!(
        left.to_human(),
        format!(
            "{at} alice's concurrent change won over your leaving (carol): umbra leaves the \
             group again"
        )
    );
    assert!(json(&left).get("removed_by").is_none());
}
