//! Two users on one relay: register alice and bob, exchange messages, compare
//! safety numbers. Starts nothing itself; point it at a running relay:
//!
//! ```sh
//! cargo run -p umbra-relay -- --listen 127.0.0.1:7878 --data-dir /tmp/relay &
//! cargo run -p umbra-client-core --example two_users -- http://127.0.0.1:7878
//! ```
//!
//! Each run registers fresh random usernames and keeps both local stores in
//! memory, so it can be repeated against the same relay.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use umbra_client_core::{Client, ClientConfig, Event, MemoryStore, PeerRef};
use umbra_protocol::wire::Username;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:7878".to_string());
    let suffix: u32 = rand::random::<u32>() % 100_000;
    let (alice_name, bob_name) = (format!("alice{suffix}"), format!("bob{suffix}"));

    // Production clients use ClientConfig::new(url, data_dir) for an
    // encrypted SQLite store; the example keeps everything in memory.
    let alice = Client::register(
        ClientConfig::with_store(&url, Arc::new(MemoryStore::new())),
        &alice_name,
        "alice's long passphrase",
    )
    .await?;
    let bob = Client::register(
        ClientConfig::with_store(&url, Arc::new(MemoryStore::new())),
        &bob_name,
        "bob's long passphrase",
    )
    .await?;
    println!("registered {alice_name} and {bob_name} on {url}");
    // Peers are typed: a username to send to, a `PeerRef` (a username, a
    // `name#xxxxxxxx` label or an account id) to read about.
    let (alice_user, bob_user) = (Username::parse(&alice_name)?, Username::parse(&bob_name)?);
    let (alice_peer, bob_peer) = (
        PeerRef::from(alice_user.clone()),
        PeerRef::from(bob_user.clone()),
    );

    // A live application subscribes to events before acting.
    let mut bob_events = bob.events();
    let id = alice.send_text(&bob_user, "hello bob").await?;
    alice.flush_outbox(Duration::from_secs(10)).await?;
    println!("alice -> bob: message {id} accepted by the relay");

    while let Some(event) = bob_events.next().await {
        if let Event::Message { from, body, .. } = event {
            println!("bob got from {from}: {body}");
            break;
        }
    }
    bob.send_text(&alice_user, "hi alice").await?;
    bob.flush_outbox(Duration::from_secs(10)).await?;

    // A script drains what is waiting instead.
    for event in alice.receive_until_empty(Duration::from_secs(3)).await? {
        match event {
            Event::Message { from, body, .. } => println!("alice got from {from}: {body}"),
            Event::DeliveryReceipt { from, ids } => {
                println!("{from} received {} message(s)", ids.len())
            }
            _ => {}
        }
    }

    let number = alice.safety_number(&bob_peer).await?;
    println!("safety number (compare out of band):\n{number}");
    assert_eq!(number, bob.safety_number(&alice_peer).await?);
    // The number the users compared binds the decision: a key that changed
    // meanwhile is not marked.
    alice.mark_verified(&bob_user, &number).await?;

    for conversation in alice.conversations().await? {
        println!(
            "{}: {} unread, last: {:?}",
            conversation.peer,
            conversation.unread,
            conversation.last_message.map(|m| m.body)
        );
    }
    alice.delete_account().await?;
    bob.delete_account().await?;
    Ok(())
}
