//! `--trusted-proxy` over the real binary: behind a reverse proxy every
//! connection comes from the proxy, so the (username, source) login budget
//! must key on the client the proxy names in `X-Forwarded-For`, or an
//! attacker anywhere locks bob out by name. The test itself plays the proxy
//! at 127.0.0.1, sending the header a proxy would add; without the setting
//! the same header must change nothing.
//!
//! Must never: pass without showing the attacker was actually refused, or
//! without showing that an untrusted peer's header is ignored.

use anyhow::{ensure, Context};
use umbra_e2e::wire_client::WireClient;
use umbra_e2e::{Relay, StoreKind};
use umbra_protocol::wire::{ErrorCode, Request, Response, Username};
use umbra_test_support::opaque_flow::PendingLogin;

/// LoginStarts per (username, source) per minute in these relays: small,
/// so a few attempts exhaust it.
const PER_SOURCE: u32 = 3;
const ATTEMPTS: usize = 8;
const ATTACKER: &str = "203.0.113.7";
const BOB: &str = "198.51.100.9";

async fn relay(extra: &'static [&'static str]) -> anyhow::Result<Relay> {
    tokio::task::spawn_blocking(move || {
        let per_source = PER_SOURCE.to_string();
        let mut args = vec!["--auth-per-username-per-minute", per_source.as_str()];
        args.extend_from_slice(extra);
        Relay::start_with(StoreKind::Sqlite, &args)
    })
    .await
    .context("starting the relay")
}

/// Sends LoginStarts for bob as the client `forwarded_for`; how many were
/// refused as rate limited.
async fn hammer_bob(url: &str, forwarded_for: &str) -> anyhow::Result<usize> {
    let mut attacker = WireClient::connect_forwarded_for(url, forwarded_for).await?;
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
    attacker.close().await;
    Ok(refused)
}

async fn register_bob(url: &str) -> anyhow::Result<()> {
    let mut owner = WireClient::connect(url).await?;
    owner.register("bob", "bob's own password").await?;
    owner.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_source_of_each_client() -> anyhow::Result<()> {
    let relay = relay(&["--trusted-proxy", "127.0.0.1"]).await?;
    let url = relay.ws_url();
    register_bob(&url).await?;

    let refused = hammer_bob(&url, ATTACKER).await?;
    ensure!(
        refused >= ATTEMPTS - PER_SOURCE as usize,
        "the attacker's forwarded source was refused only {refused} of {ATTEMPTS} times"
    );

    // The proxy's own address and the attacker's budget are spent; bob,
    // forwarded from elsewhere, has his own.
    let mut bob = WireClient::connect_forwarded_for(&url, BOB).await?;
    let login = bob.login("bob", "bob's own password").await;
    ensure!(
        login.is_ok(),
        "bob, forwarded from another address, cannot log in: {:?}",
        login.err()
    );
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_header_is_ignored() -> anyhow::Result<()> {
    let relay = relay(&[]).await?;
    let url = relay.ws_url();
    register_bob(&url).await?;

    let refused = hammer_bob(&url, ATTACKER).await?;
    ensure!(
        refused >= ATTEMPTS - PER_SOURCE as usize,
        "the attacker was refused only {refused} of {ATTEMPTS} times"
    );

    // Every connection is from 127.0.0.1 whatever the header says, so the
    // (bob, 127.0.0.1) budget is spent for "bob's" connection too.
    let mut bob = WireClient::connect_forwarded_for(&url, BOB).await?;
    let login = bob.login("bob", "bob's own password").await;
    ensure!(
        login.as_ref().err().and_then(|e| e.code()) == Some(ErrorCode::RateLimited),
        "an untrusted peer's X-Forwarded-For chose its own budget: {:?}",
        login.map(|_| "logged in")
    );
    bob.close().await;
    Ok(())
}
