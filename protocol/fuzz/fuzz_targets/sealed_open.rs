//! Sealed-sender envelopes opened by a fixed recipient (the one of
//! docs/test-vectors/sealed_sender.json case 1), first by the sealed layer
//! alone (§5) and then as the client does, decoding the pairwise message
//! inside (`InboundEnvelope::open`). Any bytes: an opened envelope or a
//! named error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::sealed;

fuzz_target!(|data: &[u8]| {
    let recipient = umbra_fuzz::sealed_recipient();
    let opened = sealed::open(recipient, data);
    let inbound = InboundEnvelope::open(recipient, data);
    // The pairwise layer only adds a decoder on top: it can refuse what the
    // sealed layer opened, never open what the sealed layer refused.
    if opened.is_err() {
        assert!(inbound.is_err(), "pairwise opened what sealed refused");
    }
});
