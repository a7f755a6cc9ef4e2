//! The client payload (docs/PROTOCOL.md §12.1), what a pairwise message
//! decrypts to after unpadding, and the padding itself (§6): any bytes
//! decode or give a named error, never a panic; a decoded payload is its
//! canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_protocol::padding;
use umbra_protocol::payload::Payload;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = Payload::decode(data) {
        let again = payload.encode().expect("a decoded payload re-encodes");
        assert_canonical("payload", data, &again);
    }
    if let Ok(content) = padding::unpad(data) {
        assert!(
            content.len() < data.len(),
            "unpad did not remove its marker"
        );
    }
});
