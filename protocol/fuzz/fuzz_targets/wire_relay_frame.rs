//! Relay frames as a client reads them (docs/PROTOCOL.md §9): any bytes
//! decode to a frame or a named error (the version-rejection notice
//! included), never a panic; an accepted frame is its canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_wire::{decode_relay, encode_relay};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_relay(data) {
        let again = encode_relay(&frame).expect("a decoded frame re-encodes");
        assert_canonical("relay frame", data, &again);
    }
});
