//! The client halves of OPAQUE registration and login, for tests: the one
//! copy every suite uses, whether it talks to a relay process
//! ([`crate::wire_client`]) or to an in-process relay.
//!
//! Sans-IO: each step takes the relay's bytes and returns the bytes to send,
//! so a suite decides how they travel and can inspect or corrupt them.
//!
//! Must never: hand-roll any cryptography (everything is opaque-ke with the
//! shared `umbra_wire::opaque_suite`), print a password, or use a
//! key-stretching function other than the production one unless the suite
//! asked for [`Stretch::Cheap`].

use opaque_ke::argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialResponse, Identifiers,
    RegistrationResponse,
};
use rand::rngs::OsRng;
use umbra_wire::opaque_suite::{umbra_ksf, UmbraOpaqueSuite};

/// Argon2 parameters of [`Stretch::Cheap`]: 8 KiB, one pass, one lane, the
/// smallest Argon2 accepts, so debug-build suites register in milliseconds.
const CHEAP_MEMORY_KIB: u32 = 8;
const CHEAP_ITERATIONS: u32 = 1;
const CHEAP_PARALLELISM: u32 = 1;

/// Which key-stretching function the client runs. The relay never runs it
/// (it only stores what the client derived), so a suite that talks to the
/// relay alone may pick the cheap one; a suite whose accounts the real
/// `umbra` client must log into needs [`Stretch::Production`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stretch {
    /// `umbra_wire::opaque_suite::umbra_ksf`, what the real client uses.
    #[default]
    Production,
    /// A minimal Argon2id: fast, and useless against guessing.
    Cheap,
}

impl Stretch {
    fn ksf(self) -> Result<Argon2<'static>, OpaqueFailure> {
        match self {
            Stretch::Production => Ok(umbra_ksf()),
            Stretch::Cheap => {
                let params =
                    Params::new(CHEAP_MEMORY_KIB, CHEAP_ITERATIONS, CHEAP_PARALLELISM, None)
                        .map_err(|e| OpaqueFailure(format!("cheap Argon2 parameters: {e}")))?;
                Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
            }
        }
    }
}

/// An OPAQUE step failed on the client side: the relay's message did not
/// parse, or (for a login) the password is wrong or the user unknown, which
/// OPAQUE deliberately does not distinguish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpaqueFailure(pub String);

fn failure(e: impl std::fmt::Display) -> OpaqueFailure {
    OpaqueFailure(e.to_string())
}

/// A registration between `RegisterStart` and `RegisterFinish`.
pub struct PendingRegistration {
    state: ClientRegistration<UmbraOpaqueSuite>,
    password: Vec<u8>,
}

impl std::fmt::Debug for PendingRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRegistration")
            .finish_non_exhaustive()
    }
}

impl PendingRegistration {
    /// Starts registering `password`; returns the state and the
    /// `opaque_request` of `RegisterStart`.
    pub fn start(password: &[u8]) -> Result<(PendingRegistration, Vec<u8>), OpaqueFailure> {
        let start =
            ClientRegistration::<UmbraOpaqueSuite>::start(&mut OsRng, password).map_err(failure)?;
        let request = start.message.serialize().to_vec();
        let pending = PendingRegistration {
            state: start.state,
            password: password.to_vec(),
        };
        Ok((pending, request))
    }

    /// Takes the relay's `opaque_response` and returns the `opaque_upload`
    /// of `RegisterFinish`. Runs the key-stretching function: call it off
    /// the async worker threads when `stretch` is [`Stretch::Production`].
    pub fn finish(
        self,
        opaque_response: &[u8],
        stretch: Stretch,
    ) -> Result<Vec<u8>, OpaqueFailure> {
        let response = RegistrationResponse::<UmbraOpaqueSuite>::deserialize(opaque_response)
            .map_err(failure)?;
        let ksf = stretch.ksf()?;
        let done = self
            .state
            .finish(
                &mut OsRng,
                &self.password,
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .map_err(failure)?;
        Ok(done.message.serialize().to_vec())
    }
}

/// A login between `LoginStart` and `LoginFinish`.
pub struct PendingLogin {
    state: ClientLogin<UmbraOpaqueSuite>,
    password: Vec<u8>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").finish_non_exhaustive()
    }
}

impl PendingLogin {
    /// Starts a login with `password`; returns the state and the
    /// `opaque_request` of `LoginStart`.
    pub fn start(password: &[u8]) -> Result<(PendingLogin, Vec<u8>), OpaqueFailure> {
        let start =
            ClientLogin::<UmbraOpaqueSuite>::start(&mut OsRng, password).map_err(failure)?;
        let request = start.message.serialize().to_vec();
        let pending = PendingLogin {
            state: start.state,
            password: password.to_vec(),
        };
        Ok((pending, request))
    }

    /// Takes the relay's `opaque_response` (a `CredentialResponse`) and
    /// returns the `opaque_finalization` of `LoginFinish`. Fails for a wrong
    /// password or an unknown user. Runs the key-stretching function.
    pub fn finish(
        self,
        opaque_response: &[u8],
        stretch: Stretch,
    ) -> Result<Vec<u8>, OpaqueFailure> {
        let response = CredentialResponse::<UmbraOpaqueSuite>::deserialize(opaque_response)
            .map_err(failure)?;
        let ksf = stretch.ksf()?;
        let done = self
            .state
            .finish(
                &mut OsRng,
                &self.password,
                response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
            )
            .map_err(failure)?;
        Ok(done.message.serialize().to_vec())
    }
}

/// A well-formed `CredentialFinalization` that verifies under no pending
/// login: a random MAC of the suite's hash length, checked by opaque-ke's own
/// decoder so the relay sees a syntactically valid message. What a suite
/// sends after [`PendingLogin::finish`] failed, so the relay's verdict on a
/// failed login is observed too.
pub fn decoy_finalization() -> Result<Vec<u8>, OpaqueFailure> {
    use rand::RngCore;
    use sha2::Digest;
    let mut mac = vec![0u8; <sha2::Sha512 as Digest>::output_size()];
    OsRng.fill_bytes(&mut mac);
    CredentialFinalization::<UmbraOpaqueSuite>::deserialize(&mac).map_err(failure)?;
    Ok(mac)
}

#[cfg(test)]
mod tests {
    //! The flow against opaque-ke's own server, so a failure here is the
    //! flow's, not a relay's.

    use opaque_ke::{
        CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
        ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
    };

    use super::*;

    const ID: &[u8] = b"account-1";

    fn register(
        setup: &ServerSetup<UmbraOpaqueSuite>,
        password: &[u8],
        stretch: Stretch,
    ) -> ServerRegistration<UmbraOpaqueSuite> {
        let (client, request) = PendingRegistration::start(password).expect("start");
        let request = RegistrationRequest::deserialize(&request).expect("request parses");
        let response = ServerRegistration::start(setup, request, ID).expect("server start");
        let upload = client
            .finish(&response.message.serialize(), stretch)
            .expect("client finish");
        ServerRegistration::finish(RegistrationUpload::deserialize(&upload).expect("upload parses"))
    }

    /// Whether a login with `password` and `stretch` completes on both sides.
    fn logs_in(
        setup: &ServerSetup<UmbraOpaqueSuite>,
        record: ServerRegistration<UmbraOpaqueSuite>,
        password: &[u8],
        stretch: Stretch,
    ) -> bool {
        let (client, ke1) = PendingLogin::start(password).expect("start");
        let ke1 = CredentialRequest::deserialize(&ke1).expect("KE1 parses");
        let server = ServerLogin::start(
            &mut OsRng,
            setup,
            Some(record),
            ke1,
            ID,
            ServerLoginParameters::default(),
        )
        .expect("server start");
        let Ok(ke3) = client.finish(&server.message.serialize(), stretch) else {
            return false;
        };
        let ke3 = CredentialFinalization::deserialize(&ke3).expect("KE3 parses");
        server
            .state
            .finish(ke3, ServerLoginParameters::default())
            .is_ok()
    }

    #[test]
    fn the_right_password_logs_in_and_a_wrong_one_does_not() {
        let setup = ServerSetup::<UmbraOpaqueSuite>::new(&mut OsRng);
        let record = register(&setup, b"right", Stretch::Cheap);
        assert!(logs_in(&setup, record.clone(), b"right", Stretch::Cheap));
        assert!(!logs_in(&setup, record, b"wrong", Stretch::Cheap));
    }

    #[test]
    fn the_stretch_is_part_of_the_password() {
        // A suite that registers cheaply cannot log in with the production
        // function: the two really are different key-stretching functions.
        let setup = ServerSetup::<UmbraOpaqueSuite>::new(&mut OsRng);
        let record = register(&setup, b"pw", Stretch::Cheap);
        assert!(!logs_in(&setup, record, b"pw", Stretch::Production));
    }

    #[test]
    fn the_decoy_is_a_well_formed_finalization() {
        let decoy = decoy_finalization().expect("decoy");
        assert!(CredentialFinalization::<UmbraOpaqueSuite>::deserialize(&decoy).is_ok());
        assert_ne!(
            decoy,
            decoy_finalization().expect("decoy"),
            "random each time"
        );
    }

    #[test]
    fn a_malformed_relay_message_is_an_error_not_a_panic() {
        let (client, _) = PendingRegistration::start(b"pw").expect("start");
        assert!(client.finish(&[0xff; 3], Stretch::Cheap).is_err());
        let (client, _) = PendingLogin::start(b"pw").expect("start");
        assert!(client.finish(&[0xff; 3], Stretch::Cheap).is_err());
    }
}
