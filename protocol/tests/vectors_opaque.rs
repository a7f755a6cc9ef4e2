//! Test vectors for umbra's OPAQUE registration and login
//! (docs/PROTOCOL.md §11.3, `docs/test-vectors/opaque.json`).
//!
//! Every random draw comes from a `ChaCha20Rng` seeded with a fixed byte per
//! step, so the file pins the suite, the Argon2id parameters and every
//! message byte. Beyond the known answer, the test re-derives from the spec
//! with the raw primitives what a stranger can check without an OPAQUE
//! library: each message's length and field layout, the server key carried in
//! the registration response, and the credential-response masking
//! (HKDF-SHA-512 over the upload's masking key), which must reveal exactly the
//! server key and the envelope the client uploaded; and the client's whole
//! password derivation (OPRF finalize, Argon2id KSF with its zero salt,
//! masking and export keys) with curve25519-dalek, argon2 and HKDF. Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate change (see common/mod.rs).

mod common;

use common::{check_or_regenerate, hex};
use hkdf::Hkdf;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};
use sha2::Sha512;
use umbra_protocol::opaque_suite::{
    umbra_ksf, UmbraOpaqueSuite, ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM,
};
use umbra_protocol::wire::{self, AccountId, ClientFrame, RelayFrame, Request, Response, Username};

type Suite = UmbraOpaqueSuite;

/// Lengths from docs/PROTOCOL.md §11.3 (ristretto255: 32-byte elements,
/// scalars and keys; SHA-512: 64-byte hashes and MACs; 32-byte nonces).
const REGISTRATION_REQUEST_LEN: usize = 32;
const REGISTRATION_RESPONSE_LEN: usize = 64;
const ENVELOPE_LEN: usize = 96;
const REGISTRATION_UPLOAD_LEN: usize = 32 + 64 + ENVELOPE_LEN;
const CREDENTIAL_REQUEST_LEN: usize = 96;
const CREDENTIAL_RESPONSE_LEN: usize = 32 + 32 + 128 + 32 + 32 + 64;
const CREDENTIAL_FINALIZATION_LEN: usize = 64;
const SERVER_SETUP_LEN: usize = 64 + 32 + 32;

const PASSWORD: &[u8] = b"umbra test vector password";
const USERNAME: &str = "alice";
/// The relay's prefix for an unknown username's credential identifier.
const UNKNOWN_USER_PREFIX: &[u8] = b"umbra/v1/relay/unknown-user:";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// `masked_response XOR Expand(masking_key, masking_nonce || "CredentialResponsePad", 128)`
/// (RFC 9807 §6.1.2), recomputed with HKDF-SHA-512.
fn unmask(masking_key: &[u8], masking_nonce: &[u8], masked: &[u8]) -> Vec<u8> {
    let mut pad = [0u8; 128];
    Hkdf::<Sha512>::from_prk(masking_key)
        .expect("64-byte masking key is a valid PRK")
        .expand_multi_info(&[masking_nonce, b"CredentialResponsePad"], &mut pad)
        .expect("128 bytes is a valid HKDF-SHA-512 length");
    masked.iter().zip(pad).map(|(m, p)| m ^ p).collect()
}

/// Recomputes the client side of registration from primitives and the spec
/// (§11.3 "Derivations"), without opaque-ke: the blind from the step's RNG
/// (64 bytes reduced mod ℓ, opaque-ke's first draw), the OPRF output, the
/// Argon2id KSF with its all-zero salt, `randomized_pwd`, then
/// `masking_key` and `export_key`, which must equal what the library put in
/// the upload and returned. This pins the KSF parameters and salt, which
/// the relay never sees and no other check could catch.
fn recompute_registration(reg_response: &[u8], upload: &[u8], export_key: &[u8]) {
    use argon2::{Algorithm, Argon2, Params, Version};
    use curve25519_dalek::ristretto::CompressedRistretto;
    use curve25519_dalek::scalar::Scalar;
    use rand_core::RngCore;
    use sha2::Digest;

    let mut wide = [0u8; 64];
    rng(2).fill_bytes(&mut wide);
    let blind = Scalar::from_bytes_mod_order_wide(&wide);
    let evaluated = CompressedRistretto::from_slice(&reg_response[..32])
        .expect("32 bytes")
        .decompress()
        .expect("evaluated element is a point");
    let unblinded = (evaluated * blind.invert()).compress();
    // RFC 9497 Finalize: Hash(I2OSP(len(pwd), 2) || pwd || I2OSP(32, 2) || unblinded || "Finalize").
    let oprf_output = sha2::Sha512::new()
        .chain_update((PASSWORD.len() as u16).to_be_bytes())
        .chain_update(PASSWORD)
        .chain_update(32u16.to_be_bytes())
        .chain_update(unblinded.as_bytes())
        .chain_update(b"Finalize")
        .finalize();
    let params = Params::new(65_536, 3, 1, Some(64)).expect("valid Argon2 parameters");
    let mut stretched = [0u8; 64];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(&oprf_output, &[0u8; 16], &mut stretched)
        .expect("Argon2id runs");
    let mut ikm = oprf_output.to_vec();
    ikm.extend_from_slice(&stretched);
    // randomized_pwd = HKDF-Extract(salt = "", oprf_output || stretched).
    let (_, randomized) = Hkdf::<Sha512>::extract(None, &ikm);
    let mut masking_key = [0u8; 64];
    randomized
        .expand(b"MaskingKey", &mut masking_key)
        .expect("64 bytes");
    assert_eq!(hex(masking_key), hex(&upload[32..96]), "masking_key");
    let envelope_nonce = &upload[96..128];
    let mut export = [0u8; 64];
    randomized
        .expand_multi_info(&[envelope_nonce, b"ExportKey"], &mut export)
        .expect("64 bytes");
    assert_eq!(hex(export), hex(export_key), "export_key");
    // auth_tag = HMAC(auth_key, nonce || cleartext_credentials), identities
    // defaulting to the public keys.
    use hmac::{Hmac, Mac};
    let mut auth_key = [0u8; 64];
    randomized
        .expand_multi_info(&[envelope_nonce, b"AuthKey"], &mut auth_key)
        .expect("64 bytes");
    let server_public = &reg_response[32..];
    let client_public = &upload[..32];
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&auth_key).expect("any key length");
    mac.update(envelope_nonce);
    mac.update(server_public);
    mac.update(&32u16.to_be_bytes());
    mac.update(server_public);
    mac.update(&32u16.to_be_bytes());
    mac.update(client_public);
    assert_eq!(
        hex(mac.finalize().into_bytes()),
        hex(&upload[128..]),
        "auth_tag"
    );
}

fn vectors() -> Value {
    let ksf = umbra_ksf();
    let setup = ServerSetup::<Suite>::new(&mut rng(1));
    let setup_bytes = setup.serialize().to_vec();
    assert_eq!(setup_bytes.len(), SERVER_SETUP_LEN);
    let server_public = setup.keypair().public().serialize().to_vec();
    let account = AccountId::from_bytes([0xa1; 16]);
    let credential_id = account.as_bytes().to_vec();
    let username = Username::parse(USERNAME).expect("valid username");

    // Registration.
    let reg_start = ClientRegistration::<Suite>::start(&mut rng(2), PASSWORD).expect("start");
    let reg_request = reg_start.message.serialize().to_vec();
    let reg_response = ServerRegistration::<Suite>::start(
        &setup,
        RegistrationRequest::deserialize(&reg_request).expect("request parses"),
        &credential_id,
    )
    .expect("server registration")
    .message
    .serialize()
    .to_vec();
    let reg_finish = reg_start
        .state
        .finish(
            &mut rng(3),
            PASSWORD,
            RegistrationResponse::deserialize(&reg_response).expect("response parses"),
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
        )
        .expect("client registration finish");
    let upload = reg_finish.message.serialize().to_vec();
    let password_file =
        ServerRegistration::finish(RegistrationUpload::<Suite>::deserialize(&upload).unwrap());
    assert_eq!(
        password_file.serialize().to_vec(),
        upload,
        "password file = upload"
    );

    // Login with the right password.
    let login_start = ClientLogin::<Suite>::start(&mut rng(4), PASSWORD).expect("login start");
    let cred_request = login_start.message.serialize().to_vec();
    let server_start = ServerLogin::start(
        &mut rng(5),
        &setup,
        Some(password_file),
        CredentialRequest::deserialize(&cred_request).expect("request parses"),
        &credential_id,
        ServerLoginParameters::default(),
    )
    .expect("server login start");
    let cred_response = server_start.message.serialize().to_vec();
    let login_finish = login_start
        .state
        .finish(
            &mut rng(6),
            PASSWORD,
            CredentialResponse::deserialize(&cred_response).expect("response parses"),
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        )
        .expect("right password logs in");
    let finalization = login_finish.message.serialize().to_vec();
    let server_finish = server_start
        .state
        .finish(
            CredentialFinalization::deserialize(&finalization).expect("finalization parses"),
            ServerLoginParameters::default(),
        )
        .expect("server accepts the finalization");
    assert_eq!(
        login_finish.session_key, server_finish.session_key,
        "both sides derive the same session key"
    );
    assert_eq!(
        login_finish.export_key, reg_finish.export_key,
        "login recovers the registration's export key"
    );

    // A wrong password fails on the client: the envelope does not open.
    let wrong = ClientLogin::<Suite>::start(&mut rng(7), b"not the password").unwrap();
    let wrong_response = ServerLogin::start(
        &mut rng(8),
        &setup,
        Some(ServerRegistration::deserialize(&upload).unwrap()),
        wrong.message.clone(),
        &credential_id,
        ServerLoginParameters::default(),
    )
    .unwrap()
    .message;
    assert!(wrong
        .state
        .finish(
            &mut rng(9),
            b"not the password",
            wrong_response,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        )
        .is_err());

    // An unknown username: the relay answers from opaque-ke's fake record.
    let mut unknown_id = UNKNOWN_USER_PREFIX.to_vec();
    unknown_id.extend_from_slice(b"mallory");
    let fake_response = ServerLogin::start(
        &mut rng(10),
        &setup,
        None,
        CredentialRequest::deserialize(&cred_request).unwrap(),
        &unknown_id,
        ServerLoginParameters::default(),
    )
    .unwrap()
    .message
    .serialize()
    .to_vec();

    recompute_registration(&reg_response, &upload, &reg_finish.export_key);
    check_layout(
        &server_public,
        &reg_request,
        &reg_response,
        &upload,
        &cred_request,
        &cred_response,
        &finalization,
        &fake_response,
    );

    // How the messages sit in umbra's frames (section 9.7/9.8), request id 1.
    let register_start_frame = wire::encode_client(&ClientFrame {
        request_id: 1,
        request: Request::RegisterStart {
            username: username.clone(),
            opaque_request: reg_request.clone(),
        },
    })
    .unwrap();
    let login_response_frame = wire::encode_relay(&RelayFrame::Response {
        request_id: 1,
        response: Response::LoginResponse {
            login_id: 5,
            opaque_response: cred_response.clone(),
        },
    })
    .unwrap();

    json!({
        "description": "OPAQUE (RFC 9807) as umbra runs it: ristretto255-SHA512 OPRF, 3DH over ristretto255 with SHA-512, Argon2id KSF with a 16-byte all-zero salt, no context, default identifiers. Randomness: ChaCha20Rng::from_seed([seed; 32]) per step, in opaque-ke 4 draw order. Layouts in docs/PROTOCOL.md §11.3.",
        "ksf": {
            "algorithm": "Argon2id",
            "version": 19,
            "memory_kib": ARGON2_MEMORY_KIB,
            "iterations": ARGON2_ITERATIONS,
            "parallelism": ARGON2_PARALLELISM,
            "salt": hex([0u8; 16]),
            "output_len": 64,
        },
        "password": hex(PASSWORD),
        "credential_identifier": hex(&credential_id),
        "server_setup": {
            "seed": 1,
            "bytes": hex(&setup_bytes),
            "server_public_key": hex(&server_public),
        },
        "registration": {
            "client_start_seed": 2,
            "client_finish_seed": 3,
            "registration_request": hex(&reg_request),
            "registration_response": hex(&reg_response),
            "registration_upload": hex(&upload),
            "export_key": hex(reg_finish.export_key),
        },
        "login": {
            "client_start_seed": 4,
            "server_start_seed": 5,
            "client_finish_seed": 6,
            "credential_request": hex(&cred_request),
            "credential_response": hex(&cred_response),
            "credential_finalization": hex(&finalization),
            "session_key": hex(login_finish.session_key),
            "export_key": hex(login_finish.export_key),
        },
        "unknown_user_login": {
            "credential_identifier": hex(&unknown_id),
            "server_start_seed": 10,
            "credential_request": hex(&cred_request),
            "credential_response": hex(&fake_response),
        },
        "frames": {
            "register_start": hex(register_start_frame),
            "login_response_login_id_5": hex(login_response_frame),
        },
    })
}

/// Checks every message against the §11.3 layout with raw primitives.
#[allow(clippy::too_many_arguments)]
fn check_layout(
    server_public: &[u8],
    reg_request: &[u8],
    reg_response: &[u8],
    upload: &[u8],
    cred_request: &[u8],
    cred_response: &[u8],
    finalization: &[u8],
    fake_response: &[u8],
) {
    assert_eq!(reg_request.len(), REGISTRATION_REQUEST_LEN);
    assert_eq!(reg_response.len(), REGISTRATION_RESPONSE_LEN);
    assert_eq!(upload.len(), REGISTRATION_UPLOAD_LEN);
    assert_eq!(cred_request.len(), CREDENTIAL_REQUEST_LEN);
    assert_eq!(cred_response.len(), CREDENTIAL_RESPONSE_LEN);
    assert_eq!(finalization.len(), CREDENTIAL_FINALIZATION_LEN);
    assert_eq!(
        fake_response.len(),
        CREDENTIAL_RESPONSE_LEN,
        "fake record, same shape"
    );

    // RegistrationResponse = evaluated_message (32) || server_public_key (32).
    assert_eq!(&reg_response[32..], server_public);
    // RegistrationRecord = client_public_key (32) || masking_key (64) || envelope (96).
    let masking_key = &upload[32..96];
    let envelope = &upload[96..];
    // CredentialResponse = evaluated_message (32) || masking_nonce (32) ||
    // masked_response (128) || server_nonce (32) || server_keyshare (32) || server_mac (64).
    let masking_nonce = &cred_response[32..64];
    let masked = &cred_response[64..192];
    let revealed = unmask(masking_key, masking_nonce, masked);
    assert_eq!(&revealed[..32], server_public, "unmasked server public key");
    assert_eq!(
        &revealed[32..],
        envelope,
        "unmasked envelope equals the uploaded one"
    );
    // The blinded element of KE1 is a fresh blind, unlike registration's.
    assert_ne!(&cred_request[..32], reg_request);
}

/// §11.3: a message one byte longer or shorter than its fixed length, or
/// with the identity element (32 zero bytes) as its first element, is
/// refused by umbra's rule (`exact_len`, then opaque-ke's deserializer). The
/// length check matters: opaque-ke alone ignores trailing bytes.
#[test]
fn messages_of_another_length_or_with_the_identity_element_are_refused() {
    use umbra_protocol::opaque_suite as s;
    assert_eq!(
        [
            s::REGISTRATION_REQUEST_LEN,
            s::REGISTRATION_RESPONSE_LEN,
            s::REGISTRATION_RECORD_LEN
        ],
        [
            REGISTRATION_REQUEST_LEN,
            REGISTRATION_RESPONSE_LEN,
            REGISTRATION_UPLOAD_LEN
        ]
    );
    assert_eq!(
        [s::KE1_LEN, s::KE2_LEN, s::KE3_LEN],
        [
            CREDENTIAL_REQUEST_LEN,
            CREDENTIAL_RESPONSE_LEN,
            CREDENTIAL_FINALIZATION_LEN
        ]
    );
    let v = vectors();
    let get = |section: &str, field: &str| {
        hex::decode(v[section][field].as_str().expect("hex field")).expect("hex")
    };
    type Check = fn(&[u8]) -> bool;
    let cases: [(&str, Vec<u8>, Check); 6] = [
        (
            "RegistrationRequest",
            get("registration", "registration_request"),
            |b| {
                s::exact_len(b, s::REGISTRATION_REQUEST_LEN)
                    .is_some_and(|b| RegistrationRequest::<Suite>::deserialize(b).is_ok())
            },
        ),
        (
            "RegistrationResponse",
            get("registration", "registration_response"),
            |b| {
                s::exact_len(b, s::REGISTRATION_RESPONSE_LEN)
                    .is_some_and(|b| RegistrationResponse::<Suite>::deserialize(b).is_ok())
            },
        ),
        (
            "RegistrationRecord",
            get("registration", "registration_upload"),
            |b| {
                s::exact_len(b, s::REGISTRATION_RECORD_LEN)
                    .is_some_and(|b| RegistrationUpload::<Suite>::deserialize(b).is_ok())
            },
        ),
        ("KE1", get("login", "credential_request"), |b| {
            s::exact_len(b, s::KE1_LEN)
                .is_some_and(|b| CredentialRequest::<Suite>::deserialize(b).is_ok())
        }),
        ("KE2", get("login", "credential_response"), |b| {
            s::exact_len(b, s::KE2_LEN)
                .is_some_and(|b| CredentialResponse::<Suite>::deserialize(b).is_ok())
        }),
        ("KE3", get("login", "credential_finalization"), |b| {
            s::exact_len(b, s::KE3_LEN)
                .is_some_and(|b| CredentialFinalization::<Suite>::deserialize(b).is_ok())
        }),
    ];
    for (name, bytes, parses) in cases {
        assert!(parses(&bytes), "{name} as generated");
        assert!(!parses(&bytes[..bytes.len() - 1]), "{name} one byte short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!parses(&longer), "{name} one byte long");
        if name != "KE3" {
            let mut identity = bytes.clone();
            identity[..32].fill(0);
            assert!(!parses(&identity), "{name} with the identity element");
        }
    }
}

#[test]
fn opaque_vectors() {
    check_or_regenerate("opaque.json", &vectors());
}
