//! Fuzzed pairwise messages as Bob's client meets them: the input is the
//! inner message, sealed from Alice to Bob (so the sealed layer passes and
//! the ratchet sees it), then opened and handed to what the client calls
//! for its kind: `PairwiseSession::accept_classical` with Bob's prekeys for
//! a pre-key message (the fixture is classical, and `accept` would refuse
//! every `0x01` input before the code worth fuzzing), his session's
//! `decrypt` for a plain one and `open_ephemeral` for an ephemeral one. Parties: docs/test-vectors/pairwise.json session a
//! (see `umbra_fuzz::pairwise`). Never a panic, and no input may make the
//! ratchet skip further than its bound (MAX_SKIP) or store more skipped
//! keys than MAX_SKIPPED_KEYS: a pickle of the session after any decrypt
//! must load again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseMessage, PairwiseSession};
use umbra_protocol::sealed;
use umbra_protocol::sealed::MAX_INNER_LEN;

/// Ephemeral messages are checked against this clock: the vector's.
const NOW_MS: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INNER_LEN {
        return;
    }
    let fixture = umbra_fuzz::pairwise();
    let envelope = match sealed::seal(
        &fixture.alice,
        &umbra_fuzz::ALICE_ADDR,
        &fixture.bob.public(),
        data,
        &mut umbra_fuzz::rng(),
    ) {
        Ok(envelope) => envelope,
        Err(e) => panic!("sealing {} bytes failed: {e}", data.len()),
    };
    let Ok(inbound) = InboundEnvelope::open(&fixture.bob, &envelope) else {
        return;
    };
    match inbound.message() {
        PairwiseMessage::PreKey(_) => {
            if let Ok((session, _, _)) = PairwiseSession::accept_classical(
                &fixture.bob,
                &umbra_fuzz::BOB_ADDR,
                &inbound,
                &fixture.prekeys,
            ) {
                reload(&session);
            }
        }
        PairwiseMessage::Plain(_) => {
            let mut session = fixture.bob_session.clone();
            if session.decrypt(&inbound).is_ok() {
                reload(&session);
            }
        }
        PairwiseMessage::Ephemeral(_) => {
            let _ = fixture.bob_session.open_ephemeral(&inbound, NOW_MS);
        }
        // Group messages go to the sender's group receiver, never to a
        // session: the group_message target drives that.
        _ => {}
    }
});

/// A session the decoder let through must store and load again (the
/// pickle decoder enforces the bounds the live session must keep).
fn reload(session: &PairwiseSession) {
    if let Err(e) = PairwiseSession::from_pickle(&session.pickle()) {
        panic!("a session after decrypt does not reload: {e}");
    }
}
