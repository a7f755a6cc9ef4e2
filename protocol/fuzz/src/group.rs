//! The group parties for the group targets: alice and bob of
//! `docs/test-vectors/group.json` (alice's sender key, bob's receiver for
//! it), and the states and author identities of `group_state.json`'s
//! change chain, so vector changes apply, vector messages decrypt, and
//! their mutations reach the checks behind the decoders.
//!
//! Must never: hold anything a target changes (targets clone).

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use umbra_protocol::group::{
    GroupId, GroupReceiver, GroupReceiverPickle, GroupState, SignedDistribution,
};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use zeroize::Zeroizing;

use crate::vector_hex;

const GROUP_JSON: &str = include_str!("../../../docs/test-vectors/group.json");
const GROUP_STATE_JSON: &str = include_str!("../../../docs/test-vectors/group_state.json");

/// alice's address in group.json (the sealed sender of its envelopes).
pub const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};

/// group.json's parties.
pub struct Messages {
    /// The sender (seed 0x41).
    pub alice: IdentityKeyPair,
    /// The member reading (seed 0x42).
    pub bob: IdentityKeyPair,
    /// The group.
    pub group: GroupId,
    /// bob's receiver for alice's sender key, before any message, as its
    /// stored pickle (a receiver is not `Clone`: [`Messages::receiver`]).
    receiver: Zeroizing<Vec<u8>>,
}

impl Messages {
    /// A fresh copy of bob's receiver.
    #[allow(clippy::expect_used)] // The fixture's own pickle always loads.
    pub fn receiver(&self) -> GroupReceiver {
        let pickle = GroupReceiverPickle::decode(&self.receiver).expect("fixture pickle decodes");
        GroupReceiver::from_pickle(&pickle).expect("fixture receiver loads")
    }
}

/// The fixture of [`Messages`], built once.
pub fn messages() -> &'static Messages {
    static MESSAGES: OnceLock<Messages> = OnceLock::new();
    MESSAGES.get_or_init(build_messages)
}

#[allow(clippy::expect_used)] // A fixture that cannot be built is a broken fuzz build.
fn build_messages() -> Messages {
    let alice = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x41; 32]));
    let bob = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x42; 32]));
    let group: [u8; 32] = vector_hex(GROUP_JSON, "/group_id")
        .try_into()
        .expect("a 32-byte group id");
    let group = GroupId(group);
    let distribution = vector_hex(GROUP_JSON, "/distribution");
    let verified = SignedDistribution::verify(&distribution, &alice.public(), &group)
        .expect("the vector distribution verifies");
    Messages {
        alice,
        bob,
        group,
        receiver: GroupReceiver::new(verified).pickle().encode(),
    }
}

/// group_state.json's chain: every state, and the identity of every
/// author that appears in it.
pub struct Chain {
    /// The state after each change of the chain, in order.
    pub states: Vec<GroupState>,
    /// (account, identity) of every author in the vector file.
    pub authors: Vec<(AccountId, IdentityPublic)>,
}

impl Chain {
    /// The identity the vector file gives `account`, if any.
    pub fn identity_of(&self, account: &AccountId) -> Option<&IdentityPublic> {
        self.authors
            .iter()
            .find(|(a, _)| a == account)
            .map(|(_, identity)| identity)
    }
}

/// The fixture of [`Chain`], built once.
pub fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(build_chain)
}

#[allow(clippy::expect_used)] // A fixture that cannot be built is a broken fuzz build.
fn build_chain() -> Chain {
    let json: serde_json::Value =
        serde_json::from_str(GROUP_STATE_JSON).expect("group_state.json parses");
    let hex_at =
        |v: &serde_json::Value| hex::decode(v.as_str().expect("a hex string")).expect("hex");
    let links = json["chain"].as_array().expect("a chain");
    let states = links
        .iter()
        .map(|link| GroupState::from_bytes(&hex_at(&link["state"]["hex"])).expect("a vector state"))
        .collect();
    let mut authors: Vec<(AccountId, IdentityPublic)> = Vec::new();
    for change in links.iter().map(|link| &link["change"]) {
        let account = AccountId::from_slice(&hex_at(&change["author"])).expect("an account id");
        let identity =
            IdentityPublic::from_bytes(&hex_at(&change["author_identity"])).expect("an identity");
        if !authors.iter().any(|(a, _)| *a == account) {
            authors.push((account, identity));
        }
    }
    Chain { states, authors }
}
