//! What the relay keeps at rest after a conversation, on SQLite and
//! PostgreSQL: queued envelopes carry no sender (no column for one, and the
//! sender's id in no queued row), sending writes no row naming the sender
//! anywhere (a per-sender total written with the messages would share their
//! transaction id and link them), tokens are stored only as hashes, and the
//! password never reaches the relay in any form.
//!
//! Envelopes here are arbitrary bytes (the relay cannot tell), so "no
//! plaintext at rest" is checked where the relay could leak it by itself:
//! sender identity, tokens, passwords.
//!
//! Must never: pass without first showing the scan finds what it looks for
//! (the recipient's id in the queue).

mod relay_support;

use anyhow::ensure;
use relay_support::{on_every_store, Backend, StoreView};
use umbra_e2e::any_file_contains;
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{OutgoingEnvelope, Request, Response, SendOutcome};

on_every_store!(
    queued_messages_name_no_sender,
    tokens_and_passwords_are_never_stored_in_the_clear,
);

/// Rows of `table` with `needle` in any byte column.
async fn rows_containing(store: &StoreView, table: &str, needle: &[u8]) -> anyhow::Result<i64> {
    let mut total = 0;
    for column in store.columns(table).await? {
        if column.is_bytes() {
            total += store.rows_with_bytes(&column, needle).await?;
        }
    }
    Ok(total)
}

/// Rows holding `needle` in a byte column, per table, over every table.
async fn rows_by_table(
    store: &StoreView,
    needle: &[u8],
) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let mut found = std::collections::BTreeMap::new();
    for table in store.tables().await? {
        let n = rows_containing(store, &table, needle).await?;
        found.insert(table, n);
    }
    Ok(found)
}

/// `table.column` entries anywhere in the store containing `needle`, as a
/// substring of a byte or text value (a name or password embedded in a
/// longer value counts).
async fn anywhere(store: &StoreView, needle: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            if column.is_bytes() && store.rows_with_bytes(&column, needle).await? > 0 {
                found.push(format!("{}.{}", column.table, column.name));
            }
            if column.is_text() {
                if let Ok(text) = std::str::from_utf8(needle) {
                    if store.rows_with_text_containing(&column, text).await? > 0 {
                        found.push(format!("{}.{}", column.table, column.name));
                    }
                }
            }
        }
    }
    Ok(found)
}

async fn queued_messages_name_no_sender(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;
    let store = backend.store(&relay).await?;
    let alice_before = rows_by_table(&store, alice.account.as_bytes()).await?;
    ensure!(
        alice_before.get("accounts") == Some(&1),
        "the scan does not find alice's id in accounts ({alice_before:?}); it could not detect it elsewhere"
    );

    for n in 0..5 {
        let reply = alice
            .client
            .request_ok(Request::Send {
                messages: vec![OutgoingEnvelope {
                    to: bob.address,
                    envelope: format!("sealed envelope {n}").into_bytes(),
                }],
            })
            .await?;
        ensure!(
            matches!(&reply, Response::SendResult { results } if matches!(results.as_slice(), [SendOutcome::Accepted { .. }])),
            "queueing for bob: {reply:?}"
        );
    }

    // Sending wrote nothing naming alice: no sender total, no counter.
    // (The key directory's tables are left out: an epoch published
    // meanwhile turns her registration's marks into versions, 16.13, which
    // sending has no part in.)
    let not_directory = |mut rows: std::collections::BTreeMap<String, i64>| {
        rows.retain(|table, _| !table.starts_with("kt_"));
        rows
    };
    let alice_before = not_directory(alice_before);
    let alice_after = not_directory(rows_by_table(&store, alice.account.as_bytes()).await?);
    ensure!(
        alice_after == alice_before,
        "sending changed rows naming the sender: before {alice_before:?}, after {alice_after:?}"
    );
    ensure!(
        !alice_after.contains_key("sender_budgets"),
        "a sender_budgets table is still in the schema: {alice_after:?}"
    );

    let columns = store.columns("messages").await?;
    let suspicious: Vec<&str> = columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| {
            ["sender", "from", "source", "origin", "author"]
                .iter()
                .any(|s| name.contains(s))
        })
        .collect();
    ensure!(
        suspicious.is_empty(),
        "the messages table has sender-like columns: {suspicious:?}"
    );

    let to_bob = rows_containing(&store, "messages", bob.account.as_bytes()).await?;
    ensure!(
        to_bob == 5,
        "the scan finds bob's id in {to_bob} queued rows, expected 5"
    );
    let from_alice = rows_containing(&store, "messages", alice.account.as_bytes()).await?;
    ensure!(
        from_alice == 0,
        "alice's account id is stored in {from_alice} queued rows addressed to bob"
    );
    let alice_name = anywhere(&store, b"alice").await?;
    ensure!(
        alice_name.iter().any(|c| c == "accounts.username"),
        "the scan does not find alice's username in accounts.username ({alice_name:?}); it could not detect it elsewhere"
    );
    // Besides her account row, only the key directory's mark of her name
    // for the next epoch (its label is the name, PROTOCOL.md 16.1; the
    // epoch consumes it, and the published versions are keyed by the VRF
    // index, not the name).
    ensure!(
        alice_name
            .iter()
            .all(|c| c.starts_with("accounts.") || c == "kt_pending.label"),
        "alice's username is stored outside the accounts table: {alice_name:?}"
    );
    store.close().await;
    Ok(())
}

async fn tokens_and_passwords_are_never_stored_in_the_clear(
    backend: Backend,
) -> anyhow::Result<()> {
    const PASSWORD: &str = "canary-password-7f3a91";
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let carol = Session::sign_up(&url, "carol", PASSWORD).await?;
    let mut spare = WireClient::connect(&url).await?;
    let second = spare.login("carol", PASSWORD).await?.token;
    spare.close().await;

    let store = backend.store(&relay).await?;
    ensure!(
        store.count("tokens").await? >= 2,
        "the tokens table does not hold carol's two tokens"
    );
    for token in [&carol.token, &second] {
        let found = anywhere(&store, token.expose_secret()).await?;
        ensure!(
            found.is_empty(),
            "a session token is stored in the clear in {found:?}"
        );
    }
    let found = anywhere(&store, PASSWORD.as_bytes()).await?;
    ensure!(found.is_empty(), "the password is stored in {found:?}");
    store.close().await;

    // On SQLite the whole data directory (database, WAL, anything else) is
    // checked byte for byte as well.
    if backend.name() == "sqlite" {
        for (what, needle) in [
            ("the password", PASSWORD.as_bytes()),
            ("a session token", carol.token.expose_secret().as_slice()),
            ("a session token", second.expose_secret().as_slice()),
        ] {
            if let Some(file) = any_file_contains(relay.data_dir(), needle) {
                anyhow::bail!("{what} is in {}", file.display());
            }
        }
    }
    Ok(())
}
