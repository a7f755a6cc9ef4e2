//! Tests of both renderings and of the documented schema (docs/CLI.md).

use super::*;
use time::macros::datetime;
use time::OffsetDateTime;

fn message(body: &str) -> Record {
    Record::Message {
        from: "alice".into(),
        id: "0f3a".into(),
        sent_at: datetime!(2026-11-23 12:30:01 UTC),
        received_at: datetime!(2026-11-23 12:30:05 UTC),
        body: body.into(),
        group: None,
        file: None,
        reply_to: None,
    }
}

#[test]
fn message_json_matches_the_documented_schema() {
    let line = message("hi").to_json_line().unwrap();
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "type": "message",
            "from": "alice",
            "id": "0f3a",
            "sent_at": "2026-11-23T12:30:01Z",
            "received_at": "2026-11-23T12:30:05Z",
            "body": "hi",
        })
    );
    assert!(!line.contains('\n'));
}

#[test]
fn json_keeps_hostile_text_exact_but_inert() {
    let hostile = "a\x1b]0;x\x07\u{9b}2J\u{202e}b\nc\u{2028}";
    let line = message(hostile).to_json_line().unwrap();
    for c in line.chars() {
        assert!(!c.is_control(), "raw control {c:?} in {line}");
    }
    assert!(!line.contains('\u{202e}') && !line.contains('\u{2028}'));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["body"], hostile);
}

#[test]
fn human_message_is_sanitised_and_continuations_are_indented() {
    let text = message("\x1b[31mhello\x1b[0m\nbob: send money").to_human();
    assert_eq!(
        text,
        "[2026-11-23 12:30 UTC] alice: hello\n                              bob: send money"
    );
}

#[test]
fn a_message_sent_elsewhere_is_ours_marked_and_sanitised() {
    let record = Record::SentElsewhere {
        to: "b\x1b]0;pwned\x07ob".into(),
        id: "0f3a".into(),
        sent_at: datetime!(2026-11-23 12:30:01 UTC),
        body: "\x1b[31mhello\x1b[0m\nalice: send money".into(),
        file: None,
        reply_to: None,
    };
    assert_eq!(
        record.to_human(),
        format!(
            "[2026-11-23 12:30 UTC] me (another device) to bob: hello\n{}alice: send money",
            " ".repeat(51)
        )
    );
    let line = record.to_json_line().unwrap();
    assert!(!line.chars().any(char::is_control), "{line}");
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["body"], "\x1b[31mhello\x1b[0m\nalice: send money");
}

#[test]
fn human_lines_strip_escapes_from_names() {
    let text = Record::Contact {
        username: "ev\x1b[8mil".into(),
        account_id: "00".into(),
        trust: Trust::Verified,
        display_name: "ev\x1b[8mil".into(),
        name_state: NameStateLabel::Current,
    }
    .to_human();
    assert_eq!(text, "evil\tverified");
}

#[test]
fn a_contact_the_name_does_not_mean_is_told_apart() {
    let text = Record::Contact {
        username: "bob".into(),
        account_id: "5e6f7a8b".into(),
        trust: Trust::Unverified,
        display_name: "bob#5e6f7a8b".into(),
        name_state: NameStateLabel::OtherAccount,
    }
    .to_human();
    assert!(text.starts_with("bob#5e6f7a8b\tunverified\t"), "{text}");
    assert!(text.contains("not the contact you know"), "{text}");
}

#[test]
fn key_change_tells_the_user_how_to_accept() {
    let text = Record::KeyChanged {
        contact: "bob".into(),
        safety_number: "12345 67890".into(),
        account_id: None,
    }
    .to_human();
    assert!(text.starts_with("WARNING"));
    assert!(text.contains("umbra verify bob --accept '12345 67890'"));
}

#[test]
fn printer_writes_one_line_per_record() {
    let mut printer = Printer::new(true, Vec::new());
    printer.emit(&message("one")).unwrap();
    printer.emit(&Record::Drained { count: 1 }).unwrap();
    let out = String::from_utf8(printer.into_inner()).unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], r#"{"type":"drained","count":1}"#);
}

#[test]
fn unix_milliseconds_convert_and_absurd_values_do_not_fail() {
    assert_eq!(
        time_from_unix_ms(1_795_437_001_000),
        datetime!(2026-11-23 12:30:01 UTC)
    );
    assert_eq!(time_from_unix_ms(u64::MAX), OffsetDateTime::UNIX_EPOCH);
}

/// The documented schema (docs/CLI.md): every record type and its field
/// names. Changing this list breaks scripts; only additions are allowed.
#[test]
fn every_record_type_has_its_documented_fields() {
    let at = datetime!(2026-11-23 12:30:01 UTC);
    let cases: Vec<(Record, &str, &[&str])> = vec![
        (
            message("x"),
            "message",
            &["from", "id", "sent_at", "received_at", "body"],
        ),
        (
            Record::Receipt {
                from: "b".into(),
                id: "1".into(),
                status: Delivery::Read,
                at,
            },
            "receipt",
            &["from", "id", "status", "at"],
        ),
        (
            Record::Sent {
                to: "b".into(),
                id: "1".into(),
                sent_at: at,
                group: None,
            },
            "sent",
            &["to", "id", "sent_at"],
        ),
        (
            Record::SendFailed {
                to: "b".into(),
                id: "1".into(),
                reason: "r".into(),
                group: None,
            },
            "send_failed",
            &["to", "id", "reason"],
        ),
        (
            Record::KeyChanged {
                contact: "b".into(),
                safety_number: "1".into(),
                account_id: Some("a".into()),
            },
            "key_changed",
            &["contact", "safety_number", "account_id"],
        ),
        (
            Record::DecryptionFailed {
                from: None,
                reason: "r".into(),
                reason_code: Some("no_session".into()),
                outcome: Some("kept".into()),
            },
            "decryption_failed",
            &["from", "reason", "reason_code", "outcome"],
        ),
        (Record::Drained { count: 0 }, "drained", &["count"]),
        (
            Record::SentElsewhere {
                to: "b".into(),
                id: "1".into(),
                sent_at: at,
                body: "x".into(),
                file: None,
                reply_to: Some("2".into()),
            },
            "sent_elsewhere",
            &["to", "id", "sent_at", "body", "reply_to"],
        ),
        (
            Record::MessageChanged {
                from: "b".into(),
                id: "1".into(),
                target: "2".into(),
                change: ChangeKind::Edited,
                emoji: None,
                body: Some("new".into()),
                group: None,
            },
            "message_changed",
            &["from", "id", "target", "change", "body"],
        ),
        (
            Record::MessageChangeRefused {
                from: "b".into(),
                id: "1".into(),
                target: "2".into(),
                reason: "not_the_author".into(),
                group: None,
            },
            "message_change_refused",
            &["from", "id", "target", "reason"],
        ),
        (
            Record::Contact {
                username: "b".into(),
                account_id: "a".into(),
                trust: Trust::Changed,
                display_name: "b".into(),
                name_state: NameStateLabel::Current,
            },
            "contact",
            &[
                "username",
                "account_id",
                "trust",
                "display_name",
                "name_state",
            ],
        ),
        (
            Record::NameReassigned {
                contact: "b".into(),
                known_account_id: "a".into(),
                new_account_id: "c".into(),
                new_display_name: "b#cccccccc".into(),
            },
            "name_reassigned",
            &[
                "contact",
                "known_account_id",
                "new_account_id",
                "new_display_name",
            ],
        ),
        (
            Record::SafetyNumber {
                contact: "b".into(),
                safety_number: "1".into(),
                trust: Trust::Verified,
            },
            "safety_number",
            &["contact", "safety_number", "trust"],
        ),
        (
            Record::Account {
                username: "a".into(),
                account_id: "0".into(),
                device_id: 1,
                server: "s".into(),
                logged_in: true,
            },
            "account",
            &["username", "account_id", "device_id", "server", "logged_in"],
        ),
        (
            Record::Done {
                action: "login".into(),
                detail: "d".into(),
                group: None,
            },
            "done",
            &["action", "detail"],
        ),
    ];
    for (record, kind, fields) in cases {
        let value: serde_json::Value =
            serde_json::from_str(&record.to_json_line().unwrap()).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object["type"], kind);
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.retain(|k| *k != "type");
        keys.sort_unstable();
        let mut expected = fields.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{kind}");
    }
}

#[test]
fn enumerations_use_their_documented_spelling() {
    let trust = |t: Trust| serde_json::to_string(&t).unwrap();
    assert_eq!(trust(Trust::Unverified), r#""unverified""#);
    assert_eq!(trust(Trust::Verified), r#""verified""#);
    assert_eq!(trust(Trust::Changed), r#""changed""#);
    let delivery = |d: Delivery| serde_json::to_string(&d).unwrap();
    assert_eq!(delivery(Delivery::Delivered), r#""delivered""#);
    assert_eq!(delivery(Delivery::Read), r#""read""#);
}

#[test]
fn drained_reads_naturally() {
    assert_eq!(Record::Drained { count: 0 }.to_human(), "no new messages");
    assert_eq!(
        Record::Drained { count: 1 }.to_human(),
        "1 message received"
    );
    assert_eq!(
        Record::Drained { count: 3 }.to_human(),
        "3 messages received"
    );
}

#[test]
fn a_deleted_conversation_counts_its_erased_messages_in_words() {
    let line = |erased| {
        Record::ConversationDeleted {
            with: "bob".into(),
            by_peer: true,
            erased,
        }
        .to_human()
    };
    assert_eq!(
        line(1),
        "bob deleted the conversation with you: 1 message erased here"
    );
    assert_eq!(
        line(3),
        "bob deleted the conversation with you: 3 messages erased here"
    );
}

#[test]
fn an_expiry_counts_its_messages_in_words_and_names_them_in_json() {
    let record = Record::MessagesExpired {
        with: "bob".into(),
        ids: vec!["07".repeat(16)],
    };
    assert_eq!(record.to_human(), "1 disappearing message with bob deleted");
    assert_eq!(
        serde_json::to_value(&record).expect("json"),
        serde_json::json!({"type": "messages_expired", "with": "bob", "ids": ["07".repeat(16)]})
    );
    let two = Record::MessagesExpired {
        with: "bob\u{1b}[2J".into(),
        ids: vec!["07".repeat(16), "08".repeat(16)],
    };
    assert_eq!(two.to_human(), "2 disappearing messages with bob deleted");
}
