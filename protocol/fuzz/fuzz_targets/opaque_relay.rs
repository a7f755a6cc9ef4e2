//! The OPAQUE messages the relay receives (docs/PROTOCOL.md §11.3), in the
//! relay's order of checks (server/src/auth/opaque.rs): exact length, then
//! opaque-ke's deserializer with umbra's suite, then the protocol step. The
//! first input byte picks the message: 0 RegistrationRequest (then
//! `ServerRegistration::start`), 1 RegistrationRecord (then `finish`),
//! 2 KE1 (then `ServerLogin::start`, known and unknown user), 3 KE3 (then
//! finishing the vector's login, which only the vector's KE3 may pass).
//! Never a panic; an accepted message re-serializes to its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration,
};
use umbra_fuzz::assert_canonical;
use umbra_wire::opaque_suite::{
    exact_len, UmbraOpaqueSuite as Suite, KE1_LEN, KE3_LEN, REGISTRATION_RECORD_LEN,
    REGISTRATION_REQUEST_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let relay = umbra_fuzz::opaque::relay();
    match selector % 4 {
        0 => {
            let Some(request) = exact_len(message, REGISTRATION_REQUEST_LEN)
                .and_then(|b| RegistrationRequest::<Suite>::deserialize(b).ok())
            else {
                return;
            };
            assert_canonical("RegistrationRequest", message, &request.serialize());
            let _ = ServerRegistration::start(&relay.setup, request, &relay.credential_id);
        }
        1 => {
            let Some(upload) = exact_len(message, REGISTRATION_RECORD_LEN)
                .and_then(|b| RegistrationUpload::<Suite>::deserialize(b).ok())
            else {
                return;
            };
            assert_canonical("RegistrationRecord", message, &upload.serialize());
            let file = ServerRegistration::finish(upload);
            // The relay stores the file and reads it back at every login.
            let stored = file.serialize();
            ServerRegistration::<Suite>::deserialize(&stored).expect("a password file reloads");
        }
        2 => {
            let Some(ke1) = exact_len(message, KE1_LEN)
                .and_then(|b| CredentialRequest::<Suite>::deserialize(b).ok())
            else {
                return;
            };
            assert_canonical("KE1", message, &ke1.serialize());
            for file in [Some(relay.file.clone()), None] {
                let _ = ServerLogin::start(
                    &mut umbra_fuzz::rng(),
                    &relay.setup,
                    file,
                    ke1.clone(),
                    &relay.credential_id,
                    ServerLoginParameters::default(),
                );
            }
        }
        _ => {
            let Some(ke3) = exact_len(message, KE3_LEN)
                .and_then(|b| CredentialFinalization::<Suite>::deserialize(b).ok())
            else {
                return;
            };
            assert_canonical("KE3", message, &ke3.serialize());
            let finished = relay
                .login
                .clone()
                .finish(ke3, ServerLoginParameters::default());
            let vector = umbra_fuzz::opaque::vector("/login/credential_finalization");
            assert_eq!(finished.is_ok(), message == vector.as_slice(), "KE3 check");
        }
    }
});
