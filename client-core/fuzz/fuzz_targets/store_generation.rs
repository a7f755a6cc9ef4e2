//! The local store's `Generation` record (kind 19, the rollback index of
//! docs/PROTOCOL.md §12.9): the plaintext as the vault has it after
//! opening, decoded as `Vault::unlock` does (postcard, then the index's
//! refusal of unguarded kinds). Any bytes decode or are refused, never a
//! panic; postcard and the index are not canonical (overlong varints, entry
//! order, a repeated entry), so the check is that the index's encoding
//! decodes again and is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_client_core::fuzzing::reencode_generation;

fuzz_target!(|data: &[u8]| {
    if let Some(once) = reencode_generation(data) {
        let twice = reencode_generation(&once).expect("a re-encoded index decodes");
        assert!(once == twice, "the index encoding is not stable");
    }
});
