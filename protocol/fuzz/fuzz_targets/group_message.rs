//! Group messages (docs/PROTOCOL.md §8) as a member's client meets them:
//! the input is the group message, sealed by alice to bob as inner type
//! 0x04 (so the sealed layer passes), opened, and decrypted by bob's
//! receiver for alice's sender key (docs/test-vectors/group.json), so the
//! vector messages decrypt and their mutations reach the header, skip,
//! signature and AEAD checks. Never a panic, and a refused message leaves
//! the receiver exactly as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::group::{GroupMessage, GroupMessageHeader};
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::sealed::{self, MAX_INNER_LEN};

/// Inner type byte of a group message in a sealed envelope (§4.11).
const GROUP_INNER_TYPE: u8 = 0x04;

fuzz_target!(|data: &[u8]| {
    let _ = GroupMessageHeader::parse(data);
    let decoded = GroupMessage::from_bytes(data);
    if let Ok(message) = &decoded {
        assert!(
            message.as_bytes() == data,
            "a group message keeps its bytes"
        );
    }
    if data.len() >= MAX_INNER_LEN {
        return;
    }
    let fixture = umbra_fuzz::group::messages();
    let inner = [&[GROUP_INNER_TYPE], data].concat();
    let envelope = sealed::seal(
        &fixture.alice,
        &umbra_fuzz::group::ALICE_ADDR,
        &fixture.bob.public(),
        &inner,
        &mut umbra_fuzz::rng(),
    )
    .expect("sealing a bounded inner message");
    let Ok(inbound) = InboundEnvelope::open(&fixture.bob, &envelope) else {
        return;
    };
    assert_eq!(inbound.group_message().is_some(), decoded.is_ok());
    let mut receiver = fixture.receiver();
    let before = receiver.pickle().encode();
    if receiver.decrypt(&inbound).is_err() {
        assert!(
            *before == *receiver.pickle().encode(),
            "a refused message changed the receiver"
        );
    }
});
