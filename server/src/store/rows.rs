//! Checked conversions between database column values and the relay's types.
//!
//! Both backends store ids as raw bytes and numbers as signed 64-bit
//! integers; this is the one place that turns them back into typed values.
//!
//! Must never: panic or silently truncate on a stored value that does not
//! fit; a bad row is reported as [`StoreError::Corrupt`].

use umbra_wire::keys::PublicKey;
use umbra_wire::{AccountId, Address, DeviceId, Username, SIGNATURE_LEN};

use super::{StoreError, UnixMillis, UnixSeconds};

/// The name under which the OPAQUE `ServerSetup` is kept in `server_secrets`.
pub(crate) const OPAQUE_SERVER_SETUP: &str = "opaque_server_setup";

/// The name under which the fingerprint of the relay's OPAQUE key file is
/// kept in `server_secrets` (not a secret: a hash of uniformly random bytes).
pub(crate) const OPAQUE_KEY_FINGERPRINT: &str = "opaque_key_fingerprint";

/// The PostgreSQL NOTIFY channel for queue events.
pub(crate) const QUEUE_CHANNEL: &str = "umbra_queue";

pub(crate) fn account_id(bytes: &[u8]) -> Result<AccountId, StoreError> {
    AccountId::from_slice(bytes).ok_or(StoreError::Corrupt("account id is not 16 bytes"))
}

pub(crate) fn device_id(value: i64) -> Result<DeviceId, StoreError> {
    u32::try_from(value)
        .map(DeviceId)
        .map_err(|_| StoreError::Corrupt("device id out of range"))
}

pub(crate) fn address(account: &[u8], device: i64) -> Result<Address, StoreError> {
    Ok(Address {
        account: account_id(account)?,
        device: device_id(device)?,
    })
}

pub(crate) fn unsigned(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(what))
}

pub(crate) fn unix(value: i64) -> Result<UnixSeconds, StoreError> {
    unsigned(value, "negative timestamp")
}

pub(crate) fn unix_ms(value: i64) -> Result<UnixMillis, StoreError> {
    unsigned(value, "negative timestamp")
}

pub(crate) fn key_id(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt("prekey id out of range"))
}

pub(crate) fn chunk_count(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt("blob chunk count out of range"))
}

pub(crate) fn public_key(bytes: &[u8]) -> Result<PublicKey, StoreError> {
    PublicKey::from_slice(bytes).map_err(|_| StoreError::Corrupt("public key is not 32 bytes"))
}

/// A stored ML-KEM encapsulation key: opaque bytes, but of exactly the one
/// length the relay accepted (`KEM_PREKEY_KEY_LEN`).
pub(crate) fn kem_public_key(bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if bytes.len() == umbra_wire::KEM_PREKEY_KEY_LEN {
        Ok(bytes)
    } else {
        Err(StoreError::Corrupt("KEM public key is not 1184 bytes"))
    }
}

pub(crate) fn signature(bytes: &[u8]) -> Result<[u8; SIGNATURE_LEN], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("signature is not 64 bytes"))
}

pub(crate) fn username(text: String) -> Result<Username, StoreError> {
    Username::parse_canonical(&text).map_err(|_| StoreError::Corrupt("stored username invalid"))
}

/// `"<32 hex account>:<device>:<seq>"`, the NOTIFY payload (never ciphertext).
pub(crate) fn notify_payload(recipient: Address, seq: u64) -> String {
    format!(
        "{}:{}:{}",
        recipient.account.to_hex(),
        recipient.device.0,
        seq
    )
}

/// Longest NOTIFY payload a batch's notices are packed into: PostgreSQL
/// refuses 8000 bytes or more, and one entry is at most 64 bytes.
pub(crate) const MAX_NOTIFY_PAYLOAD: usize = 7_900;

/// The NOTIFY payloads announcing one commit: one entry per recipient (its
/// highest committed seq: a listener wakes the connection for anything up
/// to it), entries joined by `,` and packed into as few payloads as fit
/// [`MAX_NOTIFY_PAYLOAD`]: one NOTIFY per commit for any ordinary batch,
/// instead of one per message.
pub(crate) fn notify_payloads(committed: impl IntoIterator<Item = (Address, u64)>) -> Vec<String> {
    let mut highest: std::collections::BTreeMap<Address, u64> = std::collections::BTreeMap::new();
    for (recipient, seq) in committed {
        let entry = highest.entry(recipient).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    let mut payloads: Vec<String> = Vec::new();
    for (recipient, seq) in highest {
        let entry = notify_payload(recipient, seq);
        match payloads.last_mut() {
            Some(last) if last.len() + 1 + entry.len() <= MAX_NOTIFY_PAYLOAD => {
                last.push(',');
                last.push_str(&entry);
            }
            _ => payloads.push(entry),
        }
    }
    payloads
}

/// Inverse of [`notify_payloads`] for one payload (a single entry is the
/// older one-message form); `None` if any entry is malformed, so a forged
/// payload is dropped whole.
pub(crate) fn parse_notify_list(payload: &str) -> Option<Vec<(Address, u64)>> {
    payload.split(',').map(parse_notify_payload).collect()
}

/// Inverse of [`notify_payload`]; `None` for anything malformed.
pub(crate) fn parse_notify_payload(payload: &str) -> Option<(Address, u64)> {
    let mut parts = payload.split(':');
    let account = AccountId::from_hex(parts.next()?)?;
    let device = DeviceId(parts.next()?.parse().ok()?);
    let seq = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((Address { account, device }, seq))
}
