//! What the device suites (`relay_ws_devices.rs`, `relay_ws_link.rs`)
//! share: relays on either store (SQLite, or PostgreSQL with two nodes
//! sharing the database and the OPAQUE key), publishing an identity, a
//! signed device list, and linking a second device through the real
//! rendezvous of PROTOCOL.md 15.6.
//!
//! Must never: skip PostgreSQL under CI=true (`PgTestDb` panics there when
//! it is unavailable), or link a device by writing to the store: every
//! device here is enrolled over the wire.
//!
//! Included by those suites with `#[path]` beside `mod common;`, so the
//! other suites do not compile it.

#![allow(dead_code)] // each suite uses a different part of this module

use rand::rngs::OsRng;
use umbra_protocol::device_list::sign_device_list;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_relay::config::Settings;
use umbra_test_support::PgTestDb;
use umbra_wire::{
    AccountId, Address, DeviceId, LinkEnrolled, LinkTicketId, PreKeyWire, Request, Response,
    SessionToken, SignedPreKeyWire,
};

use crate::common::{relay_with, Client, TestRelay};

/// Runs `$test(backend, name)` once per store, as `$test::sqlite` and
/// `$test::postgres` (the suites include this module with `#[macro_use]`).
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(super::Backend::Sqlite, module_path!()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(super::Backend::Postgres, module_path!()).await;
            }
        }
    )*};
}

/// One test's relays: `a` always; `b` a second node on the same PostgreSQL
/// database (None on SQLite, which is single-node by design).
pub struct Nodes {
    pub a: TestRelay,
    pub b: Option<TestRelay>,
    _db: Option<PgTestDb>,
    _keys: tempfile::TempDir,
}

/// Which store a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The relays of `test` on `backend`; `None` when PostgreSQL is skipped
/// (outside CI only; the skip is reported by `PgTestDb`).
pub async fn nodes(backend: Backend, test: &str) -> Option<Nodes> {
    nodes_with(backend, test, Settings::default()).await
}

/// [`nodes`] whose relays run with `base` (its store settings are
/// replaced by the test's own).
pub async fn nodes_with(backend: Backend, test: &str, base: Settings) -> Option<Nodes> {
    let keys = tempfile::tempdir().expect("key directory");
    match backend {
        Backend::Sqlite => Some(Nodes {
            a: relay_with(base).await,
            b: None,
            _db: None,
            _keys: keys,
        }),
        Backend::Postgres => {
            let db = PgTestDb::create(test).await?;
            let settings = || Settings {
                database_url: Some(db.url().to_owned()),
                opaque_key_file: Some(keys.path().join("opaque-server-key")),
                ..base.clone()
            };
            let a = relay_with(settings()).await;
            let b = relay_with(settings()).await;
            Some(Nodes {
                a,
                b: Some(b),
                _db: Some(db),
                _keys: keys,
            })
        }
    }
}

/// Publishes a fresh identity with a signed prekey and one one-time prekey
/// for the connection's device, and returns the identity.
pub async fn publish_identity(c: &mut Client) -> IdentityKeyPair {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    publish_keys(c, &identity).await;
    identity
}

/// A `PublishKeys` of `identity` with a fresh signed prekey.
pub fn publish_keys_request(identity: &IdentityKeyPair) -> Request {
    let spk = SignedPreKey::generate(identity, 1, 1_700_000_000, &mut OsRng).public();
    Request::PublishKeys {
        identity: identity.public().to_bytes().to_vec(),
        signed_prekey: SignedPreKeyWire::from(spk),
        last_resort: None,
    }
}

/// Publishes `identity` (shared by every device of an account, 15.1) with
/// fresh prekeys for the connection's device.
pub async fn publish_keys(c: &mut Client, identity: &IdentityKeyPair) {
    let response = c.ask(publish_keys_request(identity)).await;
    assert_eq!(response, Response::Ok, "PublishKeys");
    let prekeys = vec![PreKeyWire::from(
        OneTimePreKey::generate(1, &mut OsRng).public(),
    )];
    let response = c.ask(Request::UploadPreKeys { prekeys }).await;
    assert!(
        matches!(response, Response::PreKeyCount { .. }),
        "{response:?}"
    );
}

/// The encoded list of `devices`, version `version`, signed by `identity`.
pub fn signed_list(
    identity: &IdentityKeyPair,
    account: AccountId,
    version: u64,
    devices: &[u32],
) -> Vec<u8> {
    let devices = devices.iter().map(|&d| DeviceId(d)).collect();
    sign_device_list(identity, account, version, devices)
        .expect("a valid list")
        .encode()
}

/// A new device linked to `creator`'s account through `relay`: the joiner
/// connects there, joins, is enrolled, receives its token and
/// authenticates. Returns its authenticated connection and token.
pub async fn link_device(
    creator: &mut Client,
    relay: &TestRelay,
) -> (Client, Address, SessionToken) {
    let Response::LinkTicket { ticket, .. } = creator.ask(Request::LinkCreate).await else {
        panic!("LinkCreate answered without a ticket");
    };
    let mut joiner = Client::connect(relay).await;
    assert_eq!(joiner.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    let Response::DeviceEnrolled { device } = creator.ask(Request::LinkEnrol { ticket }).await
    else {
        panic!("LinkEnrol did not enrol");
    };
    let enrolled = fetch_enrolment(&mut joiner, ticket).await;
    assert_eq!(enrolled.device, device);
    let address = Address {
        account: enrolled.account,
        device,
    };
    authenticate(&mut joiner, &enrolled.token, device, address).await;
    (joiner, address, enrolled.token)
}

/// The joiner's `LinkFetch` after enrolment: its device and token.
pub async fn fetch_enrolment(joiner: &mut Client, ticket: LinkTicketId) -> LinkEnrolled {
    match joiner.ask(Request::LinkFetch { ticket, after: 0 }).await {
        Response::LinkMessages {
            enrolled: Some(enrolled),
            ..
        } => enrolled,
        other => panic!("the joiner got no enrolment: {other:?}"),
    }
}

/// Authenticates `c` with `token` as `device` and expects `address`.
pub async fn authenticate(
    c: &mut Client,
    token: &SessionToken,
    device: DeviceId,
    address: Address,
) {
    let (response, _) = c
        .call(Request::Authenticate {
            token: token.clone(),
            device,
        })
        .await;
    assert_eq!(response, Response::Authenticated { address });
}
