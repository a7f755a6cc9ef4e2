//! The premise of password-only restore (docs/PROTOCOL.md §13.2), over real
//! OPAQUE with umbra's suite and Argon2id: the export key of a registration
//! and of every later login with the same password is the same, so a backup
//! sealed after registering opens after logging in on a fresh device; a
//! re-registration with a new password (a password change) gives another
//! export key, under which the old backup is `WrongKey` until the client
//! re-seals it.

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, Identifiers, ServerLogin, ServerLoginParameters,
    ServerRegistration, ServerSetup,
};
use rand::rngs::OsRng;
use umbra_protocol::backup::{self, BackupContents, BackupError, BackupKey, EXPORT_KEY_LEN};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::opaque_suite::{umbra_ksf, UmbraOpaqueSuite as Suite};
use umbra_protocol::wire::AccountId;

/// Registers `password`: the password file the relay keeps and the client's
/// export key.
fn register(
    setup: &ServerSetup<Suite>,
    id: &[u8],
    password: &[u8],
) -> (ServerRegistration<Suite>, [u8; EXPORT_KEY_LEN]) {
    let ksf = umbra_ksf();
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
    let response = ServerRegistration::<Suite>::start(setup, start.message, id)
        .unwrap()
        .message;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
        )
        .unwrap();
    (
        ServerRegistration::finish(finish.message),
        finish.export_key.into(),
    )
}

/// Logs in with `password`: the client's export key, or `None` if the
/// envelope does not open (wrong password).
fn login(
    setup: &ServerSetup<Suite>,
    file: &ServerRegistration<Suite>,
    id: &[u8],
    password: &[u8],
) -> Option<[u8; EXPORT_KEY_LEN]> {
    let ksf = umbra_ksf();
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
    let server = ServerLogin::start(
        &mut OsRng,
        setup,
        Some(file.clone()),
        start.message,
        id,
        ServerLoginParameters::default(),
    )
    .unwrap();
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            server.message,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        )
        .ok()?;
    Some(finish.export_key.into())
}

#[test]
fn a_login_opens_what_registration_sealed_and_a_password_change_needs_a_reseal() {
    let setup = ServerSetup::<Suite>::new(&mut OsRng);
    let account = AccountId::random(&mut OsRng);
    let id = account.as_bytes();
    let (file, at_registration) = register(&setup, id, b"correct horse battery");
    let contents = BackupContents::new(account, IdentityKeyPair::generate(&mut OsRng), 1);
    let identity = contents.identity.public();
    let sealed = backup::seal(
        &contents,
        &BackupKey::derive(&at_registration, &account),
        1,
        &mut OsRng,
    )
    .unwrap();

    // A fresh device: only the password.
    let at_login = login(&setup, &file, id, b"correct horse battery").expect("logs in");
    assert_eq!(at_login, at_registration, "the export key is stable");
    let restored = backup::open(&BackupKey::derive(&at_login, &account), &sealed, None).unwrap();
    assert_eq!(restored.contents.identity.public(), identity);
    assert!(login(&setup, &file, id, b"wrong horse battery").is_none());

    // Password change: a new registration, a new export key.
    let (new_file, changed) = register(&setup, id, b"new staple password");
    assert_ne!(changed, at_registration);
    let new_key = BackupKey::derive(&changed, &account);
    assert_eq!(
        backup::open(&new_key, &sealed, None).map(|_| ()),
        Err(BackupError::WrongKey)
    );
    let resealed = backup::seal(&restored.contents, &new_key, 2, &mut OsRng).unwrap();
    let after = login(&setup, &new_file, id, b"new staple password").expect("new password");
    let reopened = backup::open(&BackupKey::derive(&after, &account), &resealed, Some(1)).unwrap();
    assert_eq!(reopened.seq, 2);
    assert_eq!(reopened.contents.identity.public(), identity);
    assert!(login(&setup, &new_file, id, b"correct horse battery").is_none());
}
