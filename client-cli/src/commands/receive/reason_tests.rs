//! The JSON of every typed reason, byte for byte as docs/CLI.md documents
//! it: `reason` keeps the words umbra always printed, `reason_code` and
//! `outcome` (appended to the schema) name the cause and the envelope's
//! fate, and the daemon's `connection` object keeps its fields.

use std::time::Duration;

use umbra_client_core::{
    AccountId, ConnectionState, DecryptFailure, Ended, Error, Event, GroupRefusal, MessageId,
    SafetyNumber, SendFailure, SharedError, Username,
};
use umbra_protocol::wire::ErrorCode;

use super::records_of;
use crate::daemon::methods::connection_value;

fn line(event: Event) -> String {
    let records = records_of(event);
    assert_eq!(records.len(), 1, "{records:?}");
    records[0].to_json_line().expect("encodes")
}

fn failed(from: Option<&str>, reason: DecryptFailure) -> Event {
    Event::DecryptionFailed {
        from: from.map(str::to_owned),
        reason,
    }
}

#[test]
fn every_reason_prints_the_documented_json() {
    let bob = Username::parse("bob").expect("valid name");
    let number = SafetyNumber::parse(&"0123456789".repeat(6)).expect("60 digits");
    let table: Vec<(Event, String)> = vec![
        (
            failed(
                None,
                DecryptFailure::Kept {
                    cause: Box::new(DecryptFailure::NoSession),
                    attempt: 1,
                },
            ),
            r#"{"type":"decryption_failed","from":null,"reason":"message for a session this device does not have; kept, it will be tried again when the relay delivers it again (attempt 1)","reason_code":"no_session","outcome":"kept"}"#.into(),
        ),
        (
            failed(
                Some("bob"),
                DecryptFailure::Lost {
                    cause: Box::new(DecryptFailure::Group(GroupRefusal::NoSenderKey)),
                    attempts: 8,
                    hours: 24,
                },
            ),
            r#"{"type":"decryption_failed","from":"bob","reason":"a message was lost: it failed 8 times over 24 hours and was given up (group message before its sender key)","reason_code":"group_no_sender_key","outcome":"lost"}"#.into(),
        ),
        (
            failed(
                None,
                DecryptFailure::DirectoryContradicts {
                    claimed: bob.clone(),
                },
            ),
            r#"{"type":"decryption_failed","from":null,"reason":"sender claims to be bob but the directory lists another key","reason_code":"directory_contradicts","outcome":"rejected"}"#.into(),
        ),
        (
            failed(
                None,
                DecryptFailure::Store(SharedError::new(Error::Timeout(Duration::from_secs(2)))),
            ),
            r#"{"type":"decryption_failed","from":null,"reason":"could not store an incoming message: timed out after 2s","reason_code":"store_failed","outcome":"kept"}"#.into(),
        ),
        (
            Event::SendFailed {
                to: "bob".into(),
                id: MessageId([0xab; 16]),
                reason: SendFailure::Refused(ErrorCode::UnknownRecipient),
            },
            format!(
                r#"{{"type":"send_failed","to":"bob","id":"{}","reason":"{}"}}"#,
                "ab".repeat(16),
                ErrorCode::UnknownRecipient
            ),
        ),
        (
            Event::KeyChanged {
                username: bob.clone(),
                account: AccountId::from_bytes([1; 16]),
                safety_number: number,
            },
            format!(
                r#"{{"type":"key_changed","contact":"bob","safety_number":"{number}","account_id":"{}"}}"#,
                "01".repeat(16)
            ),
        ),
    ];
    for (event, expected) in table {
        assert_eq!(line(event.clone()), expected, "{event:?}");
    }
}

#[test]
fn the_connection_object_keeps_its_fields_and_words() {
    let cause = SharedError::new(Error::Timeout(Duration::from_secs(5)));
    let table = [
        (ConnectionState::Offline, r#"{"state":"offline"}"#.to_owned()),
        (
            ConnectionState::Reconnecting {
                retry_in: Duration::from_millis(2_500),
                cause,
            },
            r#"{"reason":"timed out after 5s","retry_in":2,"state":"reconnecting"}"#.into(),
        ),
        (
            ConnectionState::Closed {
                reason: Ended::LoggedOut,
            },
            r#"{"reason":"this data dir is logged out; log in again to use it","reason_code":"logged_out","state":"closed"}"#.into(),
        ),
        (ConnectionState::Replaced, r#"{"state":"replaced"}"#.into()),
    ];
    for (state, expected) in table {
        assert_eq!(connection_value(&state).to_string(), expected, "{state:?}");
    }
}
