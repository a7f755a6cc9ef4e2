//! The words and codes of every reason: what a user reads and what a
//! script matches (`reason`, `reason_code` and `outcome` in docs/CLI.md).
//! The words are the ones umbra printed when reasons were text; a change
//! here changes what users see and what the `--json` schema promises.

use std::time::Duration;

use umbra_protocol::group::{GroupChangeError, GroupError};
use umbra_protocol::pairwise::PairwiseError;
use umbra_protocol::payload::PayloadError;
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::wire::{DeviceId, ErrorCode, Username};

use super::*;
use crate::Error;

fn name(s: &str) -> Username {
    Username::parse(s).expect("valid name")
}

#[test]
fn every_reason_reads_as_before_and_has_a_stable_code() {
    let timed_out = SharedError::new(Error::Timeout(Duration::from_secs(3)));
    let not_member = GroupChangeError::Truncated { len: 3, min: 66 };
    let undecryptable = format!(
        "cannot decrypt: ratchet: {}",
        RatchetError::DecryptionFailed
    );
    let undecodable = format!("undecodable message: {}", PayloadError::Truncated);
    let table: Vec<(DecryptFailure, &str, &str, Outcome)> = vec![
        (
            DecryptFailure::Unopenable(PairwiseError::WrongKind),
            "cannot open envelope: wrong kind of message for this path (ephemeral, stored or group)",
            "unopenable",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::FromThisDevice,
            "envelope claims to come from this device",
            "from_this_device",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::OtherDevice(DeviceId(2)),
            "group message from device 2 of its account; this client reads group messages from \
             primary devices only",
            "other_device",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::UnlistedDevice(DeviceId(3)),
            "envelope from device 3, which its account's signed device list does not name",
            "unlisted_device",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::TranscriptNotFromOwnAccount,
            "sent transcript from another account; only this account's own devices send one",
            "transcript_not_from_own_account",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::OwnDeviceContent("Text"),
            "Text from another device of this account, which sends its devices only sent \
             transcripts",
            "own_device_content",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::TranscriptRefused {
                device: DeviceId(2),
                reason: "names this account as its destination",
            },
            "sent transcript from device 2 of this account not applied: names this account as \
             its destination",
            "transcript_refused",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::NoSession,
            "message for a session this device does not have",
            "no_session",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::ClassicalPreKeyRefused,
            "a classical pre-key message was refused: the sender's client is out of date, and \
             umbra starts no session without a post-quantum key (one recorded now could be read \
             by a future quantum computer)",
            "classical_prekey_refused",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::NewSessionRefused(PairwiseError::WrongSession),
            "cannot start the new session: message does not belong to this session",
            "new_session_refused",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::SessionRefused(PairwiseError::SenderMismatch),
            "cannot start session: sealed sender does not match the session's peer identity and \
             address",
            "session_refused",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::Undecryptable(PairwiseError::Ratchet(RatchetError::DecryptionFailed)),
            &undecryptable,
            "undecryptable",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::Undecodable(PayloadError::Truncated),
            &undecodable,
            "undecodable",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::TooManyReceiptIds,
            "receipt lists too many ids",
            "too_many_receipt_ids",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::SenderAddressMismatch,
            "message claims another sender address than its session",
            "sender_address_mismatch",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::DirectoryContradicts {
                claimed: name("bob"),
            },
            "sender claims to be bob but the directory lists another key",
            "directory_contradicts",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::KeyNotListed {
                contact: name("bob"),
            },
            "a message claiming to be from bob was sealed by a key the directory does not list",
            "key_not_listed",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::ContactChangedDuringCheck,
            "the sender's contact changed while the directory was asked; kept for a retry",
            "contact_changed_during_check",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::DirectoryUnexpected { got: "Sent" },
            "the directory check got Sent instead of Resolved",
            "directory_unexpected",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::DirectoryUnavailable(timed_out.clone()),
            "cannot check the sender with the directory now: timed out after 3s",
            "directory_unavailable",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::DeviceListUnavailable(timed_out.clone()),
            "cannot fetch the sender's device list now: timed out after 3s",
            "device_list_unavailable",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::Request(timed_out.clone()),
            "timed out after 3s",
            "request_failed",
            Outcome::Rejected,
        ),
        (
            DecryptFailure::Store(timed_out.clone()),
            "could not store an incoming message: timed out after 3s",
            "store_failed",
            Outcome::Kept,
        ),
        (
            DecryptFailure::Kept {
                cause: Box::new(DecryptFailure::NoSession),
                attempt: 2,
            },
            "message for a session this device does not have; kept, it will be tried again when \
             the relay delivers it again (attempt 2)",
            "no_session",
            Outcome::Kept,
        ),
        (
            DecryptFailure::Lost {
                cause: Box::new(DecryptFailure::Group(GroupRefusal::NoSenderKey)),
                attempts: 8,
                hours: 25,
            },
            "a message was lost: it failed 8 times over 25 hours and was given up (group message \
             before its sender key)",
            "group_no_sender_key",
            Outcome::Lost,
        ),
    ];
    let groups: Vec<(GroupRefusal, String, &str)> = vec![
        (
            GroupRefusal::SenderUnknown,
            "group message from a sender whose keys have not arrived".into(),
            "group_sender_unknown",
        ),
        (
            GroupRefusal::NotPinnedIdentity,
            "group message sealed by another identity than the member's pinned one".into(),
            "group_not_pinned_identity",
        ),
        (
            GroupRefusal::NotGroupMessage,
            "not a group message".into(),
            "group_not_group_message",
        ),
        (
            GroupRefusal::UnknownGroup,
            "group message for a group not joined yet".into(),
            "group_unknown_group",
        ),
        (
            GroupRefusal::GroupLeft,
            "group message for a group we left".into(),
            "group_left",
        ),
        (
            GroupRefusal::NotMember,
            "group message from someone who is not a member".into(),
            "group_not_member",
        ),
        (
            GroupRefusal::NoSenderKey,
            "group message before its sender key".into(),
            "group_no_sender_key",
        ),
        (
            GroupRefusal::Unopenable(GroupOpenFailure::NotGroupMessage),
            "group message refused: not a group message".into(),
            "group_unopenable",
        ),
        (
            GroupRefusal::Unopenable(GroupOpenFailure::Refused(GroupError::WrongSender)),
            format!("group message refused: {}", GroupError::WrongSender),
            "group_unopenable",
        ),
        (
            GroupRefusal::Undecodable(PayloadError::Truncated),
            format!("undecodable group message: {}", PayloadError::Truncated),
            "group_undecodable",
        ),
        (
            GroupRefusal::SenderMismatch,
            "group message claims another sender than the one that sealed it".into(),
            "group_sender_mismatch",
        ),
        (
            GroupRefusal::MalformedChange(not_member.clone()),
            format!("malformed group change: {not_member}"),
            "group_malformed_change",
        ),
        (
            GroupRefusal::MalformedWelcome(not_member.clone()),
            format!("malformed group welcome: {not_member}"),
            "group_malformed_welcome",
        ),
        (
            GroupRefusal::SenderKeyUnknownGroup,
            "sender key for a group not joined yet".into(),
            "group_sender_key_unknown_group",
        ),
        (
            GroupRefusal::SenderKeyFromNonMember,
            "sender key from someone not a member".into(),
            "group_sender_key_from_non_member",
        ),
        (
            GroupRefusal::SenderKeyRefused(crate::GroupFailure::NotAMember),
            "you are no longer a member of this group".into(),
            "group_sender_key_refused",
        ),
        (
            GroupRefusal::ChangeByStranger,
            "a change by someone we do not know".into(),
            "group_change_by_stranger",
        ),
        (
            GroupRefusal::ChangeUnknownGroup,
            "change for a group not joined yet".into(),
            "group_change_unknown_group",
        ),
        (
            GroupRefusal::CreateRefused(not_member.clone()),
            format!("group refused: {not_member}"),
            "group_create_refused",
        ),
        (
            GroupRefusal::NotInNewGroup,
            "a new group we are not in".into(),
            "group_not_in_new_group",
        ),
        (
            GroupRefusal::ChangeKept(not_member.clone()),
            format!("group change kept: {not_member}"),
            "group_change_kept",
        ),
        (
            GroupRefusal::ChangeRefused(not_member.clone()),
            format!("group change refused: {not_member}"),
            "group_change_refused",
        ),
        (
            GroupRefusal::WelcomeFromNonAdmin,
            "group welcome refused: a group we left or were removed from, and the sender was not \
             its admin"
                .into(),
            "group_welcome_from_non_admin",
        ),
        (
            GroupRefusal::WelcomeRefused(not_member.clone()),
            format!("group welcome refused: {not_member}"),
            "group_welcome_refused",
        ),
    ];
    let mut codes = std::collections::HashSet::new();
    for (reason, words, code, outcome) in &table {
        assert_eq!(reason.to_string(), *words, "{reason:?}");
        assert_eq!(reason.code(), *code, "{reason:?}");
        assert_eq!(reason.outcome(), *outcome, "{reason:?}");
        if !matches!(
            reason,
            DecryptFailure::Kept { .. } | DecryptFailure::Lost { .. }
        ) {
            assert!(codes.insert(*code), "{code} names two reasons");
        }
    }
    let mut group_codes = std::collections::HashMap::new();
    for (refusal, words, code) in groups {
        let kind = std::mem::discriminant(&refusal);
        let reason = DecryptFailure::Group(refusal);
        assert_eq!(reason.to_string(), words, "{reason:?}");
        assert_eq!(reason.code(), code, "{reason:?}");
        assert_eq!(reason.outcome(), Outcome::Rejected);
        assert!(!codes.contains(code), "{code} names two reasons");
        assert_eq!(
            *group_codes.entry(code).or_insert(kind),
            kind,
            "{code} names two reasons"
        );
    }
    assert_eq!(
        [Outcome::Rejected, Outcome::Kept, Outcome::Lost].map(Outcome::code),
        ["rejected", "kept", "lost"]
    );
    // Every code is in the schema scripts read (docs/CLI.md).
    let schema = include_str!("../../../docs/CLI.md");
    for code in codes.iter().chain(group_codes.keys()) {
        assert!(
            schema.contains(&format!("`{code}`")),
            "reason_code {code} is not in docs/CLI.md"
        );
    }
    let refused = SendFailure::Refused(ErrorCode::UnknownRecipient);
    assert_eq!(refused.to_string(), ErrorCode::UnknownRecipient.to_string());
    assert_eq!(refused.code(), "refused");
}

#[test]
fn a_connection_end_reads_as_the_ended_error_and_is_typed() {
    let closed = ConnectionState::Closed {
        reason: Ended::LoggedOut,
    };
    assert_eq!(closed.ended_because(), Some(Ended::LoggedOut));
    assert_eq!(
        Ended::LoggedOut.to_string(),
        "this data dir is logged out; log in again to use it"
    );
    assert_eq!(
        ConnectionState::Replaced.ended_because(),
        Some(Ended::Replaced)
    );
    assert_eq!(
        Ended::Replaced.to_string(),
        "another connection for this account replaced this one"
    );
    let codes = [
        (Ended::LoggedOut, "logged_out"),
        (Ended::UsedElsewhere, "used_elsewhere"),
        (
            Ended::SessionRefused {
                code: ErrorCode::AuthFailed,
            },
            "session_refused",
        ),
        (
            Ended::UnsupportedVersion {
                relay_says: "v9".into(),
            },
            "unsupported_version",
        ),
        (Ended::Replaced, "replaced"),
    ];
    let schema = include_str!("../../../docs/CLI.md");
    for (ended, code) in codes {
        assert_eq!(ended.code(), code, "{ended:?}");
        assert!(
            schema.contains(&format!("`\"{code}\"`")),
            "{code} not in docs/CLI.md"
        );
    }
    // A retry's cause is the failure itself, shared: equal to its own
    // clone, not to another failure with the same words.
    let cause = SharedError::new(Error::Timeout(Duration::from_secs(1)));
    let state = ConnectionState::Reconnecting {
        retry_in: Duration::from_secs(2),
        cause: cause.clone(),
    };
    assert_eq!(state.clone(), state);
    assert_ne!(
        state,
        ConnectionState::Reconnecting {
            retry_in: Duration::from_secs(2),
            cause: SharedError::new(Error::Timeout(Duration::from_secs(1))),
        }
    );
    assert!(matches!(cause.error(), Error::Timeout(_)));
    assert_eq!(state.ended_because(), None);
}
