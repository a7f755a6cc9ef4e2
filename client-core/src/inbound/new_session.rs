//! Starting a session from a pre-key message (docs/PROTOCOL.md §12.5):
//! only a hybrid (`0x05`) one, with the signed, extra and ML-KEM prekeys it
//! names loaded from the store first.
//!
//! Must never: start a session from a classical (`0x01`) pre-key message,
//! or delete a prekey here (the caller deletes the one-time ones it
//! returns, in the transaction that stores the session).

use umbra_protocol::kem_prekeys::KemPreKeyKind;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseMessage, PairwiseSession};
use umbra_protocol::prekeys::PreKeyRef;

use super::{refusal, Failure, Rejected};
use crate::engine::Engine;
use crate::prekeys::LoadedPreKeys;
use crate::DecryptFailure;

async fn load_prekeys(
    engine: &Engine,
    inbound: &InboundEnvelope,
) -> Result<LoadedPreKeys, Failure> {
    let PairwiseMessage::PreKey(message) = inbound.message() else {
        return Ok(LoadedPreKeys::default());
    };
    let (signed, extra) = (
        message.initial.signed_prekey_id,
        message.initial.extra_prekey,
    );
    let kem = message.kem_prekey();
    Ok(engine.prekeys.for_message(signed, extra, kem).await?)
}

/// Starts a session from a pre-key message: only a hybrid (`0x05`) one. A
/// classical (`0x01`) pre-key message is refused with a named reason
/// (docs/PROTOCOL.md §12.5): a session a quantum attacker who recorded it
/// could read later is never started, whoever asks. Returns the session,
/// the plaintext and the one-time prekeys (X25519, ML-KEM) it used.
pub(super) async fn accept(
    engine: &Engine,
    inbound: &InboundEnvelope,
    reason: fn(PairwiseError) -> DecryptFailure,
) -> Result<(PairwiseSession, Vec<u8>, Used), Failure> {
    let PairwiseMessage::PreKey(message) = inbound.message() else {
        return Err(refusal(reason, PairwiseError::WrongSession));
    };
    // Refused before any prekey is loaded (docs/PROTOCOL.md 12.5).
    let Some(kem) = message.kem_prekey() else {
        return Err(classical_refused());
    };
    let prekeys = load_prekeys(engine, inbound).await?;
    // The protocol crate's `accept` refuses a classical message too (1.4
    // rule 2); should it ever be the one to, it is the same refusal.
    let (session, plain, extra) =
        PairwiseSession::accept(&engine.identity, &engine.me().address(), inbound, &prekeys)
            .map_err(|e| match e {
                PairwiseError::ClassicalPreKeyRefused => classical_refused(),
                e => refusal(reason, e),
            })?;
    let used = Used {
        one_time: match extra {
            Some(PreKeyRef::OneTime(id)) => Some(id),
            _ => None,
        },
        kem_one_time: (kem.kind == KemPreKeyKind::OneTime).then_some(kem.id),
    };
    Ok((session, plain, used))
}

/// A classical (`0x01`) pre-key message: refused for good under its own
/// reason (the sender's client is out of date), never kept for a retry.
fn classical_refused() -> Failure {
    Failure::Rejected(Rejected::anonymous(DecryptFailure::ClassicalPreKeyRefused))
}

/// The one-time prekeys a new session used, deleted in its transaction.
#[derive(Default)]
pub(super) struct Used {
    pub(super) one_time: Option<u32>,
    pub(super) kem_one_time: Option<u32>,
}
