//! Changing the account password (docs/PROTOCOL.md 11.3 "Password change",
//! 12.8 "Key slots"): one OPAQUE login under the old password and one
//! OPAQUE registration of the new one over the live connection, the local
//! store re-keyed so that only the new password opens it, and the account
//! backup re-sealed under the new export key.
//!
//! The order makes every interruption recoverable. Before the relay is
//! asked, the store's header gets a key slot for each password, so a crash
//! from then on leaves a store that both open. When the relay answers
//! `PasswordChanged` its new token replaces the stored one first (the relay
//! revoked every token, the one in use included), then the old slot is
//! dropped; when it surely refused, the header is put back
//! as it was; when its answer is lost (or it says it cannot know), both
//! slots stay and the caller is told: a login with whichever password the
//! relay now has completes it, and until one has, another change is
//! refused ([`Error::PasswordChangeUnsettled`]) so that it can neither
//! wipe the pending key below nor drop a slot the relay's password opens.
//! The backup is
//! re-sealed last: the new export key is the store's before the upload is
//! tried, so a failed upload is a warning, not a failed change (the
//! backup upkeep re-seals under the new key). The new export key is also
//! committed as the store's *pending* one before `PasswordChangeFinish` is
//! sent: when the answer is lost (or the process dies before it is read),
//! the next login compares its export key with the current and the pending
//! one (constant time) to learn which password the relay holds, re-seals
//! and uploads at once if it is the new one, and wipes the pending key.
//!
//! Must never: ask the relay before the old password is proven to open the
//! local store, leave a header that neither password opens, or keep a
//! password, export key or OPAQUE state past the call.

use std::sync::Arc;

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand::rngs::OsRng;
use umbra_protocol::opaque_suite::{
    exact_len, umbra_ksf, UmbraOpaqueSuite, KE2_LEN, REGISTRATION_RESPONSE_LEN,
};
use umbra_protocol::wire::{ErrorCode, Request, Response};

use crate::account::TokenRecord;
use crate::backup::ExportKey;
use crate::engine::Engine;
use crate::failure::{CryptoFailure, RelayMisbehaved};
use crate::store::StoreError;
use crate::Error;

/// Where the relay left a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayVerdict {
    /// It replaced the record: only the new password works there.
    Changed,
    /// It surely did not: the old password still works there.
    Unchanged,
    /// It may have: the answer was lost or the relay could not confirm.
    Unknown,
}

fn opaque(step: &'static str) -> impl FnOnce(opaque_ke::errors::ProtocolError) -> Error {
    move |source| Error::Crypto(CryptoFailure::Opaque { step, source })
}

/// Whether an error answering (or instead of) `PasswordChangeFinish`
/// leaves the relay's record surely unchanged.
fn verdict_of(error: &Error) -> RelayVerdict {
    match error {
        // 9.6: an Internal may mean "carried out, but not confirmed".
        Error::Relay {
            code: ErrorCode::Internal,
            ..
        } => RelayVerdict::Unknown,
        Error::Relay { .. } => RelayVerdict::Unchanged,
        // The connection broke or the reply did not come in time: the
        // finish may have been carried out.
        _ => RelayVerdict::Unknown,
    }
}

impl Engine {
    /// Changes the account password from `old` to `new` (see the module
    /// doc for the order and what an interruption leaves). Fails with
    /// [`Error::WrongPassword`] if `old` does not open the local store and
    /// [`Error::AuthFailed`] if the relay's record is not `old`'s, and
    /// with [`Error::PasswordChangeUnsettled`], asking nothing of the
    /// relay, while an earlier change whose answer was lost is undecided
    /// (a pending export key, or a header with two slots).
    pub(crate) async fn change_password(
        self: &Arc<Self>,
        old: &str,
        new: &str,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        // An earlier change whose answer was lost is decided by the next
        // login (12.15); until then its pending key is the only evidence
        // that the relay may hold its password, so no new change may start
        // (and wipe or replace it) before a login has settled it.
        if self.backup.pending().await?.is_some() {
            return Err(Error::PasswordChangeUnsettled);
        }
        let rekey = self
            .vault
            .prepare_rekey(old.as_bytes(), new.as_bytes(), &mut OsRng)
            .await
            .map_err(|e| match e {
                StoreError::WrongPassword => Error::WrongPassword,
                StoreError::ChangeUnsettled => Error::PasswordChangeUnsettled,
                other => Error::Store(other),
            })?;
        self.vault.write_rekey_header(&rekey.both).await?;
        let (verdict, outcome) = match self.change_on_relay(old, new).await {
            Ok(changed) => (RelayVerdict::Changed, Ok(changed)),
            Err((verdict, error)) => (verdict, Err(error)),
        };
        if let Ok((_, token)) = &outcome {
            // The token this store held is revoked: the new one goes in
            // before anything else, in one transaction (a crash before it
            // leaves a revoked token, answered by logging in again).
            self.store_token(token).await?;
        }
        match verdict {
            RelayVerdict::Changed => self.vault.write_rekey_header(&rekey.new_only).await?,
            RelayVerdict::Unchanged => self.vault.write_rekey_header(&rekey.original).await?,
            // Both passwords keep opening the store until a change completes.
            RelayVerdict::Unknown => {}
        }
        let (export_key, _) = outcome?;
        // The password changed: a re-seal that fails now is retried by the
        // upkeep under the key reseal_backup committed before its upload.
        if let Err(error) = self.reseal_backup(export_key).await {
            tracing::warn!(
                error = %crate::error::LogSafe(&error),
                "the password changed but the backup could not be re-sealed yet; the upkeep retries"
            );
        }
        Ok(())
    }

    /// The relay's two round trips. Returns the new password's export key
    /// and the token the relay issued in place of every old one, or the
    /// error with what it means for the relay's record.
    async fn change_on_relay(
        self: &Arc<Self>,
        old: &str,
        new: &str,
    ) -> Result<(ExportKey, TokenRecord), (RelayVerdict, Error)> {
        let unchanged = |e: Error| (RelayVerdict::Unchanged, e);
        let login = ClientLogin::<UmbraOpaqueSuite>::start(&mut OsRng, old.as_bytes())
            .map_err(opaque("password change login start"))
            .map_err(unchanged)?;
        let registration =
            ClientRegistration::<UmbraOpaqueSuite>::start(&mut OsRng, new.as_bytes())
                .map_err(opaque("password change registration start"))
                .map_err(unchanged)?;
        let reply = self
            .request(Request::PasswordChangeStart {
                credential_request: login.message.serialize().to_vec(),
                registration_request: registration.message.serialize().to_vec(),
            })
            .await
            // Nothing changes at the start, whatever became of it.
            .map_err(unchanged)?;
        let Response::PasswordChangeResponse {
            change_id,
            credential_response,
            registration_response,
        } = reply
        else {
            return Err(unchanged(crate::error::unexpected(
                "PasswordChangeResponse",
                &reply,
            )));
        };
        let credential_response = exact_len(&credential_response, KE2_LEN)
            .and_then(|b| CredentialResponse::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or_else(|| {
                unchanged(Error::Protocol(RelayMisbehaved::MalformedOpaque(
                    "credential response",
                )))
            })?;
        let registration_response = exact_len(&registration_response, REGISTRATION_RESPONSE_LEN)
            .and_then(|b| RegistrationResponse::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or_else(|| {
                unchanged(Error::Protocol(RelayMisbehaved::MalformedOpaque(
                    "registration response",
                )))
            })?;
        let ksf = umbra_ksf();
        // The old password opened the local store, so a failure here means
        // the relay's record is another password's: nothing is sent (the
        // relay's pending change times out).
        let mut proof = login
            .state
            .finish(
                &mut OsRng,
                old.as_bytes(),
                credential_response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
            )
            .map_err(|_| unchanged(Error::AuthFailed))?;
        // The old password's export key is not needed (the backup is
        // re-sealed, not opened); wiped with the session key now, as
        // opaque-ke does not on drop.
        drop(crate::account::take_login_export_key(&mut proof));
        let mut upload = registration
            .state
            .finish(
                &mut OsRng,
                new.as_bytes(),
                registration_response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .map_err(opaque("password change registration finish"))
            .map_err(unchanged)?;
        let export_key =
            crate::account::take_registration_export_key(&mut upload).map_err(unchanged)?;
        // Before the finish is sent: if its answer is lost (or this process
        // dies), the next login compares its export key with this one and
        // the current one to learn which the relay holds (12.15).
        self.keep_pending_export_key(&export_key)
            .await
            .map_err(unchanged)?;
        let answer = self
            .request(Request::PasswordChangeFinish {
                change_id,
                credential_finalization: proof.message.serialize().to_vec(),
                registration_upload: upload.message.serialize().to_vec(),
            })
            .await
            .and_then(|reply| self.lose_answer_for_tests(reply));
        let reply = match answer {
            Ok(reply) => reply,
            Err(error) => {
                let (verdict, error) = match error {
                    Error::Relay {
                        code: ErrorCode::AuthFailed,
                        ..
                    } => (RelayVerdict::Unchanged, Error::AuthFailed),
                    other => (verdict_of(&other), other),
                };
                if verdict == RelayVerdict::Unchanged {
                    // The relay surely kept the old record: the key just
                    // made pending is no password's. Only here: every
                    // earlier failure left the pending key as it was (none,
                    // as a change starts only without one).
                    self.forget_pending_export_key().await.unwrap_or_else(|error| {
                        tracing::warn!(
                            error = %crate::error::LogSafe(&error),
                            "the pending export key of a refused password change was not removed"
                        );
                    });
                }
                return Err((verdict, error));
            }
        };
        match reply {
            Response::PasswordChanged { token, expires_at } => Ok((
                export_key,
                TokenRecord {
                    token: *token.expose_secret(),
                    expires_at,
                },
            )),
            other => Err((
                RelayVerdict::Unknown,
                crate::error::unexpected("PasswordChanged", &other),
            )),
        }
    }
}

/// Accounts whose next `PasswordChanged` answer a test makes the client
/// lose (the relay carried the change out; the client sees a dropped
/// connection), one answer each.
#[cfg(test)]
pub(crate) static LOSE_NEXT_ANSWER: std::sync::Mutex<Vec<[u8; 16]>> =
    std::sync::Mutex::new(Vec::new());

impl Engine {
    /// Commits `key` as the pending export key (12.15).
    async fn keep_pending_export_key(&self, key: &ExportKey) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = crate::store::Txn::new();
        self.backup.put_pending(&mut txn, key)?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// Removes the pending export key (the relay surely kept the old record).
    async fn forget_pending_export_key(&self) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = crate::store::Txn::new();
        self.backup.drop_pending(&mut txn);
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// The finish's answer as received; in tests, lost on request.
    #[allow(clippy::unnecessary_wraps)]
    fn lose_answer_for_tests(&self, reply: Response) -> Result<Response, Error> {
        #[cfg(test)]
        {
            let me = *self.me().account.as_bytes();
            let mut lose = crate::engine::lock(&LOSE_NEXT_ANSWER);
            if let Some(at) = lose.iter().position(|a| *a == me) {
                lose.remove(at);
                drop(reply);
                return Err(Error::Connection(crate::failure::ConnectionFailure::Lost));
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::ConnectionFailure;

    fn relay(code: ErrorCode) -> Error {
        Error::relay(code, "refused".into(), None)
    }

    /// Only an answer that surely changed nothing puts the old header back;
    /// an `Internal` (9.6: maybe carried out) or a lost reply keeps both
    /// passwords working, so the store never ends up opening with neither.
    #[test]
    fn only_a_sure_refusal_counts_as_unchanged() {
        for code in [
            ErrorCode::AuthFailed,
            ErrorCode::UnknownExchange,
            ErrorCode::RateLimited,
            ErrorCode::TokenExpired,
            ErrorCode::BadFrame,
        ] {
            assert_eq!(verdict_of(&relay(code)), RelayVerdict::Unchanged, "{code}");
        }
        assert_eq!(
            verdict_of(&relay(ErrorCode::Internal)),
            RelayVerdict::Unknown
        );
        assert_eq!(
            verdict_of(&Error::Connection(ConnectionFailure::Lost)),
            RelayVerdict::Unknown
        );
        assert_eq!(
            verdict_of(&Error::Timeout(std::time::Duration::from_secs(30))),
            RelayVerdict::Unknown
        );
    }
}
