//! Unit tests of the braid state machine (§4.13): one epoch end to end,
//! loss, reordering and duplication of chunks, stale and future epochs,
//! and that a staged send that is not committed changes nothing.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::braid::{Braids, ChunkOutcome, PeerState};
use super::chunk::{Chunk, ChunkKind, CT_CHUNKS, EK_CHUNKS};

/// One message from `from` to `to` (no DH step), its chunk delivered.
fn send(from: &mut Braids, rng: &mut ChaCha20Rng) -> Chunk {
    let stage = from.stage_send(false, rng);
    let chunk = stage.chunk;
    from.commit_send(stage);
    chunk
}

/// Runs messages one way until `done` holds, delivering each chunk; at
/// most `limit` messages.
fn until(
    from: &mut Braids,
    to: &mut Braids,
    rng: &mut ChaCha20Rng,
    limit: usize,
    done: impl Fn(&Braids) -> bool,
) -> usize {
    for sent in 1..=limit {
        let chunk = send(from, rng);
        to.receive_chunk(&chunk);
        if done(to) {
            return sent;
        }
    }
    panic!("not done after {limit} messages");
}

fn ek_complete(b: &Braids) -> bool {
    matches!(b.peer.state, PeerState::Ready(_))
}

fn ct_complete(b: &Braids) -> bool {
    b.own.ready.is_some()
}

/// Alice's epoch 1 completed: Bob encapsulated, Alice decapsulated.
fn completed_epoch(rng: &mut ChaCha20Rng) -> (Braids, Braids) {
    let (mut alice, mut bob) = (Braids::new(), Braids::new());
    // Alice alone has something to send: every slot is an ek chunk.
    let n = until(&mut alice, &mut bob, rng, 100, ek_complete);
    assert_eq!(n, usize::from(EK_CHUNKS));
    // Bob's first send encapsulates; he alternates his own ek and the ct.
    until(&mut bob, &mut alice, rng, 100, ct_complete);
    (alice, bob)
}

#[test]
fn one_epoch_gives_both_sides_the_same_secret_and_moves_on() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut alice, mut bob) = completed_epoch(&mut rng);
    let (epoch, ours) = alice.secret_to_send().expect("ready");
    assert_eq!(epoch, 1);
    let theirs = bob.secret_to_receive(1).expect("held").expect("a secret");
    assert_eq!(ours.as_bytes(), theirs.as_bytes());
    assert_eq!(bob.secret_to_receive(0).map(|s| s.is_some()), Ok(false));
    assert!(bob.secret_to_receive(2).is_err());

    // Alice's step mixes it: her braid moves to epoch 2 and her first ek
    // chunk of that epoch rides on the same message.
    let stage = alice.stage_send(true, &mut rng);
    assert_eq!(
        (stage.chunk.kind, stage.chunk.epoch, stage.chunk.index),
        (ChunkKind::EncapsulationKey, 2, 0)
    );
    alice.commit_send(stage);
    assert_eq!(alice.own.epoch, 2);
    assert!(alice.secret_to_send().is_none(), "a secret is mixed once");

    // Bob commits the chain that mixed it, then drops it.
    bob.peer_mixed();
    assert_eq!(bob.peer.epoch, 2);
    assert!(bob.secret_to_receive(1).is_err(), "a secret is mixed once");
    assert!(bob.pending_peer_secret().is_none());
}

#[test]
fn lost_reordered_and_duplicated_chunks_only_delay_completion() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (mut alice, mut bob) = (Braids::new(), Braids::new());
    // Three cycles of Alice's key, shuffled, every third dropped, some twice.
    let mut chunks: Vec<Chunk> = (0..3 * EK_CHUNKS)
        .map(|_| send(&mut alice, &mut rng))
        .collect();
    chunks.shuffle(&mut rng);
    let mut delivered = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        if i % 3 == 2 {
            continue;
        }
        for _ in 0..(1 + i % 2) {
            let outcome = bob.receive_chunk(chunk);
            delivered += 1;
            if outcome == ChunkOutcome::KeyComplete {
                break;
            }
        }
        if ek_complete(&bob) {
            break;
        }
    }
    assert!(ek_complete(&bob), "after {delivered} deliveries");
    let PeerState::Ready(key) = &bob.peer.state else {
        unreachable!()
    };
    let alice_key = alice.own.key.as_ref().expect("drawn");
    assert_eq!(&**key, alice_key.public());
    // A duplicate after completion changes nothing.
    assert_eq!(bob.receive_chunk(&chunks[0]), ChunkOutcome::Ignored);
}

#[test]
fn stale_and_future_epochs_are_ignored() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (mut alice, mut bob) = completed_epoch(&mut rng);
    // A late ct chunk of epoch 1 before the step: Alice already holds the
    // secret, so it is ignored.
    let PeerState::Encapsulated { ciphertext, .. } = &bob.peer.state else {
        panic!("bob encapsulated")
    };
    let ciphertext = ciphertext.clone();
    let late_ct = Chunk::of(ChunkKind::Ciphertext, 1, 0, ciphertext.as_bytes());
    assert_eq!(alice.receive_chunk(&late_ct), ChunkOutcome::Ignored);
    let old_ek = Chunk::of(
        ChunkKind::EncapsulationKey,
        1,
        0,
        alice.own.key.as_ref().expect("drawn").public().as_bytes(),
    );
    let stage = alice.stage_send(true, &mut rng);
    alice.commit_send(stage);
    bob.peer_mixed();
    // Now both are stale.
    assert_eq!(alice.receive_chunk(&late_ct), ChunkOutcome::Ignored);
    assert_eq!(bob.receive_chunk(&old_ek), ChunkOutcome::Ignored);
    // A ct chunk for an epoch Alice has not reached, an ek chunk for one
    // Bob has not reached: ignored, nothing stored.
    let future_ct = Chunk::of(ChunkKind::Ciphertext, 3, 0, ciphertext.as_bytes());
    assert_eq!(alice.receive_chunk(&future_ct), ChunkOutcome::Ignored);
    assert_eq!(alice.own.ciphertext.count(), 0);
    let mut future_ek = old_ek;
    future_ek.epoch = 3;
    assert_eq!(bob.receive_chunk(&future_ek), ChunkOutcome::Ignored);
    let PeerState::Collecting(buffer) = &bob.peer.state else {
        panic!("bob collects epoch 2")
    };
    assert_eq!(buffer.count(), 0);
}

#[test]
fn a_ciphertext_for_a_key_never_sent_is_ignored() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut fresh = Braids::new();
    let chunk = Chunk::of(ChunkKind::Ciphertext, 1, 0, &[7u8; 1088]);
    assert_eq!(fresh.receive_chunk(&chunk), ChunkOutcome::Ignored);
    send(&mut fresh, &mut rng);
    assert_eq!(fresh.receive_chunk(&chunk), ChunkOutcome::Stored);
}

#[test]
fn an_invalid_encapsulation_key_is_dropped_and_collected_again() {
    let mut bob = Braids::new();
    // All-0xff coefficients fail FIPS 203's modulus check.
    let bad = [0xffu8; 1184];
    let mut last = ChunkOutcome::Empty;
    for index in 0..EK_CHUNKS {
        last = bob.receive_chunk(&Chunk::of(ChunkKind::EncapsulationKey, 1, index, &bad));
    }
    assert_eq!(last, ChunkOutcome::InvalidKey);
    let PeerState::Collecting(buffer) = &bob.peer.state else {
        panic!("collecting again")
    };
    assert_eq!(buffer.count(), 0);
}

#[test]
fn an_uncommitted_send_changes_nothing_and_slots_alternate() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (_alice, mut bob) = completed_epoch(&mut rng);
    let (epoch, turn) = (bob.own.epoch, bob.turn);
    let first = bob.stage_send(false, &mut rng).chunk;
    let again = bob.stage_send(false, &mut rng).chunk;
    assert_eq!((first.kind, first.index), (again.kind, again.index));
    assert_eq!((bob.own.epoch, bob.turn), (epoch, turn));
    // Bob has his own key to send and a ciphertext: the kinds alternate,
    // and each cycles through its indexes.
    let kinds: Vec<(ChunkKind, u8)> = (0..6)
        .map(|_| {
            let c = send(&mut bob, &mut rng);
            (c.kind, c.index)
        })
        .collect();
    for pair in kinds.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "{kinds:?}");
    }
    let ct_indexes: Vec<u8> = kinds
        .iter()
        .filter(|(k, _)| *k == ChunkKind::Ciphertext)
        .map(|(_, i)| *i)
        .collect();
    for pair in ct_indexes.windows(2) {
        assert_eq!(pair[1], (pair[0] + 1) % CT_CHUNKS);
    }
}

#[test]
fn debug_shows_phases_not_secrets() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (alice, bob) = completed_epoch(&mut rng);
    let secret = alice.secret_to_send().expect("ready").1.as_bytes();
    for braids in [&alice, &bob] {
        let shown = format!("{braids:?}");
        assert!(!shown.contains(&hex::encode(secret)), "{shown}");
        assert!(!shown.contains(&format!("{:?}", secret)), "{shown}");
    }
    assert!(format!("{bob:?}").contains("encapsulated"));
}
