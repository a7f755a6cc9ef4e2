//! Property tests for the Double Ratchet, modelled on libsignal's: random
//! interleavings of sends, deliveries, drops, reorderings, replays, tampering
//! and save/restore on two parties, checked against a simple model of what
//! must decrypt. After every random history, two-way traffic must complete
//! post-quantum epochs in both directions (§4.13): a run with the KEM step
//! disabled fails here.

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use umbra_protocol::pairwise::PairwiseMessage;
use umbra_protocol::ratchet::{RatchetError, RatchetMessage, Session, RATCHET_MESSAGE_VERSION};

mod ratchet_pair;
use ratchet_pair::{pair, restore, snapshot};

#[derive(Debug, Clone)]
enum Event {
    Send {
        from_alice: bool,
        len: usize,
    },
    DeliverNext {
        to_alice: bool,
    },
    DeliverAt {
        to_alice: bool,
        pick: usize,
    },
    Drop {
        to_alice: bool,
        pick: usize,
    },
    Shuffle {
        to_alice: bool,
        seed: u64,
    },
    Replay {
        to_alice: bool,
        pick: usize,
    },
    Tamper {
        to_alice: bool,
        pick: usize,
        bit: usize,
    },
    SaveRestore {
        alice: bool,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..200).prop_map(|(from_alice, len)| Event::Send { from_alice, len }),
        3 => any::<bool>().prop_map(|to_alice| Event::DeliverNext { to_alice }),
        3 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Event::DeliverAt { to_alice, pick }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Event::Drop { to_alice, pick }),
        1 => (any::<bool>(), any::<u64>()).prop_map(|(to_alice, seed)| Event::Shuffle { to_alice, seed }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Event::Replay { to_alice, pick }),
        1 => (any::<bool>(), any::<usize>(), any::<usize>()).prop_map(|(to_alice, pick, bit)| Event::Tamper { to_alice, pick, bit }),
        1 => any::<bool>().prop_map(|alice| Event::SaveRestore { alice }),
    ]
}

/// One direction's network: messages in flight, and those already delivered.
#[derive(Default)]
struct Wire {
    in_flight: Vec<(RatchetMessage, Vec<u8>)>,
    delivered: Vec<RatchetMessage>,
}

struct World {
    alice: Session,
    bob: Session,
    rng: ChaCha20Rng,
    to_alice: Wire,
    to_bob: Wire,
    bob_has_received: bool,
    counter: u64,
}

/// Ping-pong rounds (one message each way, delivered) within which both
/// directions must complete `PQ_EPOCHS_REQUIRED` KEM epochs from any state
/// a random history leaves. One epoch takes at most 2 x (10 + 9) slots of
/// one side (chunks alternate when both braids have one) plus a step: 40.
const PQ_ROUNDS: usize = 100;
/// Epochs each direction must complete within [`PQ_ROUNDS`].
const PQ_EPOCHS_REQUIRED: u32 = 2;

impl World {
    fn parts(&mut self, to_alice: bool) -> (&mut Session, &mut Wire) {
        if to_alice {
            (&mut self.alice, &mut self.to_alice)
        } else {
            (&mut self.bob, &mut self.to_bob)
        }
    }

    fn deliver(&mut self, to_alice: bool, index: usize) -> Result<(), TestCaseError> {
        let (session, wire) = self.parts(to_alice);
        if index >= wire.in_flight.len() {
            return Ok(());
        }
        let (message, expected) = wire.in_flight.remove(index);
        let plaintext = session
            .decrypt(&message)
            .map_err(|e| TestCaseError::fail(format!("delivery failed: {e}")))?;
        prop_assert_eq!(plaintext, expected);
        wire.delivered.push(message);
        if !to_alice {
            self.bob_has_received = true;
        }
        Ok(())
    }

    /// Delivers everything in flight, then ping-pongs (saving and restoring
    /// both every seventh round) until each side's own KEM epoch advanced
    /// by [`PQ_EPOCHS_REQUIRED`] and the peer saw it; every message must
    /// decrypt, and some header must name a mixed epoch.
    fn drain_then_complete_pq_epochs(&mut self) -> Result<(), TestCaseError> {
        while !self.to_bob.in_flight.is_empty() {
            let last = self.to_bob.in_flight.len() - 1;
            self.deliver(false, last)?;
        }
        while !self.to_alice.in_flight.is_empty() {
            self.deliver(true, 0)?;
        }
        let (alice_start, _) = self.alice.pq_epochs();
        let (bob_start, _) = self.bob.pq_epochs();
        let mut hybrid_headers = 0;
        for round in 0..PQ_ROUNDS {
            for from_alice in [true, false] {
                self.apply(&Event::Send { from_alice, len: 3 })?;
                let wire = if from_alice {
                    &self.to_bob
                } else {
                    &self.to_alice
                };
                if let Some((m, _)) = wire.in_flight.last() {
                    hybrid_headers += usize::from(m.header.pq_epoch != 0);
                }
                self.deliver(!from_alice, 0)?;
            }
            if round % 7 == 6 {
                self.apply(&Event::SaveRestore { alice: true })?;
                self.apply(&Event::SaveRestore { alice: false })?;
            }
            let done = |own: u32, seen: u32, start: u32| {
                own >= start + PQ_EPOCHS_REQUIRED && seen >= start + PQ_EPOCHS_REQUIRED
            };
            if done(
                self.alice.pq_epochs().0,
                self.bob.pq_epochs().1,
                alice_start,
            ) && done(self.bob.pq_epochs().0, self.alice.pq_epochs().1, bob_start)
            {
                prop_assert!(hybrid_headers > 0);
                return Ok(());
            }
        }
        Err(TestCaseError::fail(format!(
            "PQ epochs did not advance by {PQ_EPOCHS_REQUIRED} in {PQ_ROUNDS} rounds: alice {:?} from {alice_start}, bob {:?} from {bob_start}",
            self.alice.pq_epochs(),
            self.bob.pq_epochs()
        )))
    }

    fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
        match *event {
            Event::Send { from_alice, len } => {
                self.counter += 1;
                let mut plaintext = self.counter.to_be_bytes().to_vec();
                plaintext.resize(8 + len, from_alice as u8);
                let (sender, wire) = if from_alice {
                    (&mut self.alice, &mut self.to_bob)
                } else {
                    (&mut self.bob, &mut self.to_alice)
                };
                match sender.encrypt(&plaintext, &mut self.rng) {
                    Ok(message) => wire.in_flight.push((message, plaintext)),
                    Err(RatchetError::NotReadyToSend) => {
                        prop_assert!(!from_alice && !self.bob_has_received)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("encrypt failed: {e}"))),
                }
            }
            Event::DeliverNext { to_alice } => self.deliver(to_alice, 0)?,
            Event::DeliverAt { to_alice, pick } => {
                let len = self.parts(to_alice).1.in_flight.len();
                if len > 0 {
                    self.deliver(to_alice, pick % len)?;
                }
            }
            Event::Drop { to_alice, pick } => {
                let wire = self.parts(to_alice).1;
                if !wire.in_flight.is_empty() {
                    let at = pick % wire.in_flight.len();
                    wire.in_flight.remove(at);
                }
            }
            Event::Shuffle { to_alice, seed } => {
                use rand::seq::SliceRandom;
                let wire = self.parts(to_alice).1;
                wire.in_flight
                    .shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
            }
            Event::Replay { to_alice, pick } => {
                let (session, wire) = self.parts(to_alice);
                if wire.delivered.is_empty() {
                    return Ok(());
                }
                let message = wire.delivered[pick % wire.delivered.len()].clone();
                let before = snapshot(session);
                let result = session.decrypt(&message);
                prop_assert!(
                    matches!(
                        result,
                        Err(RatchetError::DuplicateMessage | RatchetError::DecryptionFailed)
                    ),
                    "replay accepted: {:?}",
                    result
                );
                prop_assert_eq!(snapshot(session), before, "replay changed the session");
            }
            Event::Tamper {
                to_alice,
                pick,
                bit,
            } => {
                let (session, wire) = self.parts(to_alice);
                if wire.in_flight.is_empty() {
                    return Ok(());
                }
                let (message, _) = &wire.in_flight[pick % wire.in_flight.len()];
                let mut bytes = message.to_bytes();
                let bit = bit % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                let before = snapshot(session);
                if let Ok(forged) = RatchetMessage::from_bytes(&bytes) {
                    prop_assert!(
                        session.decrypt(&forged).is_err(),
                        "bit {} flip accepted",
                        bit
                    );
                }
                prop_assert_eq!(snapshot(session), before, "forgery changed the session");
                // The genuine message stays in flight and must still decrypt later.
            }
            Event::SaveRestore { alice } => {
                let session = if alice {
                    &mut self.alice
                } else {
                    &mut self.bob
                };
                *session = restore(&snapshot(session));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_conversations_decrypt_exactly_once(
        seed in any::<u64>(),
        events in proptest::collection::vec(event(), 1..80),
    ) {
        let (alice, bob, rng) = pair(seed);
        let mut world = World {
            alice, bob, rng,
            to_alice: Wire::default(),
            to_bob: Wire::default(),
            bob_has_received: false,
            counter: 0,
        };
        for event in &events {
            world.apply(event)?;
        }
        // Everything still in flight is deliverable, in any order we
        // choose; then the KEM epochs advance both ways.
        world.drain_then_complete_pq_epochs()?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = RatchetMessage::from_bytes(&bytes);
        let _ = PairwiseMessage::from_bytes(&bytes);
        // Also with a valid-looking prefix, to reach the inner parsers.
        let mut ratchet = vec![RATCHET_MESSAGE_VERSION];
        ratchet.extend_from_slice(&bytes);
        let _ = RatchetMessage::from_bytes(&ratchet);
        for kind in [0x01u8, 0x02] {
            let mut framed = vec![kind];
            framed.extend_from_slice(&bytes);
            let _ = PairwiseMessage::from_bytes(&framed);
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected_and_the_original_still_decrypts(
        seed in any::<u64>(),
        len in 0usize..64,
        bit in any::<usize>(),
    ) {
        let (mut alice, mut bob, mut rng) = pair(seed);
        let message = alice.encrypt(&vec![0x5a; len], &mut rng).unwrap();
        let mut bytes = message.to_bytes();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let before = snapshot(&bob);
        if let Ok(forged) = RatchetMessage::from_bytes(&bytes) {
            prop_assert!(bob.decrypt(&forged).is_err());
        }
        prop_assert_eq!(snapshot(&bob), before);
        prop_assert_eq!(bob.decrypt(&message).unwrap(), vec![0x5a; len]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Histories long enough that KEM epochs complete inside the random
    /// part, so hybrid steps meet loss, reordering, replays, tampering and
    /// save/restore (a chunk, a ciphertext or a pending secret mid-way).
    #[test]
    fn long_random_conversations_through_pq_epochs(
        seed in any::<u64>(),
        events in proptest::collection::vec(event(), 300..700),
    ) {
        let (alice, bob, rng) = pair(seed);
        let mut world = World {
            alice, bob, rng,
            to_alice: Wire::default(),
            to_bob: Wire::default(),
            bob_has_received: false,
            counter: 0,
        };
        for event in &events {
            world.apply(event)?;
        }
        world.drain_then_complete_pq_epochs()?;
    }
}
