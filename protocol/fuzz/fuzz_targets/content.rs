//! Decrypted content (docs/PROTOCOL.md §10): any bytes decode to content
//! within every limit or a named error, never a panic; accepted content is
//! its one canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_protocol::content;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = content::decode(data) {
        let again = content::encode(&value).expect("decoded content re-encodes");
        assert_canonical("content", data, &again);
    }
});
