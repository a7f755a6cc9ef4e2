//! Decode-error vectors for the binary layers below the client payload
//! (`docs/test-vectors/decode_errors.json`): for each layer a list of
//! malformed inputs and the error its decoder must give, in the order of
//! checks docs/PROTOCOL.md specifies (4.4 ratchet message, 4.11 pairwise
//! message, 5.4 sealed envelope, 8.4/8.5 group message and distribution).
//! Frames, content, padding and the payload have theirs in wire.json,
//! content.json, padding.json and payload.json.
//!
//! An input is hex, or `{"fill": byte, "len": n}` for n copies of one byte.
//! Each input is built here from the spec's layout (lengths, offsets,
//! version bytes), and each expected error is written out by hand, so a
//! decoder that checks in another order or accepts the input fails. Run once
//! with UMBRA_REGENERATE_VECTORS=1 after a deliberate change.

mod common;

use common::{check_or_regenerate, hex};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};
use umbra_protocol::group::{
    GroupId, GroupMessageHeader, SignedDistribution, DISTRIBUTION_LEN, DISTRIBUTION_VERSION,
    MAX_GROUP_MESSAGE_LEN, MIN_GROUP_MESSAGE_LEN,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::PairwiseMessage;
use umbra_protocol::ratchet::RatchetMessage;
use umbra_protocol::sealed::{self, MAX_ENVELOPE_LEN};
use umbra_protocol::wire::{AccountId, Address};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Runs `decode` on every case, checks the error, and lists the cases.
fn layer<T, E: std::fmt::Debug>(
    decode: impl Fn(&[u8]) -> Result<T, E>,
    cases: Vec<(&'static str, Vec<u8>, &'static str)>,
) -> Value {
    let mut out = Vec::new();
    for (name, input, expected) in cases {
        let got = match decode(&input) {
            Ok(_) => panic!("{name}: accepted a malformed input"),
            Err(e) => format!("{e:?}"),
        };
        assert_eq!(got, expected, "{name}");
        // A long run of one byte is written as that byte and a length.
        let input = match input.first() {
            Some(&b) if input.len() > 256 && input.iter().all(|&x| x == b) => {
                json!({ "fill": hex([b]), "len": input.len() })
            }
            _ => json!(hex(&input)),
        };
        out.push(json!({ "name": name, "input": input, "error": expected }));
    }
    Value::Array(out)
}

/// 4.4: version (1) || header (178) || ciphertext || tag (16); at least
/// 195. Version 0x01 (the pre-PQ 40-byte header) is refused by name, and
/// so is a chunk slot (4.3) that breaks its layout.
fn ratchet_message() -> Value {
    let mut version_1 = vec![0u8; 195];
    version_1[0] = 0x01;
    let mut version_3 = vec![0u8; 195];
    version_3[0] = 0x03;
    // Version 0x02, header bytes 44.. are the chunk slot (message byte 45).
    let mut unknown_kind = vec![0u8; 195];
    unknown_kind[0] = 0x02;
    unknown_kind[45] = 0x03;
    let mut empty_slot_with_data = vec![0u8; 195];
    empty_slot_with_data[0] = 0x02;
    empty_slot_with_data[1 + 44 + 6] = 0x01;
    let mut chunk_index_past_end = vec![0u8; 195];
    chunk_index_past_end[0] = 0x02;
    chunk_index_past_end[45] = 0x02; // a ciphertext chunk: 9 of them
    chunk_index_past_end[46..50].copy_from_slice(&1u32.to_be_bytes());
    chunk_index_past_end[50] = 9;
    let mut chunk_epoch_0 = vec![0u8; 195];
    chunk_epoch_0[0] = 0x02;
    chunk_epoch_0[45] = 0x01;
    let mut last_chunk_padding = vec![0u8; 195];
    last_chunk_padding[0] = 0x02;
    last_chunk_padding[45] = 0x01; // key chunk 9 carries 32 bytes, then zeros
    last_chunk_padding[46..50].copy_from_slice(&1u32.to_be_bytes());
    last_chunk_padding[50] = 9;
    last_chunk_padding[1 + 44 + 6 + 32] = 0xff;
    layer(
        RatchetMessage::from_bytes,
        vec![
            ("empty", vec![], "Truncated { actual: 0 }"),
            (
                "one_short_of_195",
                vec![0x02; 194],
                "Truncated { actual: 194 }",
            ),
            ("version_1", version_1, "UnsupportedVersion(1)"),
            ("version_3", version_3, "UnsupportedVersion(3)"),
            ("version_0_long", vec![0x00; 300], "UnsupportedVersion(0)"),
            (
                "chunk_kind_3",
                unknown_kind,
                "MalformedChunk(UnknownKind(3))",
            ),
            (
                "empty_slot_with_data",
                empty_slot_with_data,
                "MalformedChunk(NonZeroPadding)",
            ),
            (
                "ciphertext_chunk_index_9",
                chunk_index_past_end,
                "MalformedChunk(OutOfRange)",
            ),
            ("chunk_epoch_0", chunk_epoch_0, "MalformedChunk(OutOfRange)"),
            (
                "last_key_chunk_padding",
                last_chunk_padding,
                "MalformedChunk(NonZeroPadding)",
            ),
        ],
    )
}

/// 4.11: type byte, then a ratchet message (plain) or the pre-key fields.
fn pairwise_message() -> Value {
    let identity = IdentityKeyPair::generate(&mut rng(1)).public().to_bytes();
    let base_key = SecretKey::generate(&mut rng(2)).public_key();
    let mut prekey_head = vec![0x01];
    prekey_head.extend_from_slice(&identity);
    prekey_head.extend_from_slice(base_key.as_bytes());
    prekey_head.extend_from_slice(&7u32.to_be_bytes());
    let mut bad_tag = prekey_head.clone();
    bad_tag.push(0x03);
    bad_tag.extend_from_slice(&[0x01; 61]);
    let mut short_ratchet = prekey_head.clone();
    short_ratchet.push(0x00);
    short_ratchet.extend_from_slice(&[0x01; 20]);
    let mut plain_short = vec![0x02];
    plain_short.extend_from_slice(&[0x01; 10]);
    layer(
        PairwiseMessage::from_bytes,
        vec![
            ("empty", vec![], "Malformed(\"empty message\")"),
            (
                "unknown_type_7f",
                vec![0x7f; 80],
                "Malformed(\"unknown message type\")",
            ),
            (
                "plain_with_short_ratchet_message",
                plain_short,
                "RatchetEncoding(Truncated { actual: 10 })",
            ),
            (
                "prekey_cut_inside_identity",
                prekey_head[..100].to_vec(),
                "Malformed(\"truncated pre-key message\")",
            ),
            (
                "prekey_without_extra_tag",
                prekey_head.clone(),
                "Malformed(\"truncated pre-key message\")",
            ),
            (
                "prekey_unknown_extra_tag_3",
                bad_tag,
                "Malformed(\"unknown extra prekey tag\")",
            ),
            (
                "prekey_short_ratchet_message",
                short_ratchet,
                "RatchetEncoding(Truncated { actual: 20 })",
            ),
        ],
    )
}

/// 5.2/5.4: version (1) || E (32) || C1 (148 + 16) || C2 (inner + 16).
fn sealed_envelope() -> Value {
    let recipient = IdentityKeyPair::generate(&mut rng(3));
    let sender = IdentityKeyPair::generate(&mut rng(4));
    let sender_address = Address::primary(AccountId::from_bytes([0x5a; 16]));
    let valid = sealed::seal(
        &sender,
        &sender_address,
        &recipient.public(),
        b"inner bytes",
        &mut rng(5),
    )
    .expect("seals");
    assert!(
        sealed::open(&recipient, &valid).is_ok(),
        "the base envelope opens"
    );
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = valid.clone();
        f(&mut v);
        v
    };
    let open = |bytes: &[u8]| sealed::open(&recipient, bytes);
    let cases = vec![
        ("one_short_of_213", vec![0x01; 212], "TooShort { len: 212 }"),
        (
            "over_the_maximum",
            vec![0x01; MAX_ENVELOPE_LEN + 1],
            "TooLong { len: 73942 }",
        ),
        ("version_2", with(&|v| v[0] = 0x02), "UnsupportedVersion(2)"),
        (
            "ephemeral_all_zero",
            with(&|v| v[1..33].fill(0)),
            "LowOrderEphemeral",
        ),
        (
            "sender_layer_flipped",
            with(&|v| v[40] ^= 0x01),
            "SenderLayerUndecryptable",
        ),
        (
            "inner_layer_flipped",
            with(&|v| *v.last_mut().unwrap() ^= 0x01),
            "InnerLayerUndecryptable",
        ),
        (
            "cut_by_one_byte",
            valid[..valid.len() - 1].to_vec(),
            "InnerLayerUndecryptable",
        ),
    ];
    json!({
        "recipient_x25519_secret": hex(recipient.dh_secret().to_bytes()),
        "recipient_public_identity": hex(recipient.public().to_bytes()),
        "valid_envelope": hex(&valid),
        "cases": layer(open, cases),
    })
}

/// 8.4 group message header and 8.5 distribution (exactly 177 bytes),
/// verified as from `sender_public_identity` for group `expected_group`.
fn group() -> Value {
    let mut version_1 = vec![0u8; MIN_GROUP_MESSAGE_LEN];
    version_1[0] = 0x01;
    let messages = layer(
        GroupMessageHeader::parse,
        vec![
            ("empty", vec![], "BadMessageLength { len: 0 }"),
            (
                "one_short_of_minimum",
                vec![0x02; MIN_GROUP_MESSAGE_LEN - 1],
                "BadMessageLength { len: 128 }",
            ),
            (
                "one_over_maximum",
                vec![0x02; MAX_GROUP_MESSAGE_LEN + 1],
                "BadMessageLength { len: 65666 }",
            ),
            ("version_1", version_1, "UnsupportedVersion(1)"),
        ],
    );
    let sender = IdentityKeyPair::generate(&mut rng(0x8d));
    let group = GroupId([0x61; 32]);
    let valid_shape = |group_byte: u8| {
        let mut d = vec![0u8; DISTRIBUTION_LEN];
        d[0] = DISTRIBUTION_VERSION;
        d[1..33].fill(group_byte);
        d
    };
    let mut version_1 = valid_shape(0x61);
    version_1[0] = 0x01;
    let verify = |bytes: &[u8]| SignedDistribution::verify(bytes, &sender.public(), &group);
    let distributions = layer(
        verify,
        vec![
            (
                "176_bytes",
                vec![0x02; 176],
                "BadDistributionLength { len: 176 }",
            ),
            (
                "178_bytes",
                vec![0x02; 178],
                "BadDistributionLength { len: 178 }",
            ),
            ("version_1", version_1, "UnsupportedVersion(1)"),
            ("other_group", valid_shape(0x62), "WrongGroup"),
            (
                "zero_signature",
                valid_shape(0x61),
                "BadDistributionSignature",
            ),
        ],
    );
    json!({
        "group_message_header": messages,
        "sender_key_distribution": distributions,
        "sender_key_distribution_verified_with": {
            "sender_public_identity": hex(sender.public().to_bytes()),
            "expected_group": hex(group.0),
        },
    })
}

fn vectors() -> Value {
    json!({
        "description": "Malformed inputs per binary layer and the error (Rust Debug form of the layer's error type) each decoder must return; checks run in the order docs/PROTOCOL.md gives. Sealed cases open with the listed recipient key.",
        "ratchet_message": ratchet_message(),
        "pairwise_message": pairwise_message(),
        "sealed_envelope": sealed_envelope(),
        "group": group(),
    })
}

#[test]
fn decode_error_vectors() {
    check_or_regenerate("decode_errors.json", &vectors());
}
