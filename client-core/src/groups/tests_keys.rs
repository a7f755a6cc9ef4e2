//! Tests of `keys.rs`: rotation by who holds our key, and the stored
//! forms of ours and the members' keys per device (the previous version's
//! records still read).

use super::*;
use umbra_protocol::group::{GroupChange, GroupPolicy, NewMember};
use umbra_protocol::wire::Username;

fn member(account: AccountId, name: &str) -> NewMember {
    NewMember {
        account,
        username: Username::parse(name).expect("valid name"),
    }
}

#[test]
fn a_key_a_non_member_holds_is_replaced_whatever_its_epoch() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let (a, b, c) = (
        AccountId::random(&mut OsRng),
        AccountId::random(&mut OsRng),
        AccountId::random(&mut OsRng),
    );
    let create = GroupChange::create(
        &alice,
        a,
        GroupId::random(&mut OsRng),
        "team",
        GroupPolicy {
            members_may_rename: false,
        },
        vec![member(a, "alice"), member(b, "bob"), member(c, "carol")],
    )
    .expect("create");
    let v0 = GroupState::from_create(&create).expect("state");
    // One branch: two renames, and our key made at version 2 there,
    // given to bob and carol.
    let r1 = GroupChange::rename(&alice, a, &v0, "one").expect("rename");
    let v1 = v0.apply(&r1).expect("apply");
    let r2 = GroupChange::rename(&alice, a, &v1, "two").expect("rename");
    let v2 = v1.apply(&r2).expect("apply");
    let mut key = OwnSenderKey::fresh(&v2);
    key.mark_distributed(&b, DeviceId::PRIMARY);
    key.mark_distributed(&c, DeviceId(2));
    assert_eq!(key.epoch, 2);
    // The winning branch removed carol at version 1: its rotation point
    // (1) is below our key's epoch (2), yet carol holds the key.
    let remove = GroupChange::remove(&alice, a, &v0, vec![c]).expect("remove");
    let winner = v0.apply(&remove).expect("apply");
    assert!(winner.rotation_point() <= key.epoch);
    let chain = |k: &OwnSenderKey| k.sender().expect("key").chain_id();
    let old_chain = chain(&key);
    let sending = OwnSenderKey::for_sending(Some(key.clone()), &winner).expect("key");
    assert_ne!(
        chain(&sending),
        old_chain,
        "rotated: carol holds the old key"
    );
    assert!(sending.distributed_to.is_empty());
    // A key made at the rotation point that only members hold is kept.
    let mut bobs = OwnSenderKey::fresh(&winner);
    bobs.mark_distributed(&b, DeviceId(3));
    let old_chain = chain(&bobs);
    let kept = OwnSenderKey::for_sending(Some(bobs), &winner).expect("key");
    assert_eq!(chain(&kept), old_chain, "kept: no outsider has it");
}

#[test]
fn our_key_stored_before_devices_reads_with_device_1_marked() {
    #[derive(Serialize)]
    struct Old {
        epoch: u64,
        #[serde(with = "serde_bytes")]
        sender: Vec<u8>,
        distributed_to: Vec<[u8; 16]>,
    }
    let group = GroupId::random(&mut OsRng);
    let sender = GroupSender::generate(group, 7, &mut OsRng);
    let old = Old {
        epoch: 7,
        sender: sender.pickle().encode().to_vec(),
        distributed_to: vec![[1; 16], [2; 16]],
    };
    let bytes = postcard::to_stdvec(&old).expect("encode");
    let key: OwnSenderKey = postcard::from_bytes(&bytes).expect("reads");
    assert_eq!(key.epoch, 7);
    assert_eq!(key.sender().expect("pickle").chain_id(), sender.chain_id());
    let (one, two) = (
        AccountId::from_bytes([1; 16]),
        AccountId::from_bytes([2; 16]),
    );
    assert!(key.has(&one, DeviceId(1)) && key.has(&two, DeviceId(1)));
    assert!(!key.has(&one, DeviceId(2)));
    // The new form round-trips, devices and all.
    let mut key = key;
    key.mark_distributed(&one, DeviceId(2));
    let again = postcard::to_stdvec(&key).expect("encode");
    let back: OwnSenderKey = postcard::from_bytes(&again).expect("reads");
    assert_eq!(back.epoch, 7);
    assert_eq!(
        back.distributed_to,
        vec![([1; 16], 1), ([1; 16], 2), ([2; 16], 1)]
    );
    assert_eq!(back.accounts(), vec![[1; 16], [2; 16]]);
}

#[test]
fn our_key_keeps_the_head_it_was_made_at_and_the_form_without_it_reads() {
    let group = GroupId::random(&mut OsRng);
    let sender = GroupSender::generate(group, 4, &mut OsRng);
    // The form before heads: the marker 2^64 - 1, then no head.
    #[derive(Serialize)]
    struct Devices<'a>(u64, (u64, &'a serde_bytes::Bytes, Vec<([u8; 16], u32)>));
    let pickle = sender.pickle().encode().to_vec();
    let old = Devices(
        u64::MAX,
        (4, serde_bytes::Bytes::new(&pickle), vec![([1; 16], 2)]),
    );
    let bytes = postcard::to_stdvec(&old).expect("encode");
    let key: OwnSenderKey = postcard::from_bytes(&bytes).expect("reads");
    assert_eq!((key.epoch, key.made_at), (4, None));
    assert!(key.has(&AccountId::from_bytes([1; 16]), DeviceId(2)));
    // Written now: the marker 2^64 - 2 and the head, read back.
    let mut key = key;
    key.made_at = Some(umbra_protocol::group::ChangeHash([7; 32]));
    let again = postcard::to_stdvec(&key).expect("encode");
    assert_eq!(
        &again[..10],
        &postcard::to_stdvec(&(u64::MAX - 1)).expect("varint")[..]
    );
    let back: OwnSenderKey = postcard::from_bytes(&again).expect("reads");
    assert_eq!(back.made_at, key.made_at);
    assert_eq!(back.distributed_to, key.distributed_to);
    assert_eq!(back.sender().expect("pickle").chain_id(), sender.chain_id());
}

#[test]
fn member_keys_are_kept_by_arrival_not_epoch() {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let group = GroupId::random(&mut OsRng);
    let distribution = |epoch: u64| {
        let sender = GroupSender::generate(group, epoch, &mut OsRng);
        (
            sender.chain_id(),
            sender.distribution(&identity).as_bytes().to_vec(),
        )
    };
    let mut keys = ReceiverKeys::default();
    let (five, d5) = distribution(5);
    let (three, d3) = distribution(3);
    let (four, d4) = distribution(4);
    for d in [&d5, &d3, &d4] {
        keys.accept(d, &identity.public(), &group, DeviceId::PRIMARY)
            .expect("accepted");
    }
    // The two that arrived last stay, although 5 has the highest epoch.
    assert_eq!(held(&keys, 1), vec![(3, three), (4, four)]);
    assert!(!held(&keys, 1).contains(&(5, five)));
}

fn held(keys: &ReceiverKeys, device: u32) -> Vec<(u64, u32)> {
    keys.devices
        .iter()
        .filter(|d| d.device == device)
        .flat_map(|d| d.keys.iter().map(|k| (k.epoch, k.chain_id)))
        .collect()
}

#[test]
fn each_device_of_a_member_keeps_its_own_keys() {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let group = GroupId::random(&mut OsRng);
    let distribution = |epoch: u64| {
        let sender = GroupSender::generate(group, epoch, &mut OsRng);
        (
            sender.chain_id(),
            sender.distribution(&identity).as_bytes().to_vec(),
        )
    };
    let mut keys = ReceiverKeys::default();
    let (one, d1) = distribution(1);
    keys.accept(&d1, &identity.public(), &group, DeviceId(1))
        .expect("accepted");
    // Three keys from device 2 push out none of device 1's.
    let mut second = Vec::new();
    for epoch in 2..5 {
        let (chain, d) = distribution(epoch);
        keys.accept(&d, &identity.public(), &group, DeviceId(2))
            .expect("accepted");
        second.push((epoch, chain));
    }
    assert_eq!(held(&keys, 1), vec![(1, one)]);
    assert_eq!(held(&keys, 2), second[1..].to_vec());
    // Round trip through the stored form.
    let bytes = postcard::to_stdvec(&keys).expect("encode");
    assert_eq!(bytes[0], KEYS_FORMAT_DEVICES);
    let back: ReceiverKeys = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(held(&back, 1), vec![(1, one)]);
    assert_eq!(held(&back, 2), second[1..].to_vec());
    // Beyond eight devices the one whose key arrived longest ago goes.
    for device in 3..=9 {
        let (_, d) = distribution(9);
        keys.accept(&d, &identity.public(), &group, DeviceId(device))
            .expect("accepted");
    }
    assert!(held(&keys, 1).is_empty(), "device 1's key arrived first");
    assert_eq!(keys.devices.len(), MAX_DEVICES_PER_ACCOUNT);
}

#[test]
fn keys_stored_before_devices_read_as_device_1s() {
    // The previous version's stored form: a bare sequence of keys.
    #[derive(Serialize)]
    struct Old {
        keys: Vec<MemberKey>,
    }
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let group = GroupId::random(&mut OsRng);
    let sender = GroupSender::generate(group, 3, &mut OsRng);
    let distribution = sender.distribution(&identity);
    let verified = SignedDistribution::verify(distribution.as_bytes(), &identity.public(), &group)
        .expect("verifies");
    let old = Old {
        keys: vec![MemberKey {
            epoch: 3,
            chain_id: sender.chain_id(),
            receiver: GroupReceiver::new(verified).pickle().encode().to_vec(),
        }],
    };
    let bytes = postcard::to_stdvec(&old).expect("encode");
    assert_eq!(bytes[0], 1, "the legacy form starts with its length");
    let keys: ReceiverKeys = postcard::from_bytes(&bytes).expect("reads");
    assert_eq!(held(&keys, 1), vec![(3, sender.chain_id())]);
    assert!(held(&keys, 2).is_empty());
    let empty: ReceiverKeys = postcard::from_bytes(&[0]).expect("reads");
    assert!(empty.is_empty());
    assert!(postcard::from_bytes::<ReceiverKeys>(&[3]).is_err());
}
