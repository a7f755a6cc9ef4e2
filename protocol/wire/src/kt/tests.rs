//! Unit tests of the map, its proofs and the VRF wrapper (the log and heads
//! are in `tests_log.rs`; the byte-exact vectors in protocol/tests/vectors_kt.rs).

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::{AccountId, Username};

fn vrf_key() -> VrfSecretKey {
    VrfSecretKey::generate(&mut ChaCha20Rng::from_seed([0x56; 32]))
}

fn account(n: u8) -> KtLabel {
    KtLabel::Account(AccountId::from_bytes([n; 16]))
}

fn name(s: &str) -> KtLabel {
    KtLabel::Username(Username::parse(s).unwrap())
}

fn keys(n: u8) -> LeafValue {
    LeafValue::account(Some(&[n; 128]), None)
}

#[test]
fn empty_map_root_is_the_empty_hash_and_absence_verifies() {
    let vrf = vrf_key();
    let mut map = KtMap::new();
    let root = map.root();
    assert_eq!(root, MapRoot(*empty_hash(0)));
    let proof = map.prove_lookup(&vrf, &account(1));
    assert_eq!(
        proof.verify(&vrf.public_key(), &account(1), &root, 0),
        Ok(Lookup::Absent)
    );
}

#[test]
fn membership_absence_and_history_verify_and_name_the_latest_version() {
    let vrf = vrf_key();
    let pk = vrf.public_key();
    let mut map = KtMap::new();
    map.publish_label(&vrf, &account(1), keys(1), 0).unwrap();
    map.publish_label(&vrf, &account(2), keys(2), 0).unwrap();
    let bob = AccountId::from_bytes([2; 16]);
    let held = LeafValue::Username { account: Some(bob) };
    map.publish_label(&vrf, &name("bob"), held, 0).unwrap();
    map.publish_label(&vrf, &account(2), keys(3), 4).unwrap();
    let root = map.root();

    let proof = map.prove_lookup(&vrf, &account(2));
    let decoded = LookupProof::decode(&proof.encode()).unwrap();
    assert_eq!(decoded, proof);
    match decoded.verify(&pk, &account(2), &root, 4).unwrap() {
        Lookup::Present { latest, .. } => {
            assert_eq!(
                (latest.version, latest.epoch, latest.value),
                (2, 4, keys(3))
            )
        }
        Lookup::Absent => panic!("present label proven absent"),
    }
    // Checked against an epoch before the version was published: refused.
    assert!(matches!(
        decoded.verify(&pk, &account(2), &root, 3),
        Err(KtError::BadVersionEpoch { epoch: 4, .. })
    ));
    // The proof of one label is no proof for another.
    assert_eq!(
        decoded.verify(&pk, &account(1), &root, 4),
        Err(KtError::BadVrfProof)
    );
    let absent = map.prove_lookup(&vrf, &name("carol"));
    assert_eq!(
        LookupProof::decode(&absent.encode())
            .unwrap()
            .verify(&pk, &name("carol"), &root, 4),
        Ok(Lookup::Absent)
    );

    let history = map.prove_history(&vrf, &account(2), 1).unwrap();
    let verified = HistoryProof::decode(&history.encode())
        .unwrap()
        .verify(&pk, &account(2), &root, 4)
        .unwrap();
    let values: Vec<_> = verified.versions.iter().map(|(r, _)| r.value).collect();
    assert_eq!(values, [keys(2), keys(3)]);
    // A range from version 2 starts from version 1's chain hash.
    let tail = map.prove_history(&vrf, &account(2), 2).unwrap();
    assert_eq!(tail.prior_chain, verified.versions[0].1);
    let tail = tail.verify(&pk, &account(2), &root, 4).unwrap();
    assert_eq!(tail.versions, verified.versions[1..]);
    assert_eq!(
        map.prove_history(&vrf, &account(2), 3),
        Err(KtError::BadRange)
    );
    assert_eq!(
        map.prove_history(&vrf, &account(9), 1),
        Err(KtError::UnknownLabel)
    );
}

#[test]
fn builder_refuses_a_second_version_in_one_epoch_and_a_kind_change() {
    let vrf = vrf_key();
    let mut map = KtMap::new();
    map.publish_label(&vrf, &account(1), keys(1), 3).unwrap();
    assert_eq!(
        map.publish_label(&vrf, &account(1), keys(2), 3),
        Err(KtError::EpochNotAfterLatest {
            epoch: 3,
            latest: 3
        })
    );
    let released = LeafValue::Username { account: None };
    assert_eq!(
        map.publish_label(&vrf, &account(1), released, 4),
        Err(KtError::ValueKindMismatch)
    );
}

#[test]
fn every_single_byte_change_of_a_proof_is_refused() {
    let vrf = vrf_key();
    let pk = vrf.public_key();
    let mut map = KtMap::new();
    for n in 1..=6 {
        map.publish_label(&vrf, &account(n), keys(n), 0).unwrap();
    }
    map.publish_label(&vrf, &account(3), keys(9), 1).unwrap();
    let root = map.root();
    let cases = [
        (account(3), map.prove_lookup(&vrf, &account(3)).encode()),
        (account(7), map.prove_lookup(&vrf, &account(7)).encode()),
    ];
    for (label, bytes) in cases {
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let verdict = LookupProof::decode(&bad).and_then(|p| p.verify(&pk, &label, &root, 1));
            assert!(
                verdict.is_err(),
                "byte {i} of a lookup proof changed unnoticed"
            );
        }
        let verdict = LookupProof::decode(&bytes[..bytes.len() - 1]);
        assert!(verdict.is_err());
    }
    let bytes = map.prove_history(&vrf, &account(3), 1).unwrap().encode();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x80;
        let verdict = HistoryProof::decode(&bad).and_then(|p| p.verify(&pk, &account(3), &root, 1));
        assert!(
            verdict.is_err(),
            "byte {i} of a history proof changed unnoticed"
        );
    }
}

#[test]
fn secret_key_is_redacted_and_round_trips() {
    let vrf = vrf_key();
    assert_eq!(format!("{vrf:?}"), "VrfSecretKey(<redacted>)");
    let again = VrfSecretKey::from_bytes(&vrf.to_bytes()).unwrap();
    assert_eq!(again.public_key(), vrf.public_key());
    assert_eq!(
        VrfSecretKey::from_bytes(&[0; 32]).unwrap_err(),
        KtError::BadVrfKey
    );
    assert_eq!(
        VrfPublicKey::from_bytes([0; 32]).unwrap_err(),
        KtError::BadVrfKey
    );
}

#[test]
fn value_decoding_refuses_what_encoding_never_makes() {
    let mut released = LeafValue::Username { account: None }.encode();
    assert_eq!(LeafValue::take(&released).unwrap().1, &[] as &[u8]);
    released[5] = 1;
    assert!(matches!(
        LeafValue::take(&released),
        Err(KtError::Malformed { .. })
    ));
    assert!(matches!(
        LeafValue::take(&[0x03; 20]),
        Err(KtError::UnknownByte { byte: 0x03, .. })
    ));
}

#[test]
fn history_with_epochs_out_of_order_is_refused_even_when_the_root_matches() {
    // A lying relay computes its root over a chain the builder would never
    // make (version 2 in an earlier epoch than version 1): the root check
    // alone would pass, the order check must not.
    let vrf = vrf_key();
    let label = account(1);
    let (index, vrf_proof) = vrf.evaluate(&label);
    let mut map = KtMap::new();
    map.publish(index, keys(1), 0).unwrap();
    let empty_path = map.history_proof(&index, vrf_proof, 1).unwrap().path;
    let versions = vec![(5, keys(1)), (3, keys(2))];
    let mut chain = [0; 32];
    for (i, (epoch, value)) in versions.iter().enumerate() {
        let record = VersionRecord {
            version: i as u64 + 1,
            epoch: *epoch,
            value: *value,
        };
        chain = chain_hash(&record, &chain);
    }
    let root = MapRoot(super::tree::fold_up(
        &index,
        leaf_hash(&index, &chain),
        0,
        |j| *empty_hash(j + 1),
    ));
    let proof = HistoryProof {
        vrf: vrf_proof,
        first_version: 1,
        prior_chain: [0; 32],
        versions,
        path: empty_path,
    };
    assert_eq!(
        proof.verify(&vrf.public_key(), &label, &root, 9),
        Err(KtError::BadVersionEpoch {
            epoch: 3,
            head_epoch: 9
        })
    );
}

/// One publish step of a random run: which label (of 8), which value, and
/// how many epochs later.
fn ops() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    proptest::collection::vec((0u8..8, any::<u8>(), 0u8..3), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the order of publications and root computations, the cached
    /// root equals that of a map built once from the same histories, and
    /// every label's lookup and history proof verifies against it.
    #[test]
    fn random_runs_keep_the_cache_honest_and_every_proof_verifying(steps in ops()) {
        let vrf = vrf_key();
        let pk = vrf.public_key();
        let labels: Vec<KtLabel> = (0..8).map(account).collect();
        let mut map = KtMap::new();
        let mut replay = Vec::new();
        let mut epoch = 0u64;
        for (which, value, gap) in steps {
            epoch += u64::from(gap);
            let label = &labels[usize::from(which)];
            if map.publish_label(&vrf, label, keys(value), epoch).is_ok() {
                replay.push((label.clone(), keys(value), epoch));
            }
            let _ = map.root();
        }
        let mut fresh = KtMap::new();
        for (label, value, epoch) in &replay {
            fresh.publish_label(&vrf, label, *value, *epoch).unwrap();
        }
        let root = map.root();
        prop_assert_eq!(root, fresh.root());
        for label in &labels {
            let lookup = map.prove_lookup(&vrf, label);
            let verdict = LookupProof::decode(&lookup.encode()).unwrap().verify(&pk, label, &root, epoch);
            prop_assert!(verdict.is_ok());
            if let Ok(Lookup::Present { latest, chain }) = verdict {
                let history = map.prove_history(&vrf, label, 1).unwrap();
                let history = history.verify(&pk, label, &root, epoch).unwrap();
                prop_assert_eq!(history.versions.last().copied(), Some((latest, chain)));
            }
        }
    }
}

#[test]
fn a_path_has_one_encoding() {
    // A set bit must carry a non-empty subtree: spelling out E[256] for the
    // empty neighbour of a leaf gives the same root, but is a second
    // encoding of the same proof, which §16.4 refuses.
    let vrf = vrf_key();
    let mut map = KtMap::new();
    map.publish_label(&vrf, &account(1), keys(1), 0).unwrap();
    let honest = map.prove_lookup(&vrf, &account(2)).encode();
    assert_eq!(honest[1 + 80 + 31] & 0x01, 0, "the neighbour slot is empty");
    let mut spelled_out = honest.clone();
    spelled_out[1 + 80 + 31] |= 0x01;
    spelled_out.extend_from_slice(empty_hash(256));
    assert!(matches!(
        LookupProof::decode(&spelled_out),
        Err(KtError::Malformed { .. })
    ));
    // And no byte may follow the path.
    let trailing = [&honest[..], &[0u8][..]].concat();
    assert!(matches!(
        LookupProof::decode(&trailing),
        Err(KtError::Trailing { .. })
    ));
}

#[test]
fn each_field_check_of_lookup_and_history_names_its_error() {
    // Each check of §16.5 step 3 and §16.6, hit alone; the exact error says
    // that check (not a later root mismatch) refused it.
    let vrf = vrf_key();
    let pk = vrf.public_key();
    let mut map = KtMap::new();
    map.publish_label(&vrf, &account(2), keys(2), 0).unwrap();
    map.publish_label(&vrf, &account(2), keys(3), 4).unwrap();
    map.publish_label(&vrf, &account(4), keys(4), 0).unwrap();
    // A lying relay's leaf: a username value under an account's index.
    let (index5, vrf5) = vrf.evaluate(&account(5));
    let stray = LeafValue::Username { account: None };
    map.publish(index5, stray, 0).unwrap();
    let root = map.root();

    let LookupProof::Present {
        vrf: v,
        latest,
        prev_chain,
        path,
    } = map.prove_lookup(&vrf, &account(2))
    else {
        panic!("account 2 is present")
    };
    let with = |latest: VersionRecord, prev_chain: Hash32| LookupProof::Present {
        vrf: v,
        latest,
        prev_chain,
        path: path.clone(),
    };
    let check = |p: LookupProof| p.verify(&pk, &account(2), &root, 4);
    assert!(check(with(latest, prev_chain)).is_ok());
    assert_eq!(check(with(latest, [0; 32])), Err(KtError::BadPrior));
    let first = VersionRecord {
        version: 1,
        ..latest
    };
    assert_eq!(check(with(first, prev_chain)), Err(KtError::BadPrior));
    let zeroth = VersionRecord {
        version: 0,
        ..latest
    };
    assert_eq!(check(with(zeroth, prev_chain)), Err(KtError::BadVersion));
    let stray_proof = map.lookup_proof(&index5, vrf5);
    assert_eq!(
        stray_proof.verify(&pk, &account(5), &root, 4),
        Err(KtError::ValueKindMismatch)
    );

    let history = map.prove_history(&vrf, &account(2), 1).unwrap();
    assert_eq!(
        history.verify(&pk, &account(2), &root, 3),
        Err(KtError::BadVersionEpoch {
            epoch: 4,
            head_epoch: 3
        })
    );
    let mut tail = map.prove_history(&vrf, &account(2), 2).unwrap();
    assert!(tail.verify(&pk, &account(2), &root, 4).is_ok());
    tail.first_version = 0;
    assert_eq!(
        tail.verify(&pk, &account(2), &root, 4),
        Err(KtError::BadVersion)
    );
    let stray_history = map.history_proof(&index5, vrf5, 1).unwrap();
    assert_eq!(
        stray_history.verify(&pk, &account(5), &root, 4),
        Err(KtError::ValueKindMismatch)
    );
}
