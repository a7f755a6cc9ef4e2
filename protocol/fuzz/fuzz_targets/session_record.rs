//! Stored session records (docs/PROTOCOL.md §4.9, the pickle the client's
//! store keeps per peer): any bytes load or give a named error, never a
//! panic; a loaded record stores to bytes that load to the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::session_record::{SessionRecord, SessionRecordPickle};

fuzz_target!(|data: &[u8]| {
    if let Ok(pickle) = SessionRecordPickle::decode(data) {
        let once = pickle.encode();
        let twice = SessionRecordPickle::decode(&once)
            .expect("a re-encoded pickle decodes")
            .encode();
        assert!(*once == *twice, "pickle encoding is not stable");
    }
    if let Ok(record) = SessionRecord::from_pickle_bytes(data) {
        let once = record.to_pickle_bytes();
        let reloaded = SessionRecord::from_pickle_bytes(&once).expect("a stored record reloads");
        assert!(
            *once == *reloaded.to_pickle_bytes(),
            "record encoding is not stable"
        );
    }
});
