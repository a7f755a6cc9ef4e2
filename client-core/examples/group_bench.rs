//! Group fan-out figures for docs/BENCHMARKS.md, against a real relay in
//! this process (SQLite in a temporary directory):
//!
//! - the time to send one message to a group of `N` members (default
//!   1,000): the first send, which also distributes our sender key to the
//!   `N - 1` others over their pairwise sessions, and a steady-state send;
//! - the time to remove one member, and the send after it (our sender key
//!   rotated: a new key distributed pairwise to the `N - 2` left);
//! - the bytes on the wire (the sum of the `Send` frames' encoded sizes)
//!   of one message to a 100-member group, beside 100 separate 1:1 sends of
//!   the same text.
//!
//! ```sh
//! cargo run --release -p umbra-client-core --example group_bench -- 1000
//! ```
//!
//! Members are real accounts (registered, keys published) whose clients
//! are shut down once registered: their envelopes wait in the relay's
//! queues. Sessions with them are made while the group is built, so the
//! figures are the steady state of a client that knows its group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use umbra_client_core::store::{ClientStore, MemoryStore};
use umbra_client_core::{Client, ClientConfig, KdfParams, PeerRef};
use umbra_protocol::wire::{
    encode_client, AccountId, Address, ClientFrame, OutgoingEnvelope, Request,
};
use umbra_relay::config::{RelayConfig, Settings};

const TEXT: &str = "one message to the whole group, a line of ordinary chat";

fn config(url: &str) -> ClientConfig {
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests())
}

async fn register(url: &str, name: &str) -> Client {
    Client::register(config(url), name, "pw-of-bench")
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"))
}

/// Bytes of one `Send` frame carrying one envelope of `len` bytes (the
/// request id encoded at its longest, as the group figures count it).
fn one_to_one_frame(len: usize) -> usize {
    encode_client(&ClientFrame {
        request_id: u64::MAX,
        request: Request::Send {
            messages: vec![OutgoingEnvelope {
                to: Address::primary(AccountId::from_bytes([7; 16])),
                envelope: vec![0; len],
            }],
        },
    })
    .expect("encodes")
    .len()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let budget = Some(1_000_000);
    let settings = Settings {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(dir.path().to_path_buf()),
        auth_per_ip_per_minute: budget,
        auth_per_username_per_minute: budget,
        logins_per_username_per_minute: budget,
        bundle_fetches_per_minute: budget,
        username_resolves_per_minute: budget,
        sender_bytes_per_hour: Some(u64::MAX / 2),
        max_connections_per_address: Some(100_000),
        ..Settings::default()
    };
    let relay_config = RelayConfig::resolve(settings)?;
    let store = umbra_relay::store::open(None, dir.path()).await?;
    let relay = umbra_relay::app::start(&relay_config, store.clone(), false).await?;
    let url = relay.url();

    let started = Instant::now();
    let alice = register(&url, "alice").await;
    let mut members: Vec<PeerRef> = Vec::new();
    // Registered a few at a time (each is an OPAQUE run and a key upload).
    let mut names = (1..n).map(|i| format!("m{i:04}"));
    loop {
        let batch: Vec<String> = names.by_ref().take(8).collect();
        if batch.is_empty() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for name in batch.clone() {
            let url = url.clone();
            tasks.spawn(async move { register(&url, &name).await.shutdown().await });
        }
        while tasks.join_next().await.is_some() {}
        for name in batch {
            members.push(name.parse()?);
        }
    }
    eprintln!("registered {n} accounts in {:?}", started.elapsed());

    let started = Instant::now();
    let big = alice.create_group("big", &members).await?.group;
    eprintln!("built the {n}-member group in {:?}", started.elapsed());

    let t = Instant::now();
    let first = alice.send_group_text(&big, TEXT).await?;
    let first_time = t.elapsed();
    let t = Instant::now();
    let steady = alice.send_group_text(&big, TEXT).await?;
    let steady_time = t.elapsed();
    let t = Instant::now();
    alice.remove_member(&big, &members[0]).await?;
    let remove_time = t.elapsed();
    let t = Instant::now();
    let rotated = alice.send_group_text(&big, TEXT).await?;
    let rotated_time = t.elapsed();
    for report in [&first, &steady, &rotated] {
        assert_eq!(report.failed().count(), 0, "every member reached");
    }
    println!("members: {n}");
    println!(
        "first send (distributes the sender key to {}): {:.1} ms, {} frame bytes",
        n - 1,
        ms(first_time),
        first.frame_bytes
    );
    println!(
        "steady-state send: {:.1} ms, {} frame bytes",
        ms(steady_time),
        steady.frame_bytes
    );
    println!(
        "remove one member (the change to {} members): {:.1} ms",
        n - 1,
        ms(remove_time)
    );
    println!(
        "first send after the removal (new sender key to {}): {:.1} ms, {} frame bytes",
        n - 2,
        ms(rotated_time),
        rotated.frame_bytes
    );

    // Bytes on the wire: 100 members (us and 99 others).
    let hundred: Vec<PeerRef> = members[1..100.min(members.len())].to_vec();
    let small = alice.create_group("hundred", &hundred).await?.group;
    alice.send_group_text(&small, TEXT).await?;
    let t = Instant::now();
    let group_send = alice.send_group_text(&small, TEXT).await?;
    let group_time = t.elapsed();
    alice.flush_outbox(Duration::from_secs(60)).await?;
    // The same text 1:1 to each: one `Send` frame each, as the outbox pump
    // sends them. Their sizes are read back from the relay's queues.
    let mut accounts = Vec::new();
    let mut one_to_one_sends = Vec::new();
    for peer in &hundred {
        let PeerRef::Name(name) = peer else {
            unreachable!("members are named")
        };
        let account = umbra_protocol::wire::AccountId::from_bytes(
            *alice
                .contacts()
                .await?
                .iter()
                .find(|c| &c.username == name)
                .expect("a contact")
                .account_id
                .as_bytes(),
        );
        let queued = store
            .fetch_after(Address::primary(account), 0, 100_000, now_secs())
            .await?;
        accounts.push((account, queued.last().map(|m| m.seq).unwrap_or(0)));
        one_to_one_sends.push(name.clone());
    }
    // The baseline, timed like the group send: each 1:1 message encrypted
    // and stored, then all handed to the relay.
    let t = Instant::now();
    for name in &one_to_one_sends {
        alice.send_text(name, TEXT).await?;
    }
    alice.flush_outbox(Duration::from_secs(60)).await?;
    let pairwise_time = t.elapsed();
    let mut pairwise = 0;
    for (account, after) in accounts {
        for message in store
            .fetch_after(Address::primary(account), after, 100, now_secs())
            .await?
        {
            pairwise += one_to_one_frame(message.envelope.len());
        }
    }
    println!(
        "one message to {} members: group fan-out {} bytes in Send frames, {:.1} ms; {} separate 1:1 sends {} bytes, {:.1} ms",
        hundred.len(),
        group_send.frame_bytes,
        ms(group_time),
        hundred.len(),
        pairwise,
        ms(pairwise_time)
    );
    relay.shutdown();
    relay.wait().await;
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
