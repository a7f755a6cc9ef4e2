//! Sender keys as the client keeps them: ours per group (with its epoch and
//! the members who have it) and each member's that we read with.
//!
//! Our key's epoch is the group version at which we made it. Before we
//! send, a key that anyone outside the current state holds (an account in
//! its `distributed_to` that is not a member now: removed, left, or added
//! on a branch the fork choice dropped) is replaced by a fresh one, so no
//! one outside the group reads anything sent afterwards. Who holds the key
//! is the rule, not its epoch: after a reorg a key made on the losing
//! branch can have an epoch above the winning branch's rotation point and
//! still be held by a member that branch removed. (A key older than the
//! rotation point is replaced too: a member removed and added again lost
//! every key at its removal.) A new key reaches no one until it is distributed, and it is distributed from its current
//! iteration, so a member added later cannot read what was sent before.
//! Who already has our current key is recorded with it: every send first
//! distributes it (pairwise, signed by our identity) to the members who do
//! not, newly added ones included, in the same fan-out and ahead of the
//! message.
//!
//! For each member we keep the key that arrived last and the one before
//! (messages it sent before it learnt of a removal may still be queued for
//! us), by arrival, not by epoch: a member's fresh key made after a reorg
//! may carry a lower epoch than the one it replaces. A removed member's
//! keys are dropped at once.
//!
//! Must never: send under a sender key someone outside the current state
//! holds, persist a chain behind one that encrypted (the caller commits the
//! advanced key before the envelopes leave), or accept a distribution not
//! signed by the member it is for.

use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use umbra_protocol::group::{
    GroupError, GroupMessage, GroupReceiver, GroupReceiverPickle, GroupSender, GroupSenderPickle,
    GroupState, SignedDistribution,
};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::AccountId;
use zeroize::Zeroizing;

use crate::records;
use crate::{Error, GroupOpenFailure};

use super::{GroupFailure, GroupId};

/// How many sender keys of one member we keep: the one that arrived last,
/// and the one it replaced (see the module docs).
const KEPT_MEMBER_KEYS: usize = 2;

/// Our sender key in one group (kind `GroupSenderKey`, guarded against
/// rollback: an older copy would encrypt twice under one message key).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OwnSenderKey {
    /// The group version at which it was made.
    pub(crate) epoch: u64,
    /// The `GroupSender` pickle.
    #[serde(with = "serde_bytes")]
    sender: Vec<u8>,
    /// Members that have this key (ascending account ids).
    pub(crate) distributed_to: Vec<[u8; 16]>,
}

impl Drop for OwnSenderKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.sender);
    }
}

impl OwnSenderKey {
    /// A fresh key for `group` at its current version.
    pub(crate) fn fresh(state: &GroupState) -> Self {
        let epoch = state.version();
        let sender = GroupSender::generate(*state.group(), epoch, &mut OsRng);
        Self {
            epoch,
            sender: sender.pickle().encode().to_vec(),
            distributed_to: Vec::new(),
        }
    }

    /// Ours to send with in `state`: the stored key unless an account that
    /// is not a member of `state` has it (checked before
    /// [`retain_members`](Self::retain_members) forgets who they were), it
    /// predates the rotation point, or its chain is used up (or there is
    /// none), then a fresh one. The first is the rule that keeps outsiders
    /// out, also across a reorg; the second stays because a member removed
    /// and added again dropped every key when it was removed, yet is still
    /// listed as having ours: a fresh key reaches it again.
    pub(crate) fn for_sending(
        stored: Option<OwnSenderKey>,
        state: &GroupState,
    ) -> Result<Self, Error> {
        Ok(match stored {
            Some(key)
                if !key.held_outside(state)
                    && !key.sender()?.needs_rotation(state.rotation_point()) =>
            {
                key
            }
            _ => Self::fresh(state),
        })
    }

    /// Whether an account that is not a member of `state` has this key.
    fn held_outside(&self, state: &GroupState) -> bool {
        self.distributed_to
            .iter()
            .any(|a| !state.is_member(&AccountId::from_bytes(*a)))
    }

    pub(crate) fn sender(&self) -> Result<GroupSender, Error> {
        let pickle = GroupSenderPickle::decode(&self.sender).map_err(records::group::bad_key)?;
        Ok(GroupSender::from_pickle(&pickle).map_err(records::group::bad_key)?)
    }

    pub(crate) fn set_sender(&mut self, sender: &GroupSender) {
        zeroize::Zeroize::zeroize(&mut self.sender);
        self.sender = sender.pickle().encode().to_vec();
    }

    /// The signed distribution of the key as it is now (from its current
    /// iteration: nothing already sent can be read with it).
    pub(crate) fn distribution(&self, identity: &IdentityKeyPair) -> Result<Vec<u8>, Error> {
        let sender = self.sender()?;
        Ok(sender.distribution(identity).as_bytes().to_vec())
    }

    pub(crate) fn has(&self, member: &AccountId) -> bool {
        self.distributed_to.binary_search(member.as_bytes()).is_ok()
    }

    pub(crate) fn mark_distributed(&mut self, member: &AccountId) {
        if let Err(at) = self.distributed_to.binary_search(member.as_bytes()) {
            self.distributed_to.insert(at, *member.as_bytes());
        }
    }

    /// Forgets that `member` has this key (the item that carried it was
    /// refused): the next send distributes it again.
    pub(crate) fn unmark_distributed(&mut self, member: &AccountId) {
        if let Ok(at) = self.distributed_to.binary_search(member.as_bytes()) {
            self.distributed_to.remove(at);
        }
    }

    /// Keeps only members still in `state` (a removed member that is added
    /// again must get the current key again).
    pub(crate) fn retain_members(&mut self, state: &GroupState) {
        self.distributed_to
            .retain(|a| state.is_member(&AccountId::from_bytes(*a)));
    }

    /// Encrypts one client payload (padded by the protocol), advancing
    /// the chain. A payload too long for a group message is refused here,
    /// before anything is stored or sent.
    pub(crate) fn encrypt(&mut self, payload: &[u8]) -> Result<GroupMessage, Error> {
        let mut sender = self.sender()?;
        let message = sender.encrypt(payload).map_err(|e| match e {
            GroupError::PlaintextTooLong { len } => Error::MessageTooLarge {
                len,
                max: umbra_protocol::group::MAX_GROUP_PAYLOAD,
            },
            other => GroupFailure::Refused(other.to_string()).into(),
        })?;
        self.set_sender(&sender);
        Ok(message)
    }
}

/// One member key we keep.
#[derive(Clone, Serialize, Deserialize)]
struct MemberKey {
    epoch: u64,
    chain_id: u32,
    /// The `GroupReceiver` pickle.
    #[serde(with = "serde_bytes")]
    receiver: Vec<u8>,
}

impl Drop for MemberKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.receiver);
    }
}

/// A member's sender keys in one group (kind `GroupReceiverKey`), in
/// order of arrival, oldest first.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct ReceiverKeys {
    keys: Vec<MemberKey>,
}

impl ReceiverKeys {
    /// Takes in a distribution that `member` (whose identity the pairwise
    /// session authenticated as `identity`) sent for `group`.
    pub(crate) fn accept(
        &mut self,
        payload: &[u8],
        identity: &IdentityPublic,
        group: &GroupId,
    ) -> Result<(), GroupFailure> {
        let distribution = SignedDistribution::verify(payload, identity, group)
            .map_err(|e| GroupFailure::Refused(e.to_string()))?;
        let (epoch, chain_id) = (distribution.epoch(), distribution.chain_id());
        if self
            .keys
            .iter()
            .any(|k| k.epoch == epoch && k.chain_id == chain_id)
        {
            // A resend of a key we have: keep our chain (it may be ahead).
            return Ok(());
        }
        let receiver = GroupReceiver::new(distribution);
        self.keys.push(MemberKey {
            epoch,
            chain_id,
            receiver: receiver.pickle().encode().to_vec(),
        });
        // Oldest arrival first (see the module docs: not by epoch).
        let excess = self.keys.len().saturating_sub(KEPT_MEMBER_KEYS);
        self.keys.drain(..excess);
        Ok(())
    }

    /// Decrypts the group message `inbound` carries with the key its
    /// header names, returning the client payload; the key's advance is
    /// kept only if it opened.
    pub(crate) fn decrypt(
        &mut self,
        inbound: &InboundEnvelope,
    ) -> Result<Zeroizing<Vec<u8>>, Failed> {
        let header = inbound
            .group_message()
            .map(|m| *m.header())
            .ok_or(Failed::Bad(GroupOpenFailure::NotGroupMessage))?;
        let Some(key) = self
            .keys
            .iter_mut()
            .find(|k| k.epoch == header.epoch && k.chain_id == header.chain_id)
        else {
            return Err(Failed::NoKey);
        };
        let mut receiver = GroupReceiverPickle::decode(&key.receiver)
            .and_then(|p| GroupReceiver::from_pickle(&p))
            .map_err(|e| Failed::Bad(GroupOpenFailure::StoredKey(e)))?;
        let plain = receiver.decrypt(inbound).map_err(|e| match e {
            GroupError::Replay(_) => Failed::Replay,
            other => Failed::Bad(GroupOpenFailure::Refused(other)),
        })?;
        zeroize::Zeroize::zeroize(&mut key.receiver);
        key.receiver = receiver.pickle().encode().to_vec();
        Ok(Zeroizing::new(plain))
    }
}

/// Why a group message did not open.
#[derive(Debug)]
pub(crate) enum Failed {
    /// No key of ours matches its epoch and chain: the sender's distribution
    /// has not arrived (or was refused).
    NoKey,
    /// Its iteration was already read: a redelivery or a replay.
    Replay,
    /// It does not open or verify.
    Bad(GroupOpenFailure),
}

#[cfg(test)]
mod tests {
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
        key.mark_distributed(&b);
        key.mark_distributed(&c);
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
        bobs.mark_distributed(&b);
        let old_chain = chain(&bobs);
        let kept = OwnSenderKey::for_sending(Some(bobs), &winner).expect("key");
        assert_eq!(chain(&kept), old_chain, "kept: no outsider has it");
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
            keys.accept(d, &identity.public(), &group)
                .expect("accepted");
        }
        // The two that arrived last stay, although 5 has the highest epoch.
        let held: Vec<_> = keys.keys.iter().map(|k| (k.epoch, k.chain_id)).collect();
        assert_eq!(held, vec![(3, three), (4, four)]);
        assert!(!held.contains(&(5, five)));
    }
}
