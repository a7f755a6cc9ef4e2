//! Tests of `fanout.rs`: packing and addressing, and the stored form
//! (an entry of the previous version still reads).

use super::*;

fn item(len: usize, n: u8) -> FanoutItem {
    FanoutItem {
        to_account: [n; 16],
        to_device: 1,
        to_username: "member".into(),
        envelope: vec![n; len],
        sender_key_epoch: None,
    }
}

#[test]
fn packing_respects_both_limits_and_keeps_order() {
    let items: Vec<_> = (0..10).map(|n| item(1000, n)).collect();
    // Three per frame by count.
    let runs = pack(&items, MAX_FRAME_BYTES, 3);
    assert_eq!(runs, vec![0..3, 3..6, 6..9, 9..10]);
    // Two per frame by bytes.
    let runs = pack(&items, SEND_FRAME_OVERHEAD + 2 * 1025 + 10, 100);
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.len() == 2));
    // An item larger than a frame goes alone.
    let big = vec![item(10, 1), item(5000, 2), item(10, 3)];
    assert_eq!(pack(&big, 2000, 100), vec![0..1, 1..2, 2..3]);
    assert!(pack(&[], MAX_FRAME_BYTES, 3).is_empty());
}

#[test]
fn packed_frames_encode_within_the_wire_limit() {
    // Envelopes of a realistic group-message size for 1,000 members.
    let items: Vec<_> = (0..1000u32)
        .map(|n| FanoutItem {
            to_account: {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&n.to_be_bytes());
                a
            },
            to_device: 1,
            to_username: "m".into(),
            envelope: vec![7; 700],
            sender_key_epoch: None,
        })
        .collect();
    let runs = pack(&items, MAX_FRAME_BYTES, MAX_RECIPIENTS_PER_SEND);
    assert!(runs.len() >= 3, "1,000 x 700 bytes need several frames");
    for run in runs {
        let request = Request::Send {
            messages: items[run].iter().map(FanoutItem::outgoing).collect(),
        };
        let len = send_frame_len(&request);
        assert!(len > 0 && len <= MAX_FRAME_BYTES, "frame of {len} bytes");
    }
}

#[test]
fn an_entry_written_before_devices_reads_as_one_for_device_1() {
    // The previous version's stored form, field for field.
    #[derive(Serialize)]
    struct OldItem {
        to_account: [u8; 16],
        to_username: String,
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
        sender_key_epoch: Option<u64>,
    }
    #[derive(Serialize)]
    struct OldEntry {
        id: MessageId,
        group: GroupId,
        purpose: FanoutPurpose,
        items: Vec<OldItem>,
        queued_at_ms: u64,
    }
    let old = OldEntry {
        id: MessageId([7; 16]),
        group: GroupId([3; 32]),
        purpose: FanoutPurpose::Message,
        items: vec![
            OldItem {
                to_account: [9; 16],
                to_username: "bob".into(),
                envelope: vec![1, 2, 3],
                sender_key_epoch: Some(4),
            },
            OldItem {
                to_account: [8; 16],
                to_username: "carol".into(),
                envelope: vec![5],
                sender_key_epoch: None,
            },
        ],
        queued_at_ms: 42,
    };
    let bytes = postcard::to_stdvec(&old).expect("encode");
    assert_eq!(bytes[0], LEGACY_FIRST_BYTE);
    let entry: FanoutEntry = postcard::from_bytes(&bytes).expect("reads");
    assert_eq!(entry.id, MessageId([7; 16]));
    assert_eq!(entry.group, GroupId([3; 32]));
    assert_eq!(entry.purpose, FanoutPurpose::Message);
    assert_eq!(entry.queued_at_ms, 42);
    let items: Vec<_> = entry
        .items
        .iter()
        .map(|i| {
            (
                i.to_account,
                i.to_device,
                i.to_username.as_str(),
                i.envelope.clone(),
                i.sender_key_epoch,
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            ([9; 16], 1, "bob", vec![1, 2, 3], Some(4)),
            ([8; 16], 1, "carol", vec![5], None),
        ]
    );
    // Written again, it is the new form, and reads back the same.
    let again = postcard::to_stdvec(&entry).expect("encode");
    assert_eq!(again[0], FANOUT_FORMAT_DEVICES);
    let back: FanoutEntry = postcard::from_bytes(&again).expect("reads");
    assert_eq!(back.items.len(), 2);
    assert_eq!(back.items[0].address().device, DeviceId(1));
    assert!(postcard::from_bytes::<FanoutEntry>(&[2]).is_err());
}

#[test]
fn an_item_is_addressed_to_its_device() {
    let mut one = item(10, 4);
    one.to_device = 3;
    let out = one.outgoing();
    assert_eq!(out.to.account, AccountId::from_bytes([4; 16]));
    assert_eq!(out.to.device, DeviceId(3));
}
