//! Unit tests of the RFC 9162 log and of epoch heads.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;

fn log_of(n: u64) -> EpochLog {
    let mut log = EpochLog::new();
    for i in 0..n {
        log.push(&i.to_be_bytes());
    }
    log
}

#[test]
fn every_inclusion_and_consistency_proof_up_to_17_verifies_and_mutations_fail() {
    let log = log_of(17);
    for size in 1..=17 {
        let root = log.root(size).unwrap();
        for index in 0..size {
            let proof = log.inclusion_proof(index, size).unwrap();
            let proof = InclusionProof::decode(&proof.encode()).unwrap();
            let leaf = log.leaf(index).unwrap();
            assert_eq!(proof.verify(&leaf, &root), Ok(()), "{index} in {size}");
            let wrong = log.leaf((index + 1) % 17).unwrap();
            assert!(
                proof.verify(&wrong, &root).is_err() || size == 1 && index == 0 && wrong == leaf
            );
            for i in 0..proof.hashes.len() {
                let mut bad = proof.clone();
                bad.hashes[i][0] ^= 1;
                assert_eq!(bad.verify(&leaf, &root), Err(KtError::BadInclusion));
            }
        }
        for old in 1..=size {
            let proof = log.consistency_proof(old, size).unwrap();
            let proof = ConsistencyProof::decode(&proof.encode()).unwrap();
            let old_root = log.root(old).unwrap();
            assert_eq!(proof.verify(&old_root, &root), Ok(()), "{old} -> {size}");
            for i in 0..proof.hashes.len() {
                let mut bad = proof.clone();
                bad.hashes[i][31] ^= 1;
                assert_eq!(bad.verify(&old_root, &root), Err(KtError::BadConsistency));
            }
            if !proof.hashes.is_empty() {
                let mut short = proof.clone();
                short.hashes.pop();
                assert!(short.verify(&old_root, &root).is_err());
            }
        }
    }
}

/// RFC 9162 §2.1's MTH, PATH and SUBPROOF over a plain list of leaf
/// hashes, word for word: the reference the stored-subtree log must match.
mod reference {
    use super::*;
    use sha2::Digest as _;

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    pub fn mth(d: &[Hash32]) -> Hash32 {
        match d.len() {
            0 => sha2::Sha256::digest([]).into(),
            1 => d[0],
            n => log_node_hash(&mth(&d[..split(n)]), &mth(&d[split(n)..])),
        }
    }

    pub fn path(m: usize, d: &[Hash32]) -> Vec<Hash32> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        let (mut out, other) = if m < k {
            (path(m, &d[..k]), mth(&d[k..]))
        } else {
            (path(m - k, &d[k..]), mth(&d[..k]))
        };
        out.push(other);
        out
    }

    pub fn subproof(m: usize, d: &[Hash32], b: bool) -> Vec<Hash32> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = split(n);
        let (mut out, other) = if m <= k {
            (subproof(m, &d[..k], b), mth(&d[k..]))
        } else {
            (subproof(m - k, &d[k..], false), mth(&d[..k]))
        };
        out.push(other);
        out
    }
}

#[test]
fn stored_subtrees_give_exactly_rfc_9162s_roots_paths_and_proofs() {
    let log = log_of(70);
    let leaves: Vec<Hash32> = (0..70).map(|i| log.leaf(i).unwrap()).collect();
    for size in 0..=70usize {
        let d = &leaves[..size];
        assert_eq!(
            log.root(size as u64).unwrap().0,
            reference::mth(d),
            "root {size}"
        );
        for m in 0..size {
            let proof = log.inclusion_proof(m as u64, size as u64).unwrap();
            assert_eq!(proof.hashes, reference::path(m, d), "path {m} in {size}");
        }
        for old in 1..=size {
            let proof = log.consistency_proof(old as u64, size as u64).unwrap();
            assert_eq!(
                proof.hashes,
                reference::subproof(old, d, true),
                "proof {old} -> {size}"
            );
        }
    }
    assert_eq!(log.root(71), Err(KtError::BadLogSize));
    assert_eq!(log.inclusion_proof(0, 71), Err(KtError::BadLogSize));
}

#[test]
fn a_rewritten_entry_breaks_consistency() {
    let honest = log_of(7);
    let mut forked = log_of(4);
    forked.push(b"not the honest entry 4");
    forked.push(&5u64.to_be_bytes());
    forked.push(&6u64.to_be_bytes());
    let proof = forked.consistency_proof(5, 7).unwrap();
    assert_eq!(
        proof.verify(&honest.root(5).unwrap(), &forked.root(7).unwrap()),
        Err(KtError::BadConsistency)
    );
    assert_eq!(log_of(3).consistency_proof(0, 3), Err(KtError::BadLogSize));
}

#[test]
fn root_matches_rfc_9162_by_hand() {
    // MTH of three leaves: node(node(l0, l1), l2).
    let log = log_of(3);
    let l: Vec<_> = (0..3).map(|i| log.leaf(i).unwrap()).collect();
    let want = log_node_hash(&log_node_hash(&l[0], &l[1]), &l[2]);
    assert_eq!(log.root(3).unwrap(), LogRoot(want));
    assert_eq!(l[0], log_leaf_hash(&0u64.to_be_bytes()));
}

fn heads(n: u64) -> (DirectorySigningKey, Vec<SignedEpochHead>, EpochLog) {
    let key = DirectorySigningKey::generate(&mut ChaCha20Rng::from_seed([0x44; 32]));
    let mut log = EpochLog::new();
    let mut out = Vec::new();
    for epoch in 0..n {
        let entry = EpochEntry {
            epoch,
            published_at_ms: 1_000 + epoch,
            map_root: MapRoot([epoch as u8; 32]),
        };
        log.push(&entry.encode());
        out.push(key.sign_head(&entry, &log).unwrap());
    }
    (key, out, log)
}

#[test]
fn heads_verify_extend_and_refuse_forks_rollbacks_and_forgeries() {
    let (key, heads, log) = heads(5);
    let pk = key.public_key();
    let verified: Vec<_> = heads
        .iter()
        .map(|h| {
            SignedEpochHead::decode(&h.encode())
                .unwrap()
                .verify(&pk)
                .unwrap()
        })
        .collect();
    let proof = log.consistency_proof(2, 5).unwrap();
    assert_eq!(verified[1].check_extended_by(&verified[4], &proof), Ok(()));
    assert_eq!(
        verified[4].check_extended_by(&verified[1], &proof),
        Err(KtError::Rollback {
            remembered: 4,
            got: 1
        })
    );
    let inclusion = log.inclusion_proof(1, 5).unwrap();
    assert_eq!(
        verified[4].check_includes(verified[1].entry(), &inclusion),
        Ok(())
    );

    // A head for epoch 3 over another map root, properly signed: a fork.
    let mut other_log = log_of(0);
    for h in &heads[..3] {
        other_log.push(&h.entry.encode());
    }
    let evil = EpochEntry {
        map_root: MapRoot([0xee; 32]),
        ..heads[3].entry
    };
    other_log.push(&evil.encode());
    let evil = key
        .sign_head(&evil, &other_log)
        .unwrap()
        .verify(&pk)
        .unwrap();
    assert_eq!(
        verified[3].check_extended_by(&evil, &proof),
        Err(KtError::Fork { epoch: 3 })
    );

    // Another key's signature, a changed byte, a wrong self path.
    let stranger = DirectorySigningKey::from_seed(&[7; 32]).public_key();
    assert_eq!(heads[2].verify(&stranger), Err(KtError::BadHeadSignature));
    let mut bytes = heads[2].encode();
    for i in 0..bytes.len() {
        bytes[i] ^= 0x01;
        let verdict = SignedEpochHead::decode(&bytes).and_then(|h| h.verify(&pk));
        assert!(verdict.is_err(), "byte {i} of a head changed unnoticed");
        bytes[i] ^= 0x01;
    }
    // The relay cannot sign a head its log does not end with.
    let entry = EpochEntry {
        epoch: 5,
        published_at_ms: 9,
        map_root: MapRoot([1; 32]),
    };
    assert_eq!(key.sign_head(&entry, &log), Err(KtError::BadLogSize));
    assert_eq!(format!("{key:?}"), "DirectorySigningKey(<redacted>)");
    let again = DirectorySigningKey::from_seed(&key.to_seed());
    assert_eq!(again.public_key(), pk);
}

#[test]
fn extension_and_inclusion_bind_time_sizes_and_index() {
    // A later epoch stamped earlier than the remembered one is a rollback,
    // even with an honest consistency proof.
    let key = DirectorySigningKey::from_seed(&[0x44; 32]);
    let pk = key.public_key();
    let mut log = EpochLog::new();
    let mut back = Vec::new();
    for (epoch, at) in [(0u64, 2_000u64), (1, 1_000)] {
        let entry = EpochEntry {
            epoch,
            published_at_ms: at,
            map_root: MapRoot([epoch as u8; 32]),
        };
        log.push(&entry.encode());
        back.push(key.sign_head(&entry, &log).unwrap().verify(&pk).unwrap());
    }
    assert_eq!(
        back[0].check_extended_by(&back[1], &log.consistency_proof(1, 2).unwrap()),
        Err(KtError::Rollback {
            remembered: 0,
            got: 1
        })
    );

    // A proof between other sizes than the two heads' is refused as such.
    let (key, heads, log) = heads(5);
    let pk = key.public_key();
    let v: Vec<_> = heads.iter().map(|h| h.verify(&pk).unwrap()).collect();
    for (old, new) in [(1, 5), (2, 4), (2, 2)] {
        let proof = log.consistency_proof(old, new).unwrap();
        assert_eq!(
            v[1].check_extended_by(&v[4], &proof),
            Err(KtError::BadLogSize)
        );
    }
    // An inclusion proof at another index than the entry's epoch.
    let at_2 = log.inclusion_proof(2, 5).unwrap();
    assert_eq!(
        v[4].check_includes(v[1].entry(), &at_2),
        Err(KtError::BadLogSize)
    );

    // Equal sizes with different roots, and an empty proof between two
    // sizes (3 is not a power of two: nothing to start the fold from).
    let same = log.consistency_proof(3, 3).unwrap();
    assert_eq!(
        same.verify(v[2].log_root(), v[3].log_root()),
        Err(KtError::BadConsistency)
    );
    let empty = ConsistencyProof {
        old_size: 3,
        new_size: 5,
        hashes: Vec::new(),
    };
    assert_eq!(
        empty.verify(v[2].log_root(), v[4].log_root()),
        Err(KtError::BadConsistency)
    );
}
