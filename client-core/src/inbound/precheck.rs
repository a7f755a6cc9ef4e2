//! The network half of receiving: the directory requests an envelope needs,
//! asked before the state lock is taken, so no send and no other envelope
//! waits for the relay's answer. Two kinds:
//!
//! - the identity check of first contact or a newly changed key (does the
//!   claimed account hold the name and publish the sealing identity?);
//! - the rename lookups (who holds the name a known contact now claims, or
//!   the new name of its `ProfileChange`?): a rename is believed only if
//!   the directory says the sender's account holds that name;
//! - the device-list fetch (docs/PROTOCOL.md §15.3 rule 1) when the sealed
//!   sender is a device the held list of its account lacks: verified under
//!   the pinned identity, or on first contact under the sealing identity
//!   once the directory confirmed it (never before: an unconfirmed identity
//!   must not decide which devices an account has).
//!
//! [`plan`] opens and trial-decrypts the envelope without the lock (into a
//! transaction that is thrown away), reads the contact state, and asks the
//! relay what that state calls for. The locked pass then decides again from
//! the state it reads under the lock and uses an answer only if it needs
//! exactly that request (same account, name and sealing identity; same
//! name for a lookup); otherwise the state changed in between and the
//! caller plans again ([`Failure::Replan`]), a bounded number of times.
//!
//! Must never: write to the store, hand the locked pass an answer for
//! another account, name or identity than the one it checks, or turn a
//! failure to ask into a contradiction (PROTOCOL.md §12.5: it is kept; a
//! rename lookup that fails only means the rename is not believed).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use umbra_protocol::content::Content;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::{AccountId, ErrorCode, Request, Response, Username};

use super::{decrypt, Failure, Rejected};
use crate::engine::Engine;
use crate::payload::Payload;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{DecryptFailure, Error, SharedError};

/// How often the locked pass may find the state changed since [`plan`]
/// before the envelope is kept for a redelivery instead.
pub(super) const PLAN_ATTEMPTS: usize = 3;

/// What [`plan`] learnt from the relay, if the envelope needed a check.
#[derive(Default)]
pub(super) struct Checked {
    /// The check that was asked and its answer, if the state called for one.
    answer: Option<Asked>,
    /// The rename lookups that were asked, by name.
    holders: Vec<Holder>,
    /// The device-list fetch that was made, if the sender's device was
    /// not listed: for which account, and why it could not be made.
    list: Option<(AccountId, Result<(), DecryptFailure>)>,
    /// Whether a missing answer must keep the envelope rather than plan
    /// again (the attempts are used up).
    pub(super) last: bool,
}

/// One directory check: whom it asked about, and the answer (`Err` holds
/// why the relay could not be asked, a kept failure).
struct Asked {
    account: AccountId,
    name: Username,
    identity: IdentityPublic,
    answer: Result<Directory, DecryptFailure>,
}

/// One rename lookup: which account the directory says holds `name`
/// (`None`: nobody, or the relay could not be asked).
struct Holder {
    name: Username,
    account: Option<AccountId>,
}

impl Checked {
    /// The answer for this exact check, learnt without the lock. None was
    /// asked for it when the state changed after [`plan`] read it: then the
    /// caller plans again, or, once the attempts are used up, keeps the
    /// envelope (a passing failure).
    pub(super) fn answer(
        &self,
        account: AccountId,
        name: &Username,
        identity: &IdentityPublic,
    ) -> Result<Directory, Failure> {
        match &self.answer {
            Some(asked)
                if asked.account == account
                    && asked.name == *name
                    && asked.identity == *identity =>
            {
                asked
                    .answer
                    .clone()
                    .map_err(|reason| Failure::Kept(Rejected::anonymous(reason)))
            }
            _ if self.last => Err(Failure::Kept(Rejected::anonymous(
                DecryptFailure::ContactChangedDuringCheck,
            ))),
            _ => Err(Failure::Replan),
        }
    }

    /// Whether the directory said, without the lock, that `account` holds
    /// `name`. A lookup that was not made for this name means the state
    /// changed after [`plan`] read it: plan again, or, once the attempts
    /// are used up, do not believe the rename (the message itself is still
    /// accepted; its next message claims the name again).
    pub(super) fn holds(&self, name: &Username, account: AccountId) -> Result<bool, Failure> {
        match self.holders.iter().find(|h| h.name == *name) {
            Some(holder) => Ok(holder.account == Some(account)),
            None if self.last => Ok(false),
            None => Err(Failure::Replan),
        }
    }

    /// Whether the sender's device list was fetched for `account` (then the
    /// held list is as new as the relay's and an unlisted device is
    /// refused). A fetch that failed keeps the envelope; none made means
    /// the state changed since [`plan`]: plan again, then keep it.
    pub(super) fn list_fetched(&self, account: AccountId) -> Result<(), Failure> {
        match &self.list {
            Some((asked, outcome)) if *asked == account => outcome
                .clone()
                .map_err(|reason| Failure::Kept(Rejected::anonymous(reason))),
            _ if self.last => Err(Failure::Kept(Rejected::anonymous(
                DecryptFailure::ContactChangedDuringCheck,
            ))),
            _ => Err(Failure::Replan),
        }
    }

    /// A plan with the given rename lookups already answered (tests of the
    /// locked pass).
    #[cfg(test)]
    pub(super) fn with_holders(holders: &[(&str, Option<AccountId>)], last: bool) -> Self {
        Self {
            answer: None,
            list: None,
            holders: holders
                .iter()
                .map(|(name, account)| Holder {
                    name: Username::parse(name).expect("valid name"),
                    account: *account,
                })
                .collect(),
            last,
        }
    }
}

/// Asks the directory whatever the envelope needs, without the state lock.
/// Anything that stops the trial (a seen envelope, one that does not open
/// or decrypt) asks nothing: the locked pass meets the same outcome and
/// sorts it. Only a failing store is an error.
pub(super) async fn plan(engine: &Arc<Engine>, envelope: &[u8]) -> Result<Checked, Error> {
    let Some(needs) = needed(engine, envelope).await? else {
        return Ok(Checked::default());
    };
    let mut checked = Checked::default();
    if let Some((account, name, identity)) = needs.identity {
        let answer = match directory_check(engine, account, &name, &identity).await {
            Ok(found) => Ok(found),
            Err(Failure::Store(e)) => return Err(e),
            Err(Failure::Kept(r) | Failure::Rejected(r)) => Err(r.reason),
            Err(Failure::Duplicate | Failure::Blocked | Failure::Replan) => {
                return Ok(Checked::default())
            }
        };
        // A sender the check does not confirm is rejected or kept before
        // any rename is looked at: asking about its names would only spend
        // the rate budget.
        let confirmed = answer == Ok(Directory::Confirms);
        checked.answer = Some(Asked {
            account,
            name,
            identity,
            answer,
        });
        if !confirmed {
            return Ok(checked);
        }
    }
    if let Some((account, identity)) = needs.list {
        checked.list = Some((account, fetch_list(engine, account, &identity).await?));
    }
    for name in needs.names {
        let account = match engine.resolve(&name).await {
            Ok(account) => Some(account),
            Err(Error::Store(e)) => return Err(Error::Store(e)),
            Err(error) => {
                tracing::debug!(error = %crate::error::LogSafe(&error), "rename lookup failed; the rename is not believed");
                None
            }
        };
        checked.holders.push(Holder { name, account });
    }
    Ok(checked)
}

/// The directory requests the locked pass would need, read from the
/// current state.
struct Needs {
    /// The identity check: the claimed name on first contact, the known
    /// name on a new key.
    identity: Option<(AccountId, Username, IdentityPublic)>,
    /// The rename lookups: the name a known contact now claims, and the
    /// new name of a `ProfileChange`.
    names: Vec<Username>,
    /// The device-list fetch: the account and the identity to verify its
    /// list under, if the sender's device is not in the held list.
    list: Option<(AccountId, IdentityPublic)>,
}

async fn needed(engine: &Arc<Engine>, envelope: &[u8]) -> Result<Option<Needs>, Error> {
    if engine.markers.is_seen(&engine.markers.of(envelope)).await? {
        return Ok(None);
    }
    let Ok(inbound) = InboundEnvelope::open(&engine.identity, envelope) else {
        return Ok(None);
    };
    let own = engine.is_our_identity(inbound.sender());
    if own
        && !super::own_device::from_own_other_device(
            engine,
            inbound.sender_address().account,
            inbound.sender_address().device,
        )
    {
        return Ok(None);
    }
    if !own && inbound.group_message().is_some() {
        return group_message_needs(engine, &inbound).await;
    }
    // Thrown away: the locked pass decrypts again from the state it reads.
    let plaintext = match decrypt(engine, &inbound, &mut Txn::new()).await {
        Ok((plaintext, _)) => zeroize::Zeroizing::new(plaintext),
        Err(Failure::Store(e)) => return Err(e),
        Err(_) => return Ok(None),
    };
    let Ok(payload) = Payload::decode(&plaintext) else {
        return Ok(None);
    };
    if payload.sender != *inbound.sender_address() {
        return Ok(None);
    }
    let identity = inbound.sender().clone();
    let account = payload.sender.account;
    if own {
        // Another device of our account (§15.8): no directory check (it
        // is sealed by our identity), only our list if it lacks the device.
        let listed = engine
            .devices
            .held(&account)
            .await?
            .allows(inbound.sender_address().device);
        return Ok(Some(Needs {
            identity: None,
            names: Vec::new(),
            list: (!listed).then_some((account, identity)),
        }));
    }
    if engine.is_blocked(account.as_bytes()).await? {
        // Nothing is believed from a blocked account that would need the
        // directory (the locked pass drops a new identity and ignores a
        // rename), and a request would spend the rate budget and show the
        // relay, by its timing, who sent the envelope.
        return Ok(None);
    }
    let claimed = payload.sender_username.clone();
    let mut needs = Needs {
        identity: None,
        names: Vec::new(),
        list: None,
    };
    let listed = engine
        .devices
        .held(&account)
        .await?
        .allows(inbound.sender_address().device);
    match engine.contact_by_account(account.as_bytes()).await? {
        None => {
            if !listed {
                // Fetched after the directory confirmed the identity.
                needs.list = Some((account, identity.clone()));
            }
            needs.identity = Some((account, claimed, identity));
        }
        Some(mut contact) => {
            let pinned: bool = contact.pinned.to_bytes().ct_eq(&identity.to_bytes()).into();
            if !listed && pinned {
                needs.list = Some((account, identity.clone()));
            }
            if contact.observe(&identity) == Observation::NewlyChanged {
                let name = Username::parse_canonical(&contact.username).unwrap_or(claimed.clone());
                needs.identity = Some((account, name, identity));
            }
            if renamed(&contact, &claimed) {
                needs.names.push(claimed);
            }
        }
    }
    if let Content::ProfileChange { new_username } = payload.content {
        if !needs.names.contains(&new_username) {
            needs.names.push(new_username);
        }
    }
    Ok(Some(needs))
}

/// A sealed group message from a contact's device (§8.4, §15.3 rule 3):
/// only the device-list fetch, if the device is not in the held list and
/// the pinned identity sealed it (a message under another identity is
/// refused without one; a blocked account's asks nothing). Its sender key,
/// not a directory check, authenticates what it says.
async fn group_message_needs(
    engine: &Arc<Engine>,
    inbound: &InboundEnvelope,
) -> Result<Option<Needs>, Error> {
    let sender = *inbound.sender_address();
    let listed = engine
        .devices
        .held(&sender.account)
        .await?
        .allows(sender.device);
    if listed || engine.is_blocked(sender.account.as_bytes()).await? {
        return Ok(None);
    }
    let Some(contact) = engine.contact_by_account(sender.account.as_bytes()).await? else {
        return Ok(None);
    };
    let identity = inbound.sender();
    if !bool::from(contact.pinned.to_bytes().ct_eq(&identity.to_bytes())) {
        return Ok(None);
    }
    Ok(Some(Needs {
        identity: None,
        names: Vec::new(),
        list: Some((sender.account, identity.clone())),
    }))
}

/// Fetches `account`'s device list under `identity` (§15.3 rule 2). The
/// relay could not be asked: why, to keep the envelope. A list the relay
/// served wrongly (forged, older, malformed) is reported and not applied,
/// which counts as fetched: the held list stays, and decides.
async fn fetch_list(
    engine: &Arc<Engine>,
    account: AccountId,
    identity: &IdentityPublic,
) -> Result<Result<(), DecryptFailure>, Error> {
    match engine.fetch_device_list(account, identity).await {
        Ok(_) => Ok(Ok(())),
        Err(Error::Store(e)) => Err(Error::Store(e)),
        Err(Error::Protocol(misbehaved)) => {
            tracing::warn!(error = %misbehaved, "the relay served a device list that was not applied");
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(DecryptFailure::DeviceListUnavailable(
            SharedError::new(e),
        ))),
    }
}

/// Whether a known contact's message claims a name other than the one the
/// contact is known by: a rename, believed only if the directory agrees.
/// The locked pass decides with this same rule.
pub(super) fn renamed(contact: &ContactRecord, claimed: &Username) -> bool {
    contact.username != claimed.as_str()
}

/// What the relay's directory says about a claimed sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Directory {
    /// `name` belongs to `account`, which publishes the sealing identity.
    Confirms,
    /// The name is unknown, belongs to another account, or that account
    /// publishes another identity (or none).
    Contradicts,
}

/// Asks the relay (`ResolveUsername`) whether `account` holds `name` and
/// publishes `identity`. A plain directory read: it claims none of the
/// sender's one-time prekeys. A failure to ask is [`Failure::Kept`].
async fn directory_check(
    engine: &Arc<Engine>,
    account: AccountId,
    name: &Username,
    identity: &IdentityPublic,
) -> Result<Directory, Failure> {
    let response = engine
        .request(Request::ResolveUsername {
            username: name.clone(),
        })
        .await;
    match response {
        Ok(Response::Resolved {
            account: listed,
            identity: published,
            ..
        }) => {
            let matches = listed == account
                && published.is_some_and(|p| bool::from(p.as_slice().ct_eq(&identity.to_bytes())));
            Ok(if matches {
                Directory::Confirms
            } else {
                Directory::Contradicts
            })
        }
        Ok(other) => Err(Failure::Kept(Rejected::anonymous(
            DecryptFailure::DirectoryUnexpected { got: other.kind() },
        ))),
        Err(Error::Relay {
            code: ErrorCode::UnknownUsername | ErrorCode::UnknownRecipient,
            ..
        }) => Ok(Directory::Contradicts),
        Err(Error::Store(e)) => Err(Failure::Store(Error::Store(e))),
        Err(e) => Err(Failure::Kept(Rejected::anonymous(
            DecryptFailure::DirectoryUnavailable(SharedError::new(e)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    //! The re-check under the lock: an answer is used only for the check it
    //! was asked for; anything else plans again, then keeps the envelope.

    use rand::rngs::OsRng;
    use umbra_protocol::identity::IdentityKeyPair;

    use super::*;

    fn asked(
        account: AccountId,
        identity: &IdentityPublic,
        answer: Result<Directory, DecryptFailure>,
    ) -> Checked {
        Checked {
            answer: Some(Asked {
                account,
                name: Username::parse("alice").expect("valid name"),
                identity: identity.clone(),
                answer,
            }),
            holders: Vec::new(),
            list: None,
            last: false,
        }
    }

    fn outcome(result: Result<Directory, Failure>) -> &'static str {
        match result {
            Ok(Directory::Confirms) => "confirms",
            Ok(Directory::Contradicts) => "contradicts",
            Err(Failure::Replan) => "replan",
            Err(Failure::Kept(_)) => "kept",
            Err(_) => "other",
        }
    }

    #[test]
    fn an_answer_is_used_only_for_the_check_it_was_asked_for() {
        let account = AccountId::random(&mut OsRng);
        let identity = IdentityKeyPair::generate(&mut OsRng).public();
        let other_identity = IdentityKeyPair::generate(&mut OsRng).public();
        let alice = Username::parse("alice").expect("valid name");
        let carol = Username::parse("carol").expect("valid name");
        let contradicted = asked(account, &identity, Ok(Directory::Contradicts));
        assert_eq!(
            outcome(contradicted.answer(account, &alice, &identity)),
            "contradicts"
        );
        let confirmed = asked(account, &identity, Ok(Directory::Confirms));
        assert_eq!(
            outcome(confirmed.answer(account, &alice, &identity)),
            "confirms"
        );
        // Another identity, name or account: the state changed in between.
        assert_eq!(
            outcome(confirmed.answer(account, &alice, &other_identity)),
            "replan"
        );
        assert_eq!(
            outcome(confirmed.answer(account, &carol, &identity)),
            "replan"
        );
        let elsewhere = AccountId::random(&mut OsRng);
        assert_eq!(
            outcome(confirmed.answer(elsewhere, &alice, &identity)),
            "replan"
        );
        assert_eq!(
            outcome(Checked::default().answer(account, &alice, &identity)),
            "replan"
        );
        // The relay could not be asked: a passing failure, kept.
        let timed_out = SharedError::new(Error::Timeout(std::time::Duration::from_secs(10)));
        let unreachable = asked(
            account,
            &identity,
            Err(DecryptFailure::DirectoryUnavailable(timed_out)),
        );
        assert_eq!(
            outcome(unreachable.answer(account, &alice, &identity)),
            "kept"
        );
    }

    #[test]
    fn a_rename_lookup_is_believed_only_for_its_name_and_the_sender_s_account() {
        let sender = AccountId::random(&mut OsRng);
        let stranger = AccountId::random(&mut OsRng);
        let alice2 = Username::parse("alice2").expect("valid name");
        let alice3 = Username::parse("alice3").expect("valid name");
        let holds = |checked: &Checked, name: &Username, account| match checked.holds(name, account)
        {
            Ok(true) => "believed",
            Ok(false) => "not believed",
            Err(Failure::Replan) => "replan",
            Err(_) => "other",
        };
        let asked = Checked::with_holders(&[("alice2", Some(sender))], false);
        assert_eq!(holds(&asked, &alice2, sender), "believed");
        // The directory says someone else holds it: the claim is false.
        assert_eq!(holds(&asked, &alice2, stranger), "not believed");
        // Nobody holds it, or the relay could not be asked.
        let unknown = Checked::with_holders(&[("alice2", None)], false);
        assert_eq!(holds(&unknown, &alice2, sender), "not believed");
        // Not asked for this name: the state changed since the plan.
        assert_eq!(holds(&asked, &alice3, sender), "replan");
        let last = Checked::with_holders(&[], true);
        assert_eq!(holds(&last, &alice3, sender), "not believed");
    }

    #[test]
    fn once_the_attempts_are_used_up_a_changed_state_keeps_the_envelope() {
        let account = AccountId::random(&mut OsRng);
        let identity = IdentityKeyPair::generate(&mut OsRng).public();
        let alice = Username::parse("alice").expect("valid name");
        let last = Checked {
            answer: None,
            holders: Vec::new(),
            list: None,
            last: true,
        };
        assert_eq!(outcome(last.answer(account, &alice, &identity)), "kept");
    }
}
