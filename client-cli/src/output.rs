//! What the scriptable commands print: one [`Record`] per line, either as a
//! human-readable line or, with `--json`, as one JSON object.
//!
//! The JSON schema is documented in docs/CLI.md and is append-only: fields
//! and record types may be added, never renamed, removed or changed in
//! meaning. Timestamps are RFC 3339 in UTC.
//!
//! This module must never write untrusted text raw. Human lines pass every
//! contact-controlled string through [`SafeText`]; JSON lines keep the exact
//! text (scripts need it) but escape every control, C1 and bidi character as
//! `\uXXXX`, so even `umbra receive --json` straight to a terminal is inert.

use std::io::Write;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::sanitize::SafeText;

/// How far a contact has verified identity keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Key seen and used, never compared out of band.
    Unverified,
    /// The user compared the safety number and marked it verified.
    Verified,
    /// The key changed since it was last accepted; sending is blocked.
    Changed,
}

impl Trust {
    pub fn label(self) -> &'static str {
        match self {
            Trust::Unverified => "unverified",
            Trust::Verified => "verified",
            Trust::Changed => "KEY CHANGED",
        }
    }
}

/// How far an outgoing message has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Written locally, not yet acknowledged by the relay.
    Pending,
    /// The relay acknowledged it (stored durably).
    Sent,
    /// The recipient's device acknowledged it.
    Delivered,
    /// The recipient opened it.
    Read,
}

impl Delivery {
    /// The mark shown next to an outgoing message.
    pub fn mark(self) -> &'static str {
        match self {
            Delivery::Pending => "…",
            Delivery::Sent => "✓",
            Delivery::Delivered => "✓✓",
            Delivery::Read => "✓✓ read",
        }
    }
}

/// What a contact's username means to the user (`contact` records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStateLabel {
    /// The name means this contact.
    Current,
    /// The name means this contact, but another account claims it.
    Contested,
    /// The name means another account; this one is told apart by its label.
    OtherAccount,
}

/// One line of output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// An incoming message.
    Message {
        from: String,
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        received_at: OffsetDateTime,
        body: String,
    },
    /// A delivery or read receipt for a message this account sent.
    Receipt {
        from: String,
        id: String,
        status: Delivery,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A contact's identity key changed; messages to them are blocked until
    /// the new key is accepted (`umbra verify NAME --accept NUMBER`).
    KeyChanged {
        contact: String,
        safety_number: String,
    },
    /// `send` succeeded: the relay has the message.
    Sent {
        to: String,
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
    },
    /// The relay refused one of our messages for good.
    SendFailed {
        to: String,
        id: String,
        reason: String,
    },
    /// An incoming envelope could not be decrypted or authenticated.
    /// `from` is null when the sender could not be determined.
    DecryptionFailed {
        from: Option<String>,
        reason: String,
    },
    /// One row of `contacts`.
    Contact {
        username: String,
        account_id: String,
        trust: Trust,
        /// How the contact is shown: `username`, or `username#xxxxxxxx` when
        /// the name means another account to the user.
        display_name: String,
        /// `"current"`, `"contested"` or `"other_account"`.
        name_state: NameStateLabel,
    },
    /// A name the user knows now belongs to (or is claimed by) another
    /// account; sending to it is blocked until the user picks one.
    NameReassigned {
        contact: String,
        known_account_id: String,
        new_account_id: String,
        /// How the newcomer is shown (`contact#xxxxxxxx`).
        new_display_name: String,
    },
    /// `verify`: the safety number for a contact.
    SafetyNumber {
        contact: String,
        safety_number: String,
        trust: Trust,
    },
    /// `whoami`.
    Account {
        username: String,
        account_id: String,
        device_id: u32,
        server: String,
        /// False after `logout`: the keys are here, the relay session is not.
        logged_in: bool,
    },
    /// The end of `receive`: everything waiting was printed.
    Drained { count: u64 },
    /// A state change the user asked for (login, logout, register, verify).
    Done { action: String, detail: String },
}

impl Record {
    /// The JSON form: one line, exact text, terminal-inert escaping.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        let raw = serde_json::to_string(self)?;
        Ok(escape_for_terminal(&raw))
    }

    /// The human form; every contact-controlled string is sanitised.
    pub fn to_human(&self) -> String {
        let s = SafeText::line;
        match self {
            Record::Message {
                from,
                received_at,
                body,
                ..
            } => {
                // The relay's acceptance time, not the sender's claimed clock.
                let header = format!("[{}] {}: ", human_time(*received_at), s(from));
                let indent = " ".repeat(header.chars().count());
                let mut text = header;
                // Continuation lines are indented so a body cannot forge a
                // line that looks like another sender's message.
                for (i, line) in SafeText::multiline(body).lines().enumerate() {
                    if i > 0 {
                        text.push('\n');
                        text.push_str(&indent);
                    }
                    text.push_str(line);
                }
                text
            }
            Record::Receipt {
                from, id, status, ..
            } => format!(
                "{} {} message {} ({})",
                s(from),
                match status {
                    Delivery::Read => "read",
                    _ => "received",
                },
                s(id),
                status.mark()
            ),
            Record::KeyChanged {
                contact,
                safety_number,
            } => format!(
                "WARNING: the identity key of {c} has changed. Messages to {c} are blocked.\n\
                 New safety number: {n}\n\
                 Compare it with {c} in person, then run: umbra verify {c} --accept '{n}'",
                c = s(contact),
                n = s(safety_number)
            ),
            Record::Sent { to, id, .. } => format!("sent to {} ✓ (id {})", s(to), s(id)),
            Record::SendFailed { to, id, reason } => {
                format!("NOT sent to {} (id {}): {}", s(to), s(id), s(reason))
            }
            Record::DecryptionFailed { from, reason } => format!(
                "could not decrypt a message from {}: {}",
                from.as_deref()
                    .map_or_else(|| "an unknown sender".to_owned(), |f| s(f).to_string()),
                s(reason)
            ),
            Record::Contact {
                display_name,
                trust,
                name_state,
                account_id,
                ..
            } => match name_state {
                NameStateLabel::Current => format!("{}\t{}", s(display_name), trust.label()),
                NameStateLabel::Contested => format!(
                    "{}\t{}\tname contested by another account: see `umbra verify {}`",
                    s(display_name),
                    trust.label(),
                    s(display_name)
                ),
                NameStateLabel::OtherAccount => format!(
                    "{}\t{}\tnot the contact you know by that name (account {})",
                    s(display_name),
                    trust.label(),
                    s(account_id)
                ),
            },
            Record::NameReassigned {
                contact,
                new_display_name,
                ..
            } => format!(
                "WARNING: the name {c} now belongs to another account, not the {c} you know.\n\
                 Its messages are shown as {n}. Messages to {c} are blocked until you choose:\n\
                 compare safety numbers (umbra verify {c}), then umbra verify {c} --accept 'NUMBER'",
                c = s(contact),
                n = s(new_display_name)
            ),
            Record::SafetyNumber {
                contact,
                safety_number,
                trust,
            } => format!(
                "Safety number with {}: {} ({})",
                s(contact),
                s(safety_number),
                trust.label()
            ),
            Record::Account {
                username,
                device_id,
                server,
                logged_in: true,
                ..
            } => format!("{} (device {device_id}) on {}", s(username), s(server)),
            Record::Account {
                username,
                device_id,
                server,
                logged_in: false,
                ..
            } => format!(
                "{} (device {device_id}) on {}: logged out (umbra login {} resumes)",
                s(username),
                s(server),
                s(username)
            ),
            Record::Drained { count } => match count {
                0 => "no new messages".to_owned(),
                1 => "1 message received".to_owned(),
                n => format!("{n} messages received"),
            },
            Record::Done { detail, .. } => s(detail).to_string(),
        }
    }
}

/// Converts Unix milliseconds to a timestamp. Values outside the range a
/// timestamp can hold (a sender's clock is untrusted) become the Unix epoch
/// rather than an error, so one odd message cannot stop `receive`.
pub fn time_from_unix_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DD HH:MM UTC`: short, unambiguous, no locale.
pub fn human_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Rewrites C1 controls, DEL, bidi controls and line/paragraph separators
/// inside an already-serialised JSON text as `\uXXXX` escapes. serde_json
/// already escapes C0; outside strings JSON is pure ASCII, so this only ever
/// touches string contents and keeps the value identical.
fn escape_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        let needs_escape = matches!(c,
            '\u{7f}'..='\u{9f}'
            | '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{2028}' | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
        if needs_escape {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints records in the format chosen on the command line.
pub struct Printer<W: Write> {
    json: bool,
    out: W,
}

impl Printer<std::io::Stdout> {
    pub fn stdout(json: bool) -> Self {
        Self::new(json, std::io::stdout())
    }
}

impl<W: Write> Printer<W> {
    pub fn new(json: bool, out: W) -> Self {
        Self { json, out }
    }

    /// Writes one record and flushes, so a consumer reading a pipe sees each
    /// message as soon as it is printed.
    pub fn emit(&mut self, record: &Record) -> anyhow::Result<()> {
        let line = if self.json {
            record.to_json_line()?
        } else {
            record.to_human()
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn message(body: &str) -> Record {
        Record::Message {
            from: "alice".into(),
            id: "0f3a".into(),
            sent_at: datetime!(2026-11-23 12:30:01 UTC),
            received_at: datetime!(2026-11-23 12:30:05 UTC),
            body: body.into(),
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
                },
                "sent",
                &["to", "id", "sent_at"],
            ),
            (
                Record::SendFailed {
                    to: "b".into(),
                    id: "1".into(),
                    reason: "r".into(),
                },
                "send_failed",
                &["to", "id", "reason"],
            ),
            (
                Record::KeyChanged {
                    contact: "b".into(),
                    safety_number: "1".into(),
                },
                "key_changed",
                &["contact", "safety_number"],
            ),
            (
                Record::DecryptionFailed {
                    from: None,
                    reason: "r".into(),
                },
                "decryption_failed",
                &["from", "reason"],
            ),
            (Record::Drained { count: 0 }, "drained", &["count"]),
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
}
