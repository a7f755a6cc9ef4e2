//! The joiner's handling of a store whose setup never committed (a crash
//! between creating the store and its one setup transaction): it is
//! unlocked with the password given and set up by the link, as a login
//! sets such a store up again; a wrong password is refused before any
//! network traffic. A failure after the enrolment names the enrolled
//! device; a rate-limited fetch waits and polls again; a relay that never
//! answers is `NoAnswer` after the wait; a refused enrolment is told to
//! the joiner at once. These need a store header alone,
//! raw link frames, relay settings or a silent WebSocket server, so they
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

/// A creator whose answer does not open (here raw frames on alice's
/// connection post garbage, then enrol): the relay holds device 2 as
/// current, and the joiner's failure says so with the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_enrolment_names_the_enrolled_device() {
    use umbra_protocol::link::LinkCode;
    use umbra_protocol::wire::{Request, Response};

    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let engine = alice.inner.clone();
    engine.ensure_connected().expect("connect");
    let Response::LinkTicket { ticket, .. } =
        engine.request(Request::LinkCreate).await.expect("create")
    else {
        panic!("no ticket")
    };
    let code = LinkCode::generate(ticket, &mut OsRng).to_text();
    let store = Arc::new(MemoryStore::new());
    let joiner = {
        let config = config(&url, &store);
        let code = code.to_string();
        tokio::spawn(async move {
            Client::link_accept_within(config, &code, "pw-new", std::time::Duration::from_secs(30))
                .await
        })
    };
    // Wait for msg1, then answer with bytes that open under no code.
    loop {
        let Response::LinkMessages { messages, .. } = engine
            .request(Request::LinkFetch { ticket, after: 0 })
            .await
            .expect("fetch")
        else {
            panic!("no messages")
        };
        if !messages.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    engine
        .request(Request::LinkPost {
            ticket,
            payload: vec![7; 200],
        })
        .await
        .expect("post");
    let Response::DeviceEnrolled { device } = engine
        .request(Request::LinkEnrol { ticket })
        .await
        .expect("enrol")
    else {
        panic!("not enrolled")
    };
    let failed = joiner.await.unwrap();
    match &failed {
        Err(Error::Link(crate::LinkFailure::EnrolledNotSetUp { device: id, cause })) => {
            assert_eq!(*id, device.0);
            assert!(
                matches!(
                    **cause,
                    Error::Link(crate::LinkFailure::AnswerUnopenable(_))
                ),
                "{cause:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let text = failed.unwrap_err().to_string();
    assert!(text.contains("umbra devices remove 2"), "{text}");
    // Nothing of an account was stored: no header either.
    assert!(!Client::has_account(&config(&url, &store)).await.unwrap());
}

/// Over the relay's `link_fetches_per_minute` budget a `LinkFetch` is
/// `RateLimited`, but the ticket stays (15.6): the joiner waits as asked
/// and polls again, and the link completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_fetch_waits_and_the_link_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = crate::groups::tests::relay_with(
        &dir,
        umbra_relay::config::Settings {
            link_fetches_per_minute: Some(2),
            ..Default::default()
        },
    )
    .await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let invite = alice.link_device().await.unwrap();
    let started = std::time::Instant::now();
    let store = Arc::new(MemoryStore::new());
    let joiner = {
        let (config, code) = (config(&url, &store), invite.code().to_owned());
        tokio::spawn(async move { Client::link_accept(config, &code, "pw-new").await })
    };
    assert_eq!(invite.complete().await.unwrap(), 2);
    let linked = joiner.await.unwrap().expect("linked after the wait");
    assert_eq!(linked.whoami().device_id, 2);
    // The joiner's third fetch within the minute was refused: it waited.
    assert!(started.elapsed() > std::time::Duration::from_secs(20));
    linked.shutdown().await;
}

/// A relay that completes the WebSocket handshake and then never answers
/// a request: the joiner gives up as `NoAnswer` a few seconds after its
/// wait, instead of waiting for ever on `LinkJoin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_is_no_answer_after_the_wait() {
    use umbra_protocol::link::LinkCode;
    use umbra_protocol::wire::LinkTicketId;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let ws = tokio_tungstenite::accept_async(tcp).await.expect("ws");
        // Holds the socket open, reading nothing.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(ws);
    });
    let code = LinkCode::generate(LinkTicketId::from_bytes([5; 16]), &mut OsRng).to_text();
    let store = Arc::new(MemoryStore::new());
    let wait = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Client::link_accept_within(config(&url, &store), &code, "pw-new", wait),
    )
    .await
    .expect("the joiner gave up by itself");
    assert!(
        matches!(outcome, Err(Error::Link(crate::LinkFailure::NoAnswer(_)))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    silent.abort();
}

/// The relay refuses the creator's `LinkEnrol` (the account reached its
/// 8 devices after the code was made): the waiting joiner is told at once
/// with `DeviceLimit`, not left to wait out the code, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_enrolment_is_told_to_the_joiner() {
    use umbra_protocol::wire::MAX_DEVICES_PER_ACCOUNT;

    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let invite = alice.link_device().await.expect("invite");
    let store = Arc::new(MemoryStore::new());
    let joiner = {
        let config = config(&url, &store);
        let code = invite.code().to_owned();
        // Far longer than the test takes: only the refusal ends it early.
        let wait = std::time::Duration::from_secs(240);
        tokio::spawn(async move { Client::link_accept_within(config, &code, "pw-new", wait).await })
    };
    // The account fills up meanwhile (devices enrolled behind the
    // creator's back, straight in the relay's store).
    let relay_store = umbra_relay::store::open(None, dir.path())
        .await
        .expect("relay store");
    for _ in 1..MAX_DEVICES_PER_ACCOUNT {
        relay_store
            .add_device(alice.whoami().account_id, 1)
            .await
            .expect("device");
    }
    let refused = invite.complete().await;
    assert!(
        matches!(refused, Err(Error::Link(crate::LinkFailure::DeviceLimit))),
        "{refused:?}"
    );
    let told = joiner.await.expect("joined");
    assert!(
        matches!(told, Err(Error::Link(crate::LinkFailure::DeviceLimit))),
        "{told:?}"
    );
    assert!(!Client::has_account(&config(&url, &store)).await.unwrap());
}
