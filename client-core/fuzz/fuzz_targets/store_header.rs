//! The local store's header (docs/PROTOCOL.md §12.9), the only unsealed
//! bytes of a store, parsed before anything authenticates it: any bytes
//! decode or are refused, never a panic, and the Argon2 parameters of an
//! accepted header are within the bounds (checked by the decoder). The
//! format is canonical, so an accepted header is its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_client_core::fuzzing::reencode_header;

fuzz_target!(|data: &[u8]| {
    if let Some(encoded) = reencode_header(data) {
        assert!(
            encoded == data,
            "an accepted header is not its own encoding"
        );
    }
});
