//! Issue 9 item 7 over the real binary with its default limits: an attacker
//! on one address sending many `LoginStart`s for "bob" is throttled, and bob
//! still logs in from another address. Two source addresses on one machine:
//! on Linux all of 127.0.0.0/8 is local, so the attacker connects from
//! 127.0.0.2 and bob from 127.0.0.1.
//!
//! Must never: pass without showing the attacker was actually refused (a
//! relay with no login limit at all would also let bob in).

use std::net::IpAddr;

use anyhow::{ensure, Context};
use umbra_e2e::wire_client::WireClient;
use umbra_e2e::{Relay, StoreKind};
use umbra_protocol::wire::{ErrorCode, Request, Response, Username};
use umbra_test_support::opaque_flow::PendingLogin;

const ATTEMPTS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_on_one_address_cannot_lock_bob_out_from_another() -> anyhow::Result<()> {
    // Default limits: the point is what an unconfigured relay does.
    let relay = tokio::task::spawn_blocking(|| Relay::start_with(StoreKind::Sqlite, &[]))
        .await
        .context("starting the relay")?;
    let url = relay.ws_url();
    let mut owner = WireClient::connect(&url).await?;
    owner.register("bob", "bob's own password").await?;
    owner.close().await;

    let attacker_ip: IpAddr = "127.0.0.2".parse()?;
    let mut attacker = WireClient::connect_from(&url, attacker_ip).await?;
    let mut refused = 0;
    for _ in 0..ATTEMPTS {
        let (_pending, opaque_request) = PendingLogin::start(b"guess")?;
        let reply = attacker
            .request(Request::LoginStart {
                username: Username::parse("bob")?,
                opaque_request,
            })
            .await?;
        match reply {
            Response::LoginResponse { .. } => {}
            Response::Error {
                code: ErrorCode::RateLimited,
                ..
            } => refused += 1,
            other => anyhow::bail!("unexpected answer to the attacker: {other:?}"),
        }
    }
    ensure!(
        refused >= ATTEMPTS - 10,
        "the attacker was refused only {refused} of {ATTEMPTS} times"
    );
    attacker.close().await;

    let mut bob = WireClient::connect(&url).await?;
    let login = bob.login("bob", "bob's own password").await;
    ensure!(
        login.is_ok(),
        "bob cannot log in from his own address while an attacker hammers his name: {:?}",
        login.err()
    );
    bob.close().await;
    Ok(())
}
