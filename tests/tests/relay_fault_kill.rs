//! Fault suite, crashes: senders and recipients keep a real `umbra-relay`
//! busy while it is killed with SIGKILL again and again (on SQLite and on
//! PostgreSQL) and restarted on the same store and address. Nothing the
//! relay acknowledged `Accepted { seq }` may be lost, each recipient's
//! messages keep their order, and a message is stored twice only where the
//! spec allows it (a reply lost with the killed relay; PROTOCOL.md 9.6,
//! 12.4). The rules are checked by the shared ledger
//! (`relay_fault_support`).
//!
//! Short form (the default test run): 8 senders, 4 recipients, 4 kills.
//! Long form: `UMBRA_FAULT_LONG=1 cargo test -p umbra-e2e --test
//! relay_fault_kill -- --nocapture` (20 senders, 8 recipients, 24 kills).
//!
//! Must never: kill anything but the relay it started, or pass when the
//! load made no progress after a restart (a relay that stopped accepting
//! would lose nothing and prove nothing).

mod relay_fault_support;
mod relay_support;

use std::time::Duration;

use anyhow::bail;
use relay_fault_support::{long_form, sign_up, Ledger, Load};
use relay_support::{crash_and_respawn, on_every_store, shut_down, Backend};

/// Most a restarted relay may take to accept messages again.
const RESUME_BOUND: Duration = Duration::from_secs(30);
/// Most the recipients may take to receive everything once senders stop.
const DRAIN_BOUND: Duration = Duration::from_secs(30);

/// Waits until the load has had more than `count` messages accepted.
async fn accepted_above(load: &Load, count: usize, what: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + RESUME_BOUND;
    while load.accepted() <= count {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{what}: still {} accepted after {RESUME_BOUND:?}",
                load.accepted()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn sigkill_under_load(backend: Backend) -> anyhow::Result<()> {
    let (senders, recipients, kills) = if long_form() { (20, 8, 24) } else { (8, 4, 4) };
    let mut relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let senders = sign_up(&url, "sender", senders).await?;
    let recipients = sign_up(&url, "recipient", recipients).await?;
    let mut load = Load::start(&url, &senders, &recipients);
    accepted_above(&load, 50, "before the first kill").await?;
    for kill in 0..kills {
        // Kill at a different point of the commit cycle each time.
        let pause = Duration::from_millis(300 + (kill * 173) % 700);
        tokio::time::sleep(pause).await;
        let before = load.accepted();
        relay = crash_and_respawn(relay).await?;
        accepted_above(&load, before + 20, &format!("after kill {}", kill + 1)).await?;
    }
    load.stop_senders().await;
    load.drain_and_stop(DRAIN_BOUND).await?;
    let summary = Ledger::verify(&load.ledger)?;
    eprintln!(
        "{}: {kills} SIGKILLs: {} accepted, none lost; {} unknown outcomes, {} messages stored \
         twice (allowed after those), {} deliveries",
        backend.name(),
        summary.accepted,
        summary.unknown_outcomes,
        summary.duplicated,
        summary.deliveries
    );
    shut_down(relay).await;
    Ok(())
}

on_every_store!(sigkill_under_load);
