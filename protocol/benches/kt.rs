//! Key transparency's costs (docs/PROTOCOL.md §16) at 10 000 accounts:
//! publishing a version and recomputing the root, building a map, making and
//! verifying a lookup proof, the VRF both ways, and a head check; beside one
//! strict Ed25519 verification in the same run, the baseline a client
//! already pays per signed prekey. Results: docs/BENCHMARKS.md.
//!
//! Run: `cargo bench -p umbra-protocol --bench kt -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use umbra_protocol::wire::kt::{
    DirectorySigningKey, EpochEntry, EpochLog, KtLabel, KtMap, LeafIndex, LeafValue, LookupProof,
    VrfSecretKey,
};
use umbra_protocol::wire::AccountId;

const ACCOUNTS: u32 = 10_000;

/// Indices stand in for VRF outputs (uniform, like them) so that building
/// the map measures the tree, not 10 000 VRF evaluations.
fn index(i: u32) -> LeafIndex {
    LeafIndex(Sha256::digest(i.to_be_bytes()).into())
}

fn value(i: u32) -> LeafValue {
    LeafValue::account(Some(&[(i % 251) as u8; 128]), None)
}

fn map_of(n: u32) -> KtMap {
    let mut map = KtMap::new();
    for i in 0..n {
        map.publish(index(i), value(i), 0).expect("fresh leaf");
    }
    map.root();
    map
}

fn kt(c: &mut Criterion) {
    let vrf = VrfSecretKey::generate(&mut ChaCha20Rng::from_seed([0x56; 32]));
    let pk = vrf.public_key();
    let label = KtLabel::Account(AccountId::from_bytes([0xb0; 16]));
    let mut g = c.benchmark_group("kt_10k");

    g.bench_function("publish_one_version_and_root", |b| {
        let mut map = map_of(ACCOUNTS);
        let mut epoch = 1;
        b.iter(|| {
            map.publish(index(epoch as u32 % ACCOUNTS), value(7), epoch)
                .ok();
            epoch += 1;
            black_box(map.root())
        })
    });

    // The relay's map with the benchmarked label in it at its real index.
    let mut map = map_of(ACCOUNTS);
    map.publish_label(&vrf, &label, value(1), 1).unwrap();
    let root = map.root();
    let proof = map.prove_lookup(&vrf, &label);
    let bytes = proof.encode();
    eprintln!(
        "lookup proof at {} labels: {} bytes",
        ACCOUNTS + 1,
        bytes.len()
    );

    g.bench_function("lookup_proof_make", |b| {
        b.iter(|| black_box(map.prove_lookup(&vrf, &label)))
    });
    g.bench_function("lookup_proof_verify", |b| {
        b.iter(|| {
            let p = LookupProof::decode(black_box(&bytes)).unwrap();
            black_box(p.verify(&pk, &label, &root, 1).unwrap())
        })
    });
    g.bench_function("vrf_evaluate", |b| {
        b.iter(|| black_box(vrf.evaluate(&label)))
    });
    let (_, vrf_proof) = vrf.evaluate(&label);
    g.bench_function("vrf_verify", |b| {
        b.iter(|| black_box(pk.verify(&label, &vrf_proof).unwrap()))
    });

    let dir = DirectorySigningKey::from_seed(&[0x44; 32]);
    let mut log = EpochLog::new();
    let mut head = None;
    for epoch in 0..10_000u64 {
        let entry = EpochEntry {
            epoch,
            published_at_ms: epoch,
            map_root: root,
        };
        log.push(&entry.encode());
        if epoch == 9_999 {
            head = Some(dir.sign_head(&entry, &log).unwrap());
        }
    }
    let head = head.unwrap();
    eprintln!("head at 10 000 epochs: {} bytes", head.encode().len());
    let dir_pk = dir.public_key();
    g.bench_function("head_verify_10k_epochs", |b| {
        b.iter(|| black_box(head.verify(&dir_pk).unwrap()))
    });

    let ed = SigningKey::from_bytes(&[0x44; 32]);
    let msg = [0u8; 81];
    let sig = ed.sign(&msg);
    let vk = ed.verifying_key();
    g.bench_function("baseline_ed25519_verify_strict", |b| {
        b.iter(|| black_box(vk.verify_strict(black_box(&msg), &sig)).unwrap())
    });
    g.finish();

    // Sizes and one build at 100 000 accounts (two labels each, as the
    // directory holds an account and a username leaf per account), timed
    // once: too slow for criterion's samples, and the size is what matters.
    let start = std::time::Instant::now();
    let mut big = map_of(2 * 10 * ACCOUNTS);
    let built = start.elapsed();
    big.publish_label(&vrf, &label, value(1), 1).unwrap();
    big.root();
    let size = big.prove_lookup(&vrf, &label).encode().len();
    eprintln!("200 000 labels: built and rooted once in {built:?}; lookup proof {size} bytes");
    drop(big);

    let mut g = c.benchmark_group("kt_build");
    g.sample_size(10);
    g.bench_function("build_10k_and_root", |b| {
        b.iter_batched(
            || (),
            |()| black_box(map_of(ACCOUNTS)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, kt);
criterion_main!(benches);
