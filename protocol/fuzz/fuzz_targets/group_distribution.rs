//! Sender-key distributions as a member receives them in pairwise content
//! (docs/PROTOCOL.md §8): any bytes verify or give a named error, never a
//! panic. Checked against the sender and group of docs/test-vectors/
//! group.json, so the vector distribution verifies and its mutations reach
//! the signature check; a verified one builds a receiver that stores and
//! loads again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::group::{GroupReceiver, GroupReceiverPickle, SignedDistribution};

fuzz_target!(|data: &[u8]| {
    let fixture = umbra_fuzz::group::messages();
    let Ok(verified) = SignedDistribution::verify(data, &fixture.alice.public(), &fixture.group)
    else {
        return;
    };
    // Only alice signs for alice, and only for this group.
    assert!(SignedDistribution::verify(data, &fixture.bob.public(), &fixture.group).is_err());
    let receiver = GroupReceiver::new(verified);
    let stored = receiver.pickle().encode();
    let pickle = GroupReceiverPickle::decode(&stored).expect("a receiver pickle decodes");
    GroupReceiver::from_pickle(&pickle).expect("a receiver reloads");
});
