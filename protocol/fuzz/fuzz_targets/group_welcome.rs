//! Group welcomes (docs/PROTOCOL.md §8.11), the snapshot and Add change a
//! new member receives. The input is `state length (u16be) || state ||
//! change`, the two encodings `Content::GroupWelcome` carries. Never a
//! panic; a welcome that parses is checked as the new member does (against
//! the Add's author identity from docs/test-vectors/group_state.json) and a
//! verified one starts a `GroupLog`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::group::{GroupAction, GroupLog, GroupWelcome};

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (state, change) = rest.split_at(len);
    let Ok(welcome) = GroupWelcome::from_parts(state, change) else {
        return;
    };
    let chain = umbra_fuzz::group::chain();
    let adder = welcome.add().author();
    let Some(identity) = chain.identity_of(&adder) else {
        return;
    };
    let GroupAction::Add { members } = welcome.add().action() else {
        panic!("a welcome that parses carries an Add");
    };
    let Some(us) = members.first().map(|m| m.account) else {
        return;
    };
    if welcome.verify(adder, identity, us).is_ok() {
        let _ = GroupLog::from_welcome(&welcome, adder, identity, us);
    }
});
