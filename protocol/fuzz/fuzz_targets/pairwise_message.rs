//! The inner bytes of a sealed envelope (docs/PROTOCOL.md §4.11): pre-key,
//! plain and ephemeral messages. Any bytes decode or give a named error,
//! never a panic; a decoded message is its one canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_protocol::pairwise::PairwiseMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = PairwiseMessage::from_bytes(data) {
        assert_canonical("pairwise message", data, &message.to_bytes());
    }
});
