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
//! Must never: log or expose the password file, the login state or the
//! session key; tell a caller "unknown user" during login; or keep a pending
//! login past [`LOGIN_TIMEOUT`].

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

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

/// How long a started login may wait for its finish message. OPAQUE gives
/// the server no finalization on failure, so abandoned logins must age out.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Most logins (and registrations) in flight across the whole relay; a start
/// beyond this evicts expired entries first and is refused if none expired.
pub const MAX_PENDING_EXCHANGES: usize = 10_000;

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
    /// The finish message named no pending exchange, or it timed out.
    #[error("no pending exchange (unknown or timed out)")]
    UnknownExchange,
    /// Too many exchanges in flight.
    #[error("too many pending exchanges")]
    Busy,
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

/// A bounded table of exchanges awaiting their second message, keyed by a
/// relay-chosen id (one per connection), each with a deadline.
pub struct PendingExchanges<T> {
    entries: HashMap<u64, (Instant, T)>,
    capacity: usize,
    timeout: Duration,
}

impl<T> fmt::Debug for PendingExchanges<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingExchanges")
            .field("len", &self.entries.len())
            .finish()
    }
}

impl<T> PendingExchanges<T> {
    /// An empty table.
    pub fn new(capacity: usize, timeout: Duration) -> Self {
        PendingExchanges {
            entries: HashMap::new(),
            capacity,
            timeout,
        }
    }

    /// Stores `value` under `key`, replacing an older exchange for the same key.
    pub fn insert(&mut self, key: u64, value: T, now: Instant) -> Result<(), OpaqueError> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.purge_expired(now);
            if self.entries.len() >= self.capacity {
                return Err(OpaqueError::Busy);
            }
        }
        self.entries.insert(key, (now + self.timeout, value));
        Ok(())
    }

    /// Removes and returns the exchange under `key` if it has not timed out.
    pub fn take(&mut self, key: u64, now: Instant) -> Result<T, OpaqueError> {
        match self.entries.remove(&key) {
            Some((deadline, value)) if now <= deadline => Ok(value),
            _ => Err(OpaqueError::UnknownExchange),
        }
    }

    /// Drops the exchange under `key`, if any (connection closed).
    pub fn forget(&mut self, key: u64) {
        self.entries.remove(&key);
    }

    /// Drops every timed-out exchange.
    pub fn purge_expired(&mut self, now: Instant) {
        self.entries.retain(|_, (deadline, _)| now <= *deadline);
    }

    /// Exchanges currently held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::suite::umbra_ksf;
    use opaque_ke::{
        ClientLogin, ClientLoginFinishParameters, ClientRegistration,
        ClientRegistrationFinishParameters, CredentialResponse, Identifiers,
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn register(
        server: &OpaqueServer,
        rng: &mut ChaCha20Rng,
        id: &[u8],
        password: &[u8],
    ) -> PasswordFile {
        let ksf = umbra_ksf();
        let start =
            ClientRegistration::<UmbraOpaqueSuite>::start(rng, password).expect("client start");
        let response = server
            .registration_response(&start.message.serialize(), id)
            .expect("server evaluates");
        let response =
            opaque_ke::RegistrationResponse::deserialize(&response).expect("response parses");
        let finish = start
            .state
            .finish(
                rng,
                password,
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .expect("client finish");
        OpaqueServer::finish_registration(&finish.message.serialize()).expect("upload accepted")
    }

    /// Runs a login; returns the server's response bytes and whether both sides succeeded.
    fn login(
        server: &OpaqueServer,
        rng: &mut ChaCha20Rng,
        file: Option<&PasswordFile>,
        id: &[u8],
        password: &[u8],
    ) -> (Vec<u8>, bool) {
        let ksf = umbra_ksf();
        let start = ClientLogin::<UmbraOpaqueSuite>::start(rng, password).expect("client start");
        let (response, state) = server
            .login_start(rng, file, &start.message.serialize(), id)
            .expect("server answers even for unknown users");
        let parsed = CredentialResponse::deserialize(&response).expect("response parses");
        let client = start.state.finish(
            rng,
            password,
            parsed,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        );
        match client {
            Ok(done) => {
                let ok = OpaqueServer::login_finish(state, &done.message.serialize()).is_ok();
                (response, ok)
            }
            Err(_) => (response, false),
        }
    }

    #[test]
    fn register_then_login_with_right_and_wrong_password() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let server = OpaqueServer::generate(&mut rng);
        let file = register(&server, &mut rng, b"account-1", b"correct horse");
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
        let file = register(&server, &mut rng, b"account-1", b"pw-one");
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
        let file = register(&server, &mut rng, b"acct", b"pw");
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
        let ksf = umbra_ksf();
        let start = ClientRegistration::<UmbraOpaqueSuite>::start(&mut rng, b"pw").unwrap();
        let mut request = start.message.serialize().to_vec();
        let response = server
            .registration_response(&request, b"id")
            .expect("exact length");
        request.push(0);
        assert_eq!(
            server.registration_response(&request, b"id").err(),
            Some(OpaqueError::Malformed)
        );
        let finish = start
            .state
            .finish(
                &mut rng,
                b"pw",
                opaque_ke::RegistrationResponse::deserialize(&response).unwrap(),
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .unwrap();
        let mut upload = finish.message.serialize().to_vec();
        upload.push(0);
        assert_eq!(
            OpaqueServer::finish_registration(&upload).err(),
            Some(OpaqueError::Malformed)
        );
        upload.pop();
        let file = OpaqueServer::finish_registration(&upload).expect("exact length");

        let login = ClientLogin::<UmbraOpaqueSuite>::start(&mut rng, b"pw").unwrap();
        let mut ke1 = login.message.serialize().to_vec();
        ke1.push(0);
        assert!(matches!(
            server.login_start(&mut rng, Some(&file), &ke1, b"id"),
            Err(OpaqueError::Malformed)
        ));
        ke1.pop();
        let (ke2, state) = server
            .login_start(&mut rng, Some(&file), &ke1, b"id")
            .unwrap();
        let done = login
            .state
            .finish(
                &mut rng,
                b"pw",
                CredentialResponse::deserialize(&ke2).unwrap(),
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
            )
            .unwrap();
        let mut ke3 = done.message.serialize().to_vec();
        ke3.push(0);
        assert_eq!(
            OpaqueServer::login_finish(state, &ke3).err(),
            Some(OpaqueError::Malformed)
        );
    }

    #[test]
    fn pending_exchanges_time_out_and_are_bounded() {
        let now = Instant::now();
        let mut table = PendingExchanges::new(2, Duration::from_secs(10));
        table.insert(1, "a", now).expect("room");
        table.insert(2, "b", now).expect("room");
        assert_eq!(table.insert(3, "c", now), Err(OpaqueError::Busy));
        assert_eq!(table.take(1, now + Duration::from_secs(5)), Ok("a"));
        assert_eq!(
            table.take(1, now),
            Err(OpaqueError::UnknownExchange),
            "taken once"
        );
        assert_eq!(
            table.take(2, now + Duration::from_secs(11)),
            Err(OpaqueError::UnknownExchange)
        );
        table.insert(4, "d", now).expect("room again");
        table.insert(5, "e", now).expect("room");
        // Both expired: a new insert evicts them instead of failing.
        table
            .insert(6, "f", now + Duration::from_secs(20))
            .expect("expired entries evicted");
        assert_eq!(table.len(), 1);
    }
}
