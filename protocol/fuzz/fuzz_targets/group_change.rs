//! Signed group changes as a member receives them in pairwise content
//! (docs/PROTOCOL.md §8.7-§8.10): any bytes parse to a change or a named
//! error, never a panic. A parsed change is then checked as a client does:
//! its signature against every author identity of docs/test-vectors/
//! group_state.json, applied to every state of that file's chain (the
//! authorization rules), and fed to a `GroupLog` based on each state (hash
//! chain, pending changes, fork choice). A refusal leaves the log as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::group::{GroupChange, GroupLog};

fuzz_target!(|data: &[u8]| {
    let Ok(change) = GroupChange::from_bytes(data) else {
        return;
    };
    assert!(change.as_bytes() == data, "a change keeps its bytes");
    let chain = umbra_fuzz::group::chain();
    let mut verified_by = None;
    for (account, identity) in &chain.authors {
        if change.verify(identity).is_ok() {
            verified_by = Some((*account, identity));
        }
    }
    for state in &chain.states {
        if let Ok(next) = state.apply(&change) {
            assert_eq!(
                next.head(),
                change.hash(),
                "the new head is the change's hash"
            );
            let reloaded = umbra_protocol::group::GroupState::from_bytes(&next.to_bytes())
                .expect("a state after a change reloads");
            assert!(reloaded == next, "a state after a change reloads unchanged");
        }
        let Some((_, identity)) = verified_by else {
            continue;
        };
        let mut log = GroupLog::from_base(state.clone());
        let before = log.to_pickle();
        if log.apply(change.clone(), identity).is_err() {
            assert!(
                *before == *log.to_pickle(),
                "a refused change altered the log"
            );
        }
    }
});
