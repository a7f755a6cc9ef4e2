//! The outbox: sealed envelopes waiting for the relay to accept them.
//!
//! An entry is one message to one contact: the envelopes of that message,
//! one per device of the contact's held device list (docs/PROTOCOL.md
//! §15.3), each sealed with that device's own pairwise session. It is
//! written in the same store transaction as the sessions that produced it,
//! before any envelope leaves the client. After a crash or while offline,
//! the same bytes are sent again — never a re-encryption, which would use
//! the same message key for a second plaintext. An envelope leaves the
//! entry only when the relay's `SendResult` settled it (accepted, or
//! refused for good); the entry is deleted when none is left, so "sent"
//! means the relay accepted every device's envelope, and a device the relay
//! refused is remembered until the entry finishes and is reported then.
//!
//! Must never: hold plaintext, drop an envelope before the relay's answer
//! for it, or lose a device's refusal.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use umbra_protocol::wire::{DeviceId, ErrorCode};

use crate::MessageId;

/// One device's envelope of an outbox entry.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DeviceEnvelope {
    /// The recipient device (of the entry's account).
    pub(crate) device: u32,
    /// The sealed envelope, exactly as it will be sent.
    #[serde(with = "serde_bytes")]
    pub(crate) envelope: Vec<u8>,
}

/// A device whose envelope the relay refused for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceRefusal {
    pub(crate) device: u32,
    /// The refusal's wire code (`ErrorCode as u16`).
    pub(crate) code: u16,
}

impl DeviceRefusal {
    pub(crate) fn new(device: DeviceId, code: ErrorCode) -> Self {
        Self {
            device: device.0,
            code: code as u16,
        }
    }

    /// The refusal's code (a code this version does not know reads as
    /// `Internal`: the store was written by a newer version).
    pub(crate) fn code(&self) -> ErrorCode {
        ErrorCode::from_u16(self.code).unwrap_or(ErrorCode::Internal)
    }
}

/// One queued message (stored sealed, kind `Outbox`, slot = u64be sequence).
#[derive(Clone)]
pub(crate) struct OutboxEntry {
    /// Our message id, to update history and emit events.
    pub(crate) id: MessageId,
    /// Recipient account id bytes.
    pub(crate) to_account: [u8; 16],
    /// Recipient username at the time of sending (for events).
    pub(crate) to_username: String,
    /// The envelopes the relay has not settled yet, one per device.
    pub(crate) envelopes: Vec<DeviceEnvelope>,
    /// Local time it was queued, Unix milliseconds.
    pub(crate) queued_at_ms: u64,
    /// Whether this is a user-visible message (receipts are not in history).
    pub(crate) visible: bool,
    /// How many devices' envelopes the relay accepted so far.
    pub(crate) accepted: u32,
    /// The devices whose envelopes the relay refused for good so far.
    pub(crate) refused: Vec<DeviceRefusal>,
}

/// The stored form's format byte. A store written before devices holds
/// entries without it: their first byte is `0x10`, the length of the
/// message id (postcard's byte-string prefix), which no format byte is.
const FORMAT_DEVICES: u8 = 1;
/// The first byte of an entry written before devices (see above).
const LEGACY_FIRST_BYTE: u8 = 0x10;

/// The fields after the format byte (postcard, in order).
#[derive(Serialize, Deserialize)]
struct StoredDevices {
    id: MessageId,
    to_account: [u8; 16],
    to_username: String,
    envelopes: Vec<DeviceEnvelope>,
    queued_at_ms: u64,
    visible: bool,
    accepted: u32,
    refused: Vec<DeviceRefusal>,
}

/// An entry written before devices, after its id: one envelope, for
/// device 1. Read only.
#[derive(Deserialize)]
struct StoredLegacyRest {
    to_account: [u8; 16],
    to_username: String,
    #[serde(with = "serde_bytes")]
    envelope: Vec<u8>,
    queued_at_ms: u64,
    visible: bool,
}

impl Serialize for OutboxEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&FORMAT_DEVICES)?;
        tuple.serialize_element(&StoredDevices {
            id: self.id,
            to_account: self.to_account,
            to_username: self.to_username.clone(),
            envelopes: self.envelopes.clone(),
            queued_at_ms: self.queued_at_ms,
            visible: self.visible,
            accepted: self.accepted,
            refused: self.refused.clone(),
        })?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for OutboxEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Up to three elements: the format byte and the fields, or the
        // legacy id's length byte, its 16 bytes and the other fields.
        deserializer.deserialize_tuple(3, EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = OutboxEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an outbox entry")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OutboxEntry, A::Error> {
        let missing = || de::Error::custom("truncated outbox entry");
        let first: u8 = seq.next_element()?.ok_or_else(missing)?;
        match first {
            FORMAT_DEVICES => {
                let s: StoredDevices = seq.next_element()?.ok_or_else(missing)?;
                Ok(OutboxEntry {
                    id: s.id,
                    to_account: s.to_account,
                    to_username: s.to_username,
                    envelopes: s.envelopes,
                    queued_at_ms: s.queued_at_ms,
                    visible: s.visible,
                    accepted: s.accepted,
                    refused: s.refused,
                })
            }
            LEGACY_FIRST_BYTE => {
                // The 16 id bytes follow the length byte just read.
                let id: [u8; 16] = seq.next_element()?.ok_or_else(missing)?;
                let rest: StoredLegacyRest = seq.next_element()?.ok_or_else(missing)?;
                Ok(OutboxEntry {
                    id: MessageId(id),
                    to_account: rest.to_account,
                    to_username: rest.to_username,
                    envelopes: vec![DeviceEnvelope {
                        device: DeviceId::PRIMARY.0,
                        envelope: rest.envelope,
                    }],
                    queued_at_ms: rest.queued_at_ms,
                    visible: rest.visible,
                    accepted: 0,
                    refused: Vec::new(),
                })
            }
            other => Err(de::Error::custom(format_args!(
                "unknown outbox entry format {other}"
            ))),
        }
    }
}

/// A message still waiting for the relay, as
/// [`Client::pending_outbox`](crate::Client::pending_outbox) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    /// Our message id.
    pub id: MessageId,
    /// The recipient's username.
    pub to: String,
    /// When it was queued, Unix milliseconds.
    pub queued_at_ms: u64,
    /// SHA-256 of the sealed envelope that will be (re)sent: lets a caller
    /// check that a resend carries the very same ciphertext. When the
    /// message still waits for several devices, the SHA-256 of their
    /// envelopes' SHA-256 digests in device order.
    pub envelope_sha256: [u8; 32],
    /// The devices whose envelopes still wait.
    pub devices: Vec<u32>,
}

impl OutboxEntry {
    pub(crate) fn describe(&self) -> PendingMessage {
        let envelope_sha256 = match self.envelopes.as_slice() {
            [one] => Sha256::digest(&one.envelope).into(),
            several => {
                let mut all = Sha256::new();
                for e in several {
                    all.update(Sha256::digest(&e.envelope));
                }
                all.finalize().into()
            }
        };
        PendingMessage {
            id: self.id,
            to: self.to_username.clone(),
            queued_at_ms: self.queued_at_ms,
            envelope_sha256,
            devices: self.envelopes.iter().map(|e| e.device).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The stored form: an entry written before devices still reads, as one
    //! envelope for device 1.

    use super::*;

    #[derive(Serialize)]
    struct Legacy {
        id: MessageId,
        to_account: [u8; 16],
        to_username: String,
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
        queued_at_ms: u64,
        visible: bool,
    }

    #[test]
    fn an_entry_written_before_devices_reads_as_one_for_device_1() {
        let legacy = Legacy {
            id: MessageId([7; 16]),
            to_account: [9; 16],
            to_username: "bob".into(),
            envelope: vec![1, 2, 3],
            queued_at_ms: 42,
            visible: true,
        };
        let bytes = postcard::to_stdvec(&legacy).expect("encode");
        assert_eq!(bytes[0], LEGACY_FIRST_BYTE);
        let entry: OutboxEntry = postcard::from_bytes(&bytes).expect("reads");
        assert_eq!(entry.id, MessageId([7; 16]));
        assert_eq!(entry.to_account, [9; 16]);
        assert_eq!(entry.to_username, "bob");
        assert_eq!(entry.envelopes.len(), 1);
        assert_eq!(entry.envelopes[0].device, 1);
        assert_eq!(entry.envelopes[0].envelope, [1, 2, 3]);
        assert_eq!((entry.queued_at_ms, entry.visible), (42, true));
        assert!(entry.refused.is_empty());
    }

    #[test]
    fn an_entry_round_trips_and_an_unknown_format_is_refused() {
        let entry = OutboxEntry {
            id: MessageId([1; 16]),
            to_account: [2; 16],
            to_username: "carol".into(),
            envelopes: vec![
                DeviceEnvelope {
                    device: 1,
                    envelope: vec![5; 3],
                },
                DeviceEnvelope {
                    device: 4,
                    envelope: vec![6; 2],
                },
            ],
            queued_at_ms: 7,
            visible: false,
            accepted: 1,
            refused: vec![DeviceRefusal::new(DeviceId(3), ErrorCode::NoPreKeys)],
        };
        let bytes = postcard::to_stdvec(&entry).expect("encode");
        assert_eq!(bytes[0], FORMAT_DEVICES);
        let back: OutboxEntry = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(postcard::to_stdvec(&back).expect("encode"), bytes);
        assert_eq!(back.refused[0].code(), ErrorCode::NoPreKeys);
        let mut unknown = bytes.clone();
        unknown[0] = 2;
        assert!(postcard::from_bytes::<OutboxEntry>(&unknown).is_err());
    }
}
