//! Account records and the OPAQUE exchanges that create and log into them.
//!
//! Registration and login run OPAQUE (opaque-ke, [`UmbraOpaqueSuite`]) over
//! the relay's `RegisterStart/Finish` and `LoginStart/Finish` frames, so the
//! relay never sees the password, and its password files alone let nobody
//! test guesses. With the relay's OPRF key (its server setup, stored in the
//! same database) they do: the relay operator can guess offline, one
//! Argon2id evaluation of the KSF per guess (docs/THREAT_MODEL.md); the test
//! below keeps that cost no lower than the local store's. A login yields a
//! session token; it is stored sealed and presented in `Authenticate` on
//! every connection. Both exchanges also yield OPAQUE's export key, which
//! the relay never learns: the root of the account backup (`backup/`).
//!
//! Must never: send the password, store the token in the clear, or tell an
//! unknown username from a wrong password (the relay does not say either).

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientLoginFinishResult, ClientRegistration,
    ClientRegistrationFinishParameters, ClientRegistrationFinishResult, CredentialResponse,
    Identifiers, RegistrationResponse,
};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::opaque_suite::{
    exact_len, umbra_ksf, UmbraOpaqueSuite, KE2_LEN, REGISTRATION_RESPONSE_LEN,
};
use umbra_protocol::wire::{
    AccountId, DeviceId, ErrorCode, Request, Response, SessionToken, Username,
    MAX_DEVICES_PER_ACCOUNT,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::backup::ExportKey;
use crate::failure::{CryptoFailure, DeviceFailure, RelayMisbehaved};
use crate::relay_link::{into_result, RelayLink};
use crate::Error;

/// Our account as stored (kind `Account`, singleton).
#[derive(Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) username: String,
    pub(crate) account: [u8; 16],
    pub(crate) device: u32,
}

impl std::fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The relay session token as stored (kind `Token`, singleton).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct TokenRecord {
    pub(crate) token: [u8; 32],
    pub(crate) expires_at: u64,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRecord(<redacted>)")
    }
}

impl TokenRecord {
    pub(crate) fn session_token(&self) -> SessionToken {
        SessionToken::from_bytes(self.token)
    }
}

/// What a successful login returns.
pub(crate) struct LoginOutcome {
    pub(crate) account: AccountId,
    /// The device the token is for: device 1 after a password login, the
    /// new device after [`enrol`].
    pub(crate) device: DeviceId,
    pub(crate) token: TokenRecord,
    /// OPAQUE's export key: the root of the account backup (§13.2). The
    /// same at registration and every login with the same password.
    pub(crate) export_key: ExportKey,
}

fn unexpected(what: &'static str, got: &Response) -> Error {
    crate::error::unexpected(what, got)
}

/// The export key out of a login's finish, wiping the result's copies of it
/// and of the session key: opaque-ke 4.0.1's `ClientLoginFinishResult`
/// derives only `Clone` (no `ZeroizeOnDrop`), so dropping it leaves them in
/// freed memory.
pub(crate) fn take_login_export_key(
    finish: &mut ClientLoginFinishResult<UmbraOpaqueSuite>,
) -> Result<ExportKey, Error> {
    let key = ExportKey::from_slice(&finish.export_key);
    finish.export_key.as_mut_slice().zeroize();
    finish.session_key.as_mut_slice().zeroize();
    key
}

/// The same for a registration's finish (`ClientRegistrationFinishResult`
/// does not zeroize either).
pub(crate) fn take_registration_export_key(
    finish: &mut ClientRegistrationFinishResult<UmbraOpaqueSuite>,
) -> Result<ExportKey, Error> {
    let key = ExportKey::from_slice(&finish.export_key);
    finish.export_key.as_mut_slice().zeroize();
    key
}

/// OPAQUE registration. Returns the new account's id and the export key
/// the registration produced.
pub(crate) async fn register<R: RngCore + CryptoRng>(
    link: &mut RelayLink,
    username: &Username,
    password: &[u8],
    rng: &mut R,
) -> Result<(AccountId, ExportKey), Error> {
    let start = ClientRegistration::<UmbraOpaqueSuite>::start(rng, password).map_err(|e| {
        Error::Crypto(CryptoFailure::Opaque {
            step: "registration start",
            source: e,
        })
    })?;
    let response = into_result(
        link.call(Request::RegisterStart {
            username: username.clone(),
            opaque_request: start.message.serialize().to_vec(),
        })
        .await?,
    )?;
    let Response::RegisterResponse { opaque_response } = response else {
        return Err(unexpected("RegisterResponse", &response));
    };
    let opaque_response = exact_len(&opaque_response, REGISTRATION_RESPONSE_LEN)
        .and_then(|b| RegistrationResponse::<UmbraOpaqueSuite>::deserialize(b).ok())
        .ok_or_else(|| {
            Error::Protocol(RelayMisbehaved::MalformedOpaque("registration response"))
        })?;
    let ksf = umbra_ksf();
    let mut finish = start
        .state
        .finish(
            rng,
            password,
            opaque_response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
        )
        .map_err(|e| {
            Error::Crypto(CryptoFailure::Opaque {
                step: "registration finish",
                source: e,
            })
        })?;
    let export_key = take_registration_export_key(&mut finish)?;
    let response = into_result(
        link.call(Request::RegisterFinish {
            username: username.clone(),
            opaque_upload: finish.message.serialize().to_vec(),
        })
        .await?,
    )?;
    match response {
        Response::RegisterDone { account } => Ok((account, export_key)),
        other => Err(unexpected("RegisterDone", &other)),
    }
}

/// OPAQUE login. A wrong password or unknown username is [`Error::AuthFailed`].
pub(crate) async fn login<R: RngCore + CryptoRng>(
    link: &mut RelayLink,
    username: &Username,
    password: &[u8],
    rng: &mut R,
) -> Result<LoginOutcome, Error> {
    let start = ClientLogin::<UmbraOpaqueSuite>::start(rng, password).map_err(|e| {
        Error::Crypto(CryptoFailure::Opaque {
            step: "login start",
            source: e,
        })
    })?;
    let response = into_result(
        link.call(Request::LoginStart {
            username: username.clone(),
            opaque_request: start.message.serialize().to_vec(),
        })
        .await?,
    )
    .map_err(auth_failure)?;
    let Response::LoginResponse {
        login_id,
        opaque_response,
    } = response
    else {
        return Err(unexpected("LoginResponse", &response));
    };
    let opaque_response = exact_len(&opaque_response, KE2_LEN)
        .and_then(|b| CredentialResponse::<UmbraOpaqueSuite>::deserialize(b).ok())
        .ok_or_else(|| Error::Protocol(RelayMisbehaved::MalformedOpaque("credential response")))?;
    let ksf = umbra_ksf();
    // A wrong password (or the relay's fake record for an unknown name)
    // fails here, on the client: the envelope does not open.
    let mut finish = start
        .state
        .finish(
            rng,
            password,
            opaque_response,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        )
        .map_err(|_| Error::AuthFailed)?;
    let export_key = take_login_export_key(&mut finish)?;
    let response = into_result(
        link.call(Request::LoginFinish {
            login_id,
            opaque_finalization: finish.message.serialize().to_vec(),
        })
        .await?,
    )
    .map_err(auth_failure)?;
    match response {
        Response::LoginDone {
            token,
            account,
            expires_at,
        } => Ok(LoginOutcome {
            account,
            device: DeviceId::PRIMARY,
            token: TokenRecord {
                token: *token.expose_secret(),
                expires_at,
            },
            export_key,
        }),
        other => Err(unexpected("LoginDone", &other)),
    }
}

/// `LoginEnrol` (docs/PROTOCOL.md §15.6) right after [`login`] on the same
/// connection, before any `Authenticate`: the login becomes a new device
/// of the account, and its device-1 token is replaced by the new device's.
/// An account at its device limit is [`DeviceFailure::AccountFull`]; the
/// relay's other refusals pass through as [`Error::Relay`].
pub(crate) async fn enrol(
    link: &mut RelayLink,
    login: LoginOutcome,
) -> Result<LoginOutcome, Error> {
    let response = match into_result(link.call(Request::LoginEnrol).await?) {
        Err(Error::Relay {
            code: ErrorCode::LimitExceeded,
            ..
        }) => {
            return Err(Error::Device(DeviceFailure::AccountFull {
                limit: MAX_DEVICES_PER_ACCOUNT,
            }))
        }
        other => other?,
    };
    let Response::LoginEnrolled(enrolled) = response else {
        return Err(unexpected("LoginEnrolled", &response));
    };
    if enrolled.account != login.account {
        return Err(Error::Protocol(RelayMisbehaved::AccountChanged));
    }
    if enrolled.device.0 <= DeviceId::PRIMARY.0 {
        // Device 1 exists from registration (and 0 is no device): a new
        // device is never either.
        return Err(Error::Protocol(RelayMisbehaved::UnexpectedResponse {
            expected: "LoginEnrolled naming a new device",
            got: "LoginEnrolled",
        }));
    }
    Ok(LoginOutcome {
        account: login.account,
        device: enrolled.device,
        token: TokenRecord {
            token: *enrolled.token.expose_secret(),
            expires_at: enrolled.expires_at,
        },
        export_key: login.export_key,
    })
}

/// `LoginDevice` (docs/PROTOCOL.md §15.6) right after [`login`] on the same
/// connection, before any `Authenticate`: the login's device-1 token is
/// replaced by one for `device`, a current device of the account (this
/// data directory's own id). A device the relay no longer holds current
/// (removed) is [`DeviceFailure::NotCurrent`]; an answer naming another
/// account or device is the relay's misbehaviour.
pub(crate) async fn login_device(
    link: &mut RelayLink,
    login: LoginOutcome,
    device: DeviceId,
) -> Result<LoginOutcome, Error> {
    let response = match into_result(link.call(Request::LoginDevice { device }).await?) {
        Err(Error::Relay {
            code: ErrorCode::UnknownRecipient,
            ..
        }) => return Err(Error::Device(DeviceFailure::NotCurrent(device.0))),
        other => other?,
    };
    let Response::LoginEnrolled(given) = response else {
        return Err(unexpected("LoginEnrolled", &response));
    };
    if given.account != login.account {
        return Err(Error::Protocol(RelayMisbehaved::AccountChanged));
    }
    if given.device != device {
        return Err(Error::Protocol(RelayMisbehaved::UnexpectedResponse {
            expected: "LoginEnrolled naming this device",
            got: "LoginEnrolled",
        }));
    }
    Ok(LoginOutcome {
        account: login.account,
        device,
        token: TokenRecord {
            token: *given.token.expose_secret(),
            expires_at: given.expires_at,
        },
        export_key: login.export_key,
    })
}

fn auth_failure(e: Error) -> Error {
    match e {
        Error::Relay {
            code: ErrorCode::AuthFailed,
            ..
        } => Error::AuthFailed,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use umbra_protocol::opaque_suite::{ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM};

    use crate::KdfParams;

    /// The relay operator holds the OPRF key and so can test guesses against
    /// an account's OPAQUE record offline at the OPAQUE KSF's cost. The same
    /// password seals the local store, so that cost must not be below the
    /// store's, or the relay's record becomes the cheap way into a stolen
    /// device (docs/THREAT_MODEL.md).
    #[test]
    fn opaque_stretching_costs_at_least_the_local_store_key() {
        let store = KdfParams::recommended();
        assert!(ARGON2_MEMORY_KIB >= store.memory_kib());
        assert!(ARGON2_ITERATIONS >= store.iterations());
        assert!(
            ARGON2_PARALLELISM <= store.parallelism(),
            "more lanes is cheaper per guess"
        );
    }
}

#[cfg(test)]
mod export_key_tests {
    use opaque_ke::{ServerRegistration, ServerSetup};
    use rand::rngs::OsRng;

    use super::*;

    /// opaque-ke's finish results keep their keys on drop; taking the
    /// export key out must leave zeros where it was.
    #[test]
    fn taking_the_export_key_wipes_the_finish_results_copy() {
        let setup = ServerSetup::<UmbraOpaqueSuite>::new(&mut OsRng);
        let start = ClientRegistration::<UmbraOpaqueSuite>::start(&mut OsRng, b"pw").unwrap();
        let response = ServerRegistration::start(&setup, start.message, b"id").unwrap();
        let mut finish = start
            .state
            .finish(
                &mut OsRng,
                b"pw",
                response.message,
                ClientRegistrationFinishParameters::default(),
            )
            .unwrap();
        let expected = finish.export_key.to_vec();
        assert!(expected.iter().any(|&b| b != 0));
        let key = take_registration_export_key(&mut finish).unwrap();
        assert!(
            finish.export_key.iter().all(|&b| b == 0),
            "left in the result"
        );
        let again = ExportKey::from_slice(&expected).unwrap();
        assert_eq!(
            postcard::to_allocvec(&key).unwrap(),
            postcard::to_allocvec(&again).unwrap(),
            "the key taken is the one the finish produced"
        );
    }
}
