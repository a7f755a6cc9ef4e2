//! The relay's OPAQUE state for the OPAQUE targets: the setup of
//! `docs/test-vectors/opaque.json` (seed 1), the password file its
//! registration produced, and the login state after its KE1, so that the
//! vector's KE3 finishes a login and a mutated one must be refused.
//!
//! Must never: run the client's key stretching (Argon2id, 64 MiB) per
//! input: a target would manage a few executions a second.

use std::sync::OnceLock;

use opaque_ke::{
    CredentialRequest, RegistrationUpload, ServerLogin, ServerLoginParameters, ServerRegistration,
    ServerSetup,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use umbra_wire::opaque_suite::UmbraOpaqueSuite;

/// The vector file, compiled in so a target needs no working directory.
const OPAQUE_JSON: &str = include_str!("../../../docs/test-vectors/opaque.json");

/// One hex field of opaque.json, by JSON pointer.
pub fn vector(pointer: &str) -> Vec<u8> {
    crate::vector_hex(OPAQUE_JSON, pointer)
}

/// What the relay holds between KE2 and KE3, and before.
pub struct Relay {
    /// The relay's long-term keys.
    pub setup: ServerSetup<UmbraOpaqueSuite>,
    /// The password file of the vector's registration.
    pub file: ServerRegistration<UmbraOpaqueSuite>,
    /// The account's credential identifier.
    pub credential_id: Vec<u8>,
    /// The state after the vector's KE1 (server_start_seed 5).
    pub login: ServerLogin<UmbraOpaqueSuite>,
}

/// The fixture, built once.
pub fn relay() -> &'static Relay {
    static RELAY: OnceLock<Relay> = OnceLock::new();
    RELAY.get_or_init(build)
}

#[allow(clippy::expect_used)] // A fixture that cannot be built is a broken fuzz build.
fn build() -> Relay {
    let setup = ServerSetup::<UmbraOpaqueSuite>::new(&mut ChaCha20Rng::from_seed([1; 32]));
    let upload = vector("/registration/registration_upload");
    let upload = RegistrationUpload::<UmbraOpaqueSuite>::deserialize(&upload)
        .expect("vector upload decodes");
    let file = ServerRegistration::finish(upload);
    let credential_id = vector("/credential_identifier");
    let ke1 = vector("/login/credential_request");
    let ke1 = CredentialRequest::deserialize(&ke1).expect("vector KE1 decodes");
    let login = ServerLogin::start(
        &mut ChaCha20Rng::from_seed([5; 32]),
        &setup,
        Some(file.clone()),
        ke1,
        &credential_id,
        ServerLoginParameters::default(),
    )
    .expect("vector login starts")
    .state;
    Relay {
        setup,
        file,
        credential_id,
        login,
    }
}
