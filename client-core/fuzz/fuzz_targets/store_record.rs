//! The local store's record decoders (docs/PROTOCOL.md §12.9): the first
//! input byte is the record kind's stored number, the rest the record's
//! plaintext as the vault has it after opening. Any bytes decode or are
//! refused, never a panic, and a decoded record is written back in a form
//! that decodes to the same bytes again (postcard alone is not canonical,
//! so the check is that the store's own encoding is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_client_core::fuzzing::reencode_record;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, plain)) = data.split_first() else {
        return;
    };
    if let Some(once) = reencode_record(kind, plain) {
        let twice = reencode_record(kind, &once).expect("a re-encoded record decodes");
        assert!(once == twice, "kind {kind}: record encoding is not stable");
    }
});
