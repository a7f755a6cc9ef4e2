//! Client frames as the relay reads them (docs/PROTOCOL.md §9.3): any bytes
//! decode to a frame or a named error, never a panic; an accepted frame is
//! its one canonical encoding; `peek_request_id` (read from frames that did
//! not decode, for the error reply) agrees with the decoder when it decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_wire::{decode_client, encode_client, peek_request_id};

fuzz_target!(|data: &[u8]| {
    let peeked = peek_request_id(data);
    if let Ok(frame) = decode_client(data) {
        assert_eq!(peeked, Some(frame.request_id), "peek disagrees with decode");
        let again = encode_client(&frame).expect("a decoded frame re-encodes");
        assert_canonical("client frame", data, &again);
        // The relay checks a request's limits after decoding it.
        let _ = frame.request.check_limits();
    }
});
