//! Group state snapshots (docs/PROTOCOL.md §8.7), as a welcome carries them
//! and a client stores them: any bytes parse to a state that keeps every
//! invariant, or a named error, never a panic; a parsed state is its one
//! canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::assert_canonical;
use umbra_protocol::group::GroupState;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = GroupState::from_bytes(data) {
        assert_canonical("group state", data, &state.to_bytes());
    }
});
