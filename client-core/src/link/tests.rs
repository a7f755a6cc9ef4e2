//! The joiner's handling of a store whose setup never committed (a crash
//! between creating the store and its one setup transaction): it is
//! unlocked with the password given and set up by the link, as a login
//! sets such a store up again; a wrong password is refused before any
//! network traffic. These need to create a store header alone, so they
//! live in the crate.

use std::sync::Arc;

use rand::rngs::OsRng;

use crate::groups::tests::{register, relay};
use crate::store::{ClientStore, MemoryStore, Vault};
use crate::{Client, ClientConfig, Error, KdfParams};

fn config(url: &str, store: &Arc<MemoryStore>) -> ClientConfig {
    let store: Arc<dyn ClientStore> = store.clone();
    ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_setup_never_committed_is_set_up_by_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let account = alice.whoami().account_id;

    // A header for alice's account and nothing else, under "pw-new".
    let store = Arc::new(MemoryStore::new());
    let backend: Arc<dyn ClientStore> = store.clone();
    Vault::create(
        backend,
        b"pw-new",
        KdfParams::insecure_for_tests(),
        account,
        &mut OsRng,
    )
    .await
    .expect("header");
    assert!(Client::has_account(&config(&url, &store)).await.unwrap());

    // A wrong password fails at once, before anything reaches the relay
    // (the code below is never joined by it).
    let invite = alice.link_device().await.unwrap();
    let wrong = Client::link_accept(config(&url, &store), invite.code(), "not-it").await;
    assert!(matches!(wrong, Err(Error::WrongPassword)), "{wrong:?}");

    let joiner = {
        let (config, code) = (config(&url, &store), invite.code().to_owned());
        tokio::spawn(async move { Client::link_accept(config, &code, "pw-new").await })
    };
    assert_eq!(invite.complete().await.unwrap(), 2);
    let linked = joiner.await.unwrap().expect("set up by the link");
    assert_eq!(linked.whoami().account_id, account);
    assert_eq!(linked.whoami().device_id, 2);
    linked.shutdown().await;
    // Set up now: a second link into it is refused before any traffic.
    let invite = alice.link_device().await.unwrap();
    let again = Client::link_accept(config(&url, &store), invite.code(), "pw-new").await;
    assert!(
        matches!(
            again,
            Err(Error::Store(crate::StoreError::AlreadyInitialized))
        ),
        "{again:?}"
    );
}
