//! Key-transparency proofs and heads as a client reads them (docs/PROTOCOL.md
//! §16). The first byte picks what the rest is: `0x00` a lookup proof, `0x01`
//! a history proof (both checked for bob's account against epoch 3 of
//! docs/test-vectors/kt.json), `0x02` a signed epoch head (checked under the
//! vectors' directory key), `0x03` an inclusion proof, `0x04` a consistency
//! proof (checked against the vectors' log roots). Any bytes give a result or
//! a named error, never a panic; an accepted encoding is its one canonical
//! encoding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::{assert_canonical, vector_hex};
use umbra_wire::kt::{
    ConsistencyProof, DirectoryPublicKey, HistoryProof, InclusionProof, KtLabel, LogRoot,
    LookupProof, MapRoot, SignedEpochHead, VrfPublicKey,
};
use umbra_wire::AccountId;

const KT_JSON: &str = include_str!("../../../docs/test-vectors/kt.json");

struct Fixture {
    vrf: VrfPublicKey,
    directory: DirectoryPublicKey,
    map_root: MapRoot,
    log_roots: Vec<LogRoot>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let array = |pointer: &str| -> [u8; 32] {
            vector_hex(KT_JSON, pointer)
                .try_into()
                .expect("a 32-byte vector field")
        };
        Fixture {
            vrf: VrfPublicKey::from_bytes(array("/vrf_public_key")).expect("the VRF key"),
            directory: DirectoryPublicKey::from_bytes(&array("/directory_public_key"))
                .expect("the directory key"),
            map_root: MapRoot(array("/epochs/3/map_root")),
            log_roots: (0..4)
                .map(|e| LogRoot(array(&format!("/epochs/{e}/log_root"))))
                .collect(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let bob = KtLabel::Account(AccountId::from_bytes([0xb0; 16]));
    let root_of = |size: u64| {
        usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| f.log_roots.get(i))
            .copied()
    };
    match which {
        0x00 => {
            if let Ok(proof) = LookupProof::decode(rest) {
                assert_canonical("lookup proof", rest, &proof.encode());
                let _ = proof.verify(&f.vrf, &bob, &f.map_root, 3);
            }
        }
        0x01 => {
            if let Ok(proof) = HistoryProof::decode(rest) {
                assert_canonical("history proof", rest, &proof.encode());
                let _ = proof.verify(&f.vrf, &bob, &f.map_root, 3);
            }
        }
        0x02 => {
            if let Ok(head) = SignedEpochHead::decode(rest) {
                assert_canonical("epoch head", rest, &head.encode());
                let _ = head.verify(&f.directory);
            }
        }
        0x03 => {
            if let Ok(proof) = InclusionProof::decode(rest) {
                assert_canonical("inclusion proof", rest, &proof.encode());
                if let Some(root) = root_of(proof.size) {
                    let _ = proof.verify(&[0; 32], &root);
                }
            }
        }
        0x04 => {
            if let Ok(proof) = ConsistencyProof::decode(rest) {
                assert_canonical("consistency proof", rest, &proof.encode());
                if let (Some(old), Some(new)) = (root_of(proof.old_size), root_of(proof.new_size)) {
                    let _ = proof.verify(&old, &new);
                }
            }
        }
        _ => {}
    }
});
