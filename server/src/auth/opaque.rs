//! The relay's side of OPAQUE (RFC 9807 style asymmetric PAKE) registration
//! and login, over raw protocol messages carried in wire frames.
//!
//! The relay never learns the password: it keeps a per-account password file
//! (an OPAQUE registration upload) and one long-term [`ServerSetup`] shared
//! by all relay nodes. Together the two let whoever holds them test password
//! guesses offline, one client-side Argon2id evaluation per guess, so they
//! are as sensitive as a slow password hash (docs/THREAT_MODEL.md). A login for an unknown
//! username runs the fake-record path so the response has the same shape and
//! timing class as for a real account, and the subsequent failure looks
//! exactly like a wrong password.
//!
//! A started login's state ([`LoginState`]) is kept by the connection that
//! started it (`auth::phase`), never in a relay-wide table.
//!
//! Must never: log or expose the password file, the login state or the
//! session key; or tell a caller "unknown user" during login.

use std::fmt;

use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::suite::UmbraOpaqueSuite;
use crate::store::PasswordFile;
use umbra_wire::opaque_suite::{
    exact_len, KE1_LEN, KE3_LEN, REGISTRATION_RECORD_LEN, REGISTRATION_REQUEST_LEN,
};

/// Why an OPAQUE step failed. Deliberately coarse: the variants never
/// distinguish an unknown user from a wrong password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpaqueError {
    /// A client message did not deserialize as the expected OPAQUE message.
    #[error("malformed OPAQUE message")]
    Malformed,
    /// Key exchange failed: wrong password, unknown user, or tampering.
    #[error("authentication failed")]
    AuthFailed,
    /// The stored server setup does not deserialize.
    #[error("stored OPAQUE server setup is corrupt")]
    CorruptSetup,
    /// The stored password file does not deserialize.
    #[error("stored password file is corrupt")]
    CorruptPasswordFile,
}

/// Server state between `LoginStart` and `LoginFinish`.
pub struct LoginState(ServerLogin<UmbraOpaqueSuite>);

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginState(<redacted>)")
    }
}

/// The relay's long-term OPAQUE keys (OPRF seed and AKE key pair).
pub struct OpaqueServer {
    setup: ServerSetup<UmbraOpaqueSuite>,
}

impl fmt::Debug for OpaqueServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueServer(<redacted>)")
    }
}

impl OpaqueServer {
    /// A fresh setup, to be offered to the store as the candidate; the store
    /// returns whichever setup was stored first, which all nodes then use.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        OpaqueServer {
            setup: ServerSetup::new(rng),
        }
    }

    /// Serialized setup (secret: the caller must store it carefully).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.setup.serialize().to_vec())
    }

    /// Restores a stored setup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpaqueError> {
        ServerSetup::deserialize(bytes)
            .map(|setup| OpaqueServer { setup })
            .map_err(|_| OpaqueError::CorruptSetup)
    }

    /// Registration step 1: evaluate the client's blinded password under the
    /// OPRF key derived for `credential_id` (the new account's id, which
    /// never changes, so a rename keeps the password working).
    pub fn registration_response(
        &self,
        request: &[u8],
        credential_id: &[u8],
    ) -> Result<Vec<u8>, OpaqueError> {
        let request = exact_len(request, REGISTRATION_REQUEST_LEN)
            .and_then(|b| RegistrationRequest::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or(OpaqueError::Malformed)?;
        let result = ServerRegistration::start(&self.setup, request, credential_id)
            .map_err(|_| OpaqueError::Malformed)?;
        Ok(result.message.serialize().to_vec())
    }

    /// Registration step 2: accept the client's upload as the password file.
    pub fn finish_registration(upload: &[u8]) -> Result<PasswordFile, OpaqueError> {
        let upload = exact_len(upload, REGISTRATION_RECORD_LEN)
            .and_then(|b| RegistrationUpload::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or(OpaqueError::Malformed)?;
        let file = ServerRegistration::finish(upload);
        Ok(PasswordFile::new(file.serialize().to_vec()))
    }

    /// Login step 1. `account` is `None` for an unknown username: opaque-ke
    /// then answers from a fake record derived from `credential_id`, so the
    /// response is well-formed and stable across attempts.
    pub fn login_start<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        password_file: Option<&PasswordFile>,
        request: &[u8],
        credential_id: &[u8],
    ) -> Result<(Vec<u8>, LoginState), OpaqueError> {
        let request = exact_len(request, KE1_LEN)
            .and_then(|b| CredentialRequest::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or(OpaqueError::Malformed)?;
        let file = match password_file {
            Some(file) => Some(
                ServerRegistration::deserialize(file.as_bytes())
                    .map_err(|_| OpaqueError::CorruptPasswordFile)?,
            ),
            None => None,
        };
        let result = ServerLogin::start(
            rng,
            &self.setup,
            file,
            request,
            credential_id,
            ServerLoginParameters::default(),
        )
        .map_err(|_| OpaqueError::Malformed)?;
        Ok((
            result.message.serialize().to_vec(),
            LoginState(result.state),
        ))
    }

    /// Login step 2: succeeds only if the client proved knowledge of the
    /// password for a real account.
    pub fn login_finish(state: LoginState, finalization: &[u8]) -> Result<(), OpaqueError> {
        let finalization = exact_len(finalization, KE3_LEN)
            .and_then(|b| CredentialFinalization::<UmbraOpaqueSuite>::deserialize(b).ok())
            .ok_or(OpaqueError::Malformed)?;
        state
            .0
            .finish(finalization, ServerLoginParameters::default())
            .map(|_session_key| ())
            .map_err(|_| OpaqueError::AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    // The client halves: the workspace's one client-side OPAQUE flow.
    use umbra_test_support::opaque_flow::{PendingLogin, PendingRegistration, Stretch};

    fn register(server: &OpaqueServer, id: &[u8], password: &[u8]) -> PasswordFile {
        let (client, request) = PendingRegistration::start(password).expect("client start");
        let response = server
            .registration_response(&request, id)
            .expect("server evaluates");
        let upload = client
            .finish(&response, Stretch::Production)
            .expect("client finish");
        OpaqueServer::finish_registration(&upload).expect("upload accepted")
    }

    /// Runs a login; returns the server's response bytes and whether both sides succeeded.
    fn login(
        server: &OpaqueServer,
        rng: &mut ChaCha20Rng,
        file: Option<&PasswordFile>,
        id: &[u8],
        password: &[u8],
    ) -> (Vec<u8>, bool) {
        let (client, ke1) = PendingLogin::start(password).expect("client start");
        let (response, state) = server
            .login_start(rng, file, &ke1, id)
            .expect("server answers even for unknown users");
        match client.finish(&response, Stretch::Production) {
            Ok(ke3) => {
                let ok = OpaqueServer::login_finish(state, &ke3).is_ok();
                (response, ok)
            }
            Err(_) => (response, false),
        }
    }

    #[test]
    fn register_then_login_with_right_and_wrong_password() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let server = OpaqueServer::generate(&mut rng);
        let file = register(&server, b"account-1", b"correct horse");
        let (_, ok) = login(
            &server,
            &mut rng,
            Some(&file),
            b"account-1",
            b"correct horse",
        );
        assert!(ok, "right password logs in");
        let (_, ok) = login(&server, &mut rng, Some(&file), b"account-1", b"wrong horse");
        assert!(!ok, "wrong password fails");
    }

    #[test]
    fn unknown_user_gets_a_response_of_the_same_shape_and_fails() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let server = OpaqueServer::generate(&mut rng);
        let file = register(&server, b"account-1", b"pw-one");
        let (real, _) = login(&server, &mut rng, Some(&file), b"account-1", b"pw-one");
        let (fake, ok) = login(&server, &mut rng, None, b"unknown:mallory", b"pw-one");
        assert!(!ok, "an unknown user never logs in");
        assert_eq!(
            real.len(),
            fake.len(),
            "fake record response has the real shape"
        );
        assert_ne!(real, fake);
    }

    #[test]
    fn setup_roundtrips_and_keeps_logins_working() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let server = OpaqueServer::generate(&mut rng);
        let file = register(&server, b"acct", b"pw");
        let restored = OpaqueServer::from_bytes(&server.to_bytes()).expect("roundtrip");
        let (_, ok) = login(&restored, &mut rng, Some(&file), b"acct", b"pw");
        assert!(
            ok,
            "a restarted relay with the stored setup accepts the login"
        );
        let other = OpaqueServer::generate(&mut rng);
        let (_, ok) = login(&other, &mut rng, Some(&file), b"acct", b"pw");
        assert!(!ok, "a different setup cannot complete the login");
        assert_eq!(
            OpaqueServer::from_bytes(&[1, 2, 3]).err(),
            Some(OpaqueError::CorruptSetup)
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let server = OpaqueServer::generate(&mut rng);
        assert_eq!(
            server.registration_response(&[0xff; 7], b"x").err(),
            Some(OpaqueError::Malformed)
        );
        assert_eq!(
            OpaqueServer::finish_registration(&[]).err(),
            Some(OpaqueError::Malformed)
        );
        assert!(matches!(
            server.login_start(&mut rng, None, &[0; 3], b"x"),
            Err(OpaqueError::Malformed)
        ));
    }

    /// opaque-ke ignores bytes after a message; the relay must not, or one
    /// message would have endless encodings (PROTOCOL.md §11.3).
    #[test]
    fn a_message_with_a_trailing_byte_is_malformed() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let server = OpaqueServer::generate(&mut rng);
        let (client, mut request) = PendingRegistration::start(b"pw").unwrap();
        let response = server
            .registration_response(&request, b"id")
            .expect("exact length");
        request.push(0);
        assert_eq!(
            server.registration_response(&request, b"id").err(),
            Some(OpaqueError::Malformed)
        );
        let mut upload = client.finish(&response, Stretch::Production).unwrap();
        upload.push(0);
        assert_eq!(
            OpaqueServer::finish_registration(&upload).err(),
            Some(OpaqueError::Malformed)
        );
        upload.pop();
        let file = OpaqueServer::finish_registration(&upload).expect("exact length");

        let (login, mut ke1) = PendingLogin::start(b"pw").unwrap();
        ke1.push(0);
        assert!(matches!(
            server.login_start(&mut rng, Some(&file), &ke1, b"id"),
            Err(OpaqueError::Malformed)
        ));
        ke1.pop();
        let (ke2, state) = server
            .login_start(&mut rng, Some(&file), &ke1, b"id")
            .unwrap();
        let mut ke3 = login.finish(&ke2, Stretch::Production).unwrap();
        ke3.push(0);
        assert_eq!(
            OpaqueServer::login_finish(state, &ke3).err(),
            Some(OpaqueError::Malformed)
        );
    }
}
