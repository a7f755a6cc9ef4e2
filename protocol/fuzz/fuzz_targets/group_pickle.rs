//! The stored forms of group state a client keeps (docs/PROTOCOL.md §8):
//! the first input byte picks 0 our sender key (`GroupSenderPickle`),
//! 1 a member's receiver (`GroupReceiverPickle`), 2 a group's change log
//! (`GroupLog`). Any bytes load or give a named error, never a panic; a
//! loaded one stores to bytes that load to the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_protocol::group::{
    GroupLog, GroupReceiver, GroupReceiverPickle, GroupSender, GroupSenderPickle,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let Ok(pickle) = GroupSenderPickle::decode(bytes) else {
                return;
            };
            if let Ok(sender) = GroupSender::from_pickle(&pickle) {
                let once = sender.pickle().encode();
                let again = GroupSenderPickle::decode(&once).expect("a sender pickle decodes");
                let twice = GroupSender::from_pickle(&again)
                    .expect("a stored sender reloads")
                    .pickle()
                    .encode();
                assert!(*once == *twice, "sender pickle is not stable");
            }
        }
        1 => {
            let Ok(pickle) = GroupReceiverPickle::decode(bytes) else {
                return;
            };
            if let Ok(receiver) = GroupReceiver::from_pickle(&pickle) {
                let once = receiver.pickle().encode();
                let again = GroupReceiverPickle::decode(&once).expect("a receiver pickle decodes");
                let twice = GroupReceiver::from_pickle(&again)
                    .expect("a stored receiver reloads")
                    .pickle()
                    .encode();
                assert!(*once == *twice, "receiver pickle is not stable");
            }
        }
        _ => {
            if let Ok(log) = GroupLog::from_pickle(bytes) {
                let once = log.to_pickle();
                let twice = GroupLog::from_pickle(&once)
                    .expect("a stored log reloads")
                    .to_pickle();
                assert!(*once == *twice, "log pickle is not stable");
            }
        }
    }
});
