//! `Debug` for the frames, written by hand so that no `{:?}` of a frame, at
//! any log level, prints what the relay and the clients must never log:
//! usernames, OPAQUE messages, session tokens, envelopes, account ids and
//! addresses. A frame shows its variant name and the fields that are pure
//! protocol bookkeeping (request ids, sequence numbers, error codes and
//! the relay's reason text, prekey counts, per-envelope outcomes).
//!
//! Must never: print a field not on that list. A variant added to a frame
//! type without a line here prints as `Name { <redacted> }`, never its contents.

use std::fmt;

use super::client_frame::{ClientFrame, OutgoingEnvelope, Request};
use super::relay_frame::{RelayFrame, Response};

impl fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFrame")
            .field("request_id", &self.request_id)
            .field("request", &self.request)
            .finish()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Ack { seqs } => f.debug_struct("Ack").field("seqs", seqs).finish(),
            Request::Logout { everywhere } => f
                .debug_struct("Logout")
                .field("everywhere", everywhere)
                .finish(),
            Request::Send { messages } => f
                .debug_struct("Send")
                .field("messages", &messages.len())
                .finish_non_exhaustive(),
            Request::PreKeyCount
            | Request::KemPreKeyCount
            | Request::DeleteAccount
            | Request::Ping
            | Request::ListDevices
            | Request::LinkCreate => f.write_str(self.kind()),
            _ => redacted(f, self.kind()),
        }
    }
}

/// `Name { <redacted> }`: the variant, none of its fields.
fn redacted(f: &mut fmt::Formatter<'_>, kind: &str) -> fmt::Result {
    write!(f, "{kind} {{ <redacted> }}")
}

impl fmt::Debug for OutgoingEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingEnvelope")
            .field("len", &self.envelope.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RelayFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayFrame::Response {
                request_id,
                response,
            } => f
                .debug_struct("Response")
                .field("request_id", request_id)
                .field("response", response)
                .finish(),
            RelayFrame::Deliver {
                seq,
                envelope,
                received_at_ms,
            } => f
                .debug_struct("Deliver")
                .field("seq", seq)
                .field("len", &envelope.len())
                .field("received_at_ms", received_at_ms)
                .finish_non_exhaustive(),
            RelayFrame::QueueEmpty => f.write_str("QueueEmpty"),
            RelayFrame::EphemeralDeliver { payload } => f
                .debug_struct("EphemeralDeliver")
                .field("len", &payload.len())
                .finish_non_exhaustive(),
            RelayFrame::PreKeysLow { remaining } => f
                .debug_struct("PreKeysLow")
                .field("remaining", remaining)
                .finish(),
            RelayFrame::KemPreKeysLow { remaining } => f
                .debug_struct("KemPreKeysLow")
                .field("remaining", remaining)
                .finish(),
            RelayFrame::Closing { code, reason } => f
                .debug_struct("Closing")
                .field("code", code)
                .field("reason", reason)
                .finish(),
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Error {
                code,
                message,
                retry_after_secs,
            } => f
                .debug_struct("Error")
                .field("code", code)
                .field("message", message)
                .field("retry_after_secs", retry_after_secs)
                .finish(),
            Response::SendResult { results } => f
                .debug_struct("SendResult")
                .field("results", results)
                .finish(),
            Response::PreKeyCount {
                remaining,
                low_water,
            }
            | Response::KemPreKeyCount {
                remaining,
                low_water,
            } => f
                .debug_struct(self.kind())
                .field("remaining", remaining)
                .field("low_water", low_water)
                .finish(),
            Response::Ok | Response::Pong => f.write_str(self.kind()),
            _ => redacted(f, self.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, Address, SessionToken, Username};

    #[test]
    fn frames_debug_without_names_tokens_envelopes_or_ids() {
        let token = SessionToken::from_bytes([0xab; 32]);
        let account = AccountId::from_bytes([0xcd; 16]);
        let frames = [
            format!(
                "{:?}",
                ClientFrame {
                    request_id: 7,
                    request: Request::LoginStart {
                        username: Username::parse("zqsecretname").unwrap(),
                        opaque_request: vec![0xef; 40],
                    },
                }
            ),
            format!(
                "{:?}",
                Request::Send {
                    messages: vec![OutgoingEnvelope {
                        to: Address::primary(account),
                        envelope: b"zqenvelope".to_vec(),
                    }],
                }
            ),
            format!(
                "{:?}",
                RelayFrame::Response {
                    request_id: 7,
                    response: Response::LoginDone {
                        token,
                        account,
                        expires_at: 1,
                    },
                }
            ),
            format!(
                "{:?}",
                RelayFrame::Deliver {
                    seq: 3,
                    envelope: b"zqenvelope".to_vec(),
                    received_at_ms: 9,
                }
            ),
        ];
        for text in &frames {
            for secret in [
                "zqsecretname",
                "zqenvelope",
                "ab, ab",
                "abab",
                "cdcd",
                "239, 239",
            ] {
                assert!(!text.contains(secret), "{secret:?} in {text}");
            }
        }
        assert_eq!(
            frames[0],
            "ClientFrame { request_id: 7, request: LoginStart { <redacted> } }"
        );
        assert!(frames[3].contains("seq: 3"), "{}", frames[3]);
    }
}
