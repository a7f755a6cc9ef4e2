//! Test vectors for the signed device list (docs/PROTOCOL.md §15.2,
//! `docs/test-vectors/device_list.json`).
//!
//! The signed bytes are assembled here by hand from the §15.2 table and
//! signed with ed25519-dalek directly over §3.2's `u64be(len(label)) ||
//! label || msg`, never by the library's encoder; the library must produce
//! and accept exactly them. The identity is `IdentityKeyPair::generate` on
//! `ChaCha20Rng::from_seed([0x44; 32])` (its Ed25519 seed is the first 32
//! bytes, §3.3). Run once with UMBRA_REGENERATE_VECTORS=1 after a deliberate
//! change (see common/mod.rs).

mod common;

use common::{check_or_regenerate, hex};
use ed25519_dalek::{Signer, SigningKey};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::json;
use umbra_protocol::device_list::{sign_device_list, DeviceList, DeviceListError};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, DeviceId};

const LABEL: &[u8] = b"umbra/v1/devices/list";

fn by_hand(seed: &[u8; 32], account: [u8; 16], version: u64, devices: &[u32]) -> Vec<u8> {
    let mut body = vec![0x01];
    body.extend_from_slice(&account);
    body.extend_from_slice(&version.to_be_bytes());
    body.push(devices.len() as u8);
    for d in devices {
        body.extend_from_slice(&d.to_be_bytes());
    }
    let mut signed = (LABEL.len() as u64).to_be_bytes().to_vec();
    signed.extend_from_slice(LABEL);
    signed.extend_from_slice(&body);
    let sig = SigningKey::from_bytes(seed).sign(&signed);
    body.extend_from_slice(&sig.to_bytes());
    body
}

#[test]
fn device_list_vectors() {
    let identity = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x44; 32]));
    let mut seed = [0u8; 32];
    ChaCha20Rng::from_seed([0x44; 32]).fill_bytes(&mut seed);
    let account = [0xa1; 16];
    let mut lists = Vec::new();
    for (version, devices) in [(1u64, vec![1u32]), (2, vec![1, 2]), (7, vec![1, 3, 8])] {
        let expected = by_hand(&seed, account, version, &devices);
        let ids: Vec<DeviceId> = devices.iter().copied().map(DeviceId).collect();
        let made = sign_device_list(&identity, AccountId::from_bytes(account), version, ids)
            .expect("valid fields");
        assert_eq!(made.encode(), expected, "library encoding of v{version}");
        let decoded = DeviceList::decode(&expected).expect("decodes");
        decoded.verify(&identity.public()).expect("verifies");
        lists.push(json!({"version": version, "devices": devices, "hex": hex(&expected)}));
    }
    let good = by_hand(&seed, account, 2, &[1, 2]);
    let mut bad_sig = good.clone();
    *bad_sig.last_mut().expect("non-empty") ^= 1;
    let mut unsorted = by_hand(&seed, account, 2, &[2, 1]);
    let refusals = [
        (
            "truncated header",
            good[..25].to_vec(),
            DeviceListError::Truncated { len: 25 },
        ),
        (
            "format 2",
            {
                let mut b = good.clone();
                b[0] = 2;
                b
            },
            DeviceListError::UnknownFormat(2),
        ),
        (
            "version 0",
            by_hand(&seed, account, 0, &[1]),
            DeviceListError::ZeroVersion,
        ),
        (
            "count 0",
            by_hand(&seed, account, 2, &[]),
            DeviceListError::BadCount { count: 0 },
        ),
        (
            "one byte short",
            good[..good.len() - 1].to_vec(),
            DeviceListError::BadLength {
                actual: 97,
                expected: 98,
            },
        ),
        (
            "device 0",
            by_hand(&seed, account, 2, &[0, 1]),
            DeviceListError::ZeroDevice,
        ),
        (
            "not ascending",
            std::mem::take(&mut unsorted),
            DeviceListError::NotAscending,
        ),
    ];
    let mut refused = Vec::new();
    for (what, bytes, error) in refusals {
        assert_eq!(DeviceList::decode(&bytes), Err(error), "{what}");
        refused.push(json!({"what": what, "hex": hex(&bytes), "error": format!("{error:?}")}));
    }
    let flipped = DeviceList::decode(&bad_sig).expect("structure is fine");
    assert_eq!(
        flipped.verify(&identity.public()),
        Err(DeviceListError::BadSignature)
    );
    refused.push(
        json!({"what": "flipped signature bit", "hex": hex(&bad_sig), "error": "BadSignature"}),
    );
    check_or_regenerate(
        "device_list.json",
        &json!({
            "identity_seed": "ChaCha20Rng::from_seed([0x44; 32])",
            "identity_public": hex(identity.public().to_bytes()),
            "account": hex(account),
            "label": String::from_utf8_lossy(LABEL),
            "lists": lists,
            "refusals": refused,
        }),
    );
}
