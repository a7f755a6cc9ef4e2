//! Account deletion against a real relay, on SQLite and PostgreSQL: after
//! `DeleteAccount`, no row of any table in the relay's store still refers to
//! the account (by id or by username; the name quarantine's record of the
//! released name excepted), while other accounts are untouched, and the
//! name, tokens and address are gone.
//!
//! The check reads the store directly and scans every column of every table
//! the schema has, so a table added later is covered without changing this
//! suite.
//!
//! Must never: pass when the scan cannot see the account (it first proves
//! the same scan finds it before deletion).

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend, StoreView};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_e2e::wire_client::{DeviceKeys, Session, WireClient, WireClientError};
use umbra_protocol::wire::{
    AccountId, AccountRef, ErrorCode, OutgoingEnvelope, Request, Response, SendOutcome,
    SessionToken, Username,
};

on_every_store!(deleting_an_account_leaves_no_row_referring_to_it);

const WAIT: Duration = Duration::from_secs(10);

/// Rows per `table.column` that contain `account`'s id bytes or equal its
/// username; only non-zero entries.
async fn references(
    store: &StoreView,
    account: AccountId,
    username: &str,
) -> anyhow::Result<Vec<(String, i64)>> {
    let mut found = Vec::new();
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            let hits = if column.is_bytes() {
                store.rows_with_bytes(&column, account.as_bytes()).await?
            } else if column.is_text() {
                store.rows_with_text(&column, username).await?
            } else {
                0
            };
            if hits > 0 {
                found.push((format!("{}.{}", column.table, column.name), hits));
            }
        }
    }
    Ok(found)
}

/// Uploads a small blob over HTTP as `token`'s account, so the blob tables
/// hold a row for it. Returns the HTTP status code.
async fn upload_blob(
    addr: std::net::SocketAddr,
    token: &SessionToken,
    body: &[u8],
) -> anyhow::Result<u16> {
    upload(addr, "POST /v1/blobs", token, body).await
}

/// `request` (method and path) over HTTP with `body`, as `token`'s account.
/// Returns the HTTP status code.
async fn upload(
    addr: std::net::SocketAddr,
    request: &str,
    token: &SessionToken,
    body: &[u8],
) -> anyhow::Result<u16> {
    let bearer: String = token
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await??;
    let head = format!(
        "{request} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {:?}", text.lines().next()))?;
    Ok(status)
}

async fn deleting_an_account_leaves_no_row_referring_to_it(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;

    // Give bob something in every kind of table: keys, a second token,
    // queued messages (with their counter), a blob, an account backup.
    let keys = DeviceKeys::generate(5);
    bob.client.publish_keys(&keys).await?;
    bob.client.upload_prekeys(&keys).await?;
    let mut spare = WireClient::connect(&url).await?;
    let second_token = spare.login("bob", "bob's password").await?.token;
    spare.close().await;
    let blob_status = upload_blob(relay.addr, &bob.token, &[0x5A; 3000]).await?;
    ensure!(
        (200..300).contains(&blob_status),
        "blob upload answered HTTP {blob_status}"
    );
    // An account backup (the relay reads only its header: version 1, seq 1,
    // a 16 KiB bucket).
    let mut backup = vec![0x6B; 16 * 1024];
    backup[0] = 1;
    backup[1..9].copy_from_slice(&1u64.to_be_bytes());
    let backup_status = upload(relay.addr, "PUT /v1/backup", &bob.token, &backup).await?;
    ensure!(
        backup_status == 204,
        "backup upload answered HTTP {backup_status}"
    );
    bob.client.close().await;
    for n in 0..3 {
        let reply = alice
            .client
            .request_ok(Request::Send {
                messages: vec![OutgoingEnvelope {
                    to: bob.address,
                    envelope: format!("sealed:{n}").into_bytes(),
                }],
            })
            .await?;
        ensure!(
            matches!(&reply, Response::SendResult { results } if matches!(results.as_slice(), [SendOutcome::Accepted { .. }])),
            "queueing for bob: {reply:?}"
        );
    }
    // Alice has rows too, which must survive.
    let alice_keys = DeviceKeys::generate(2);
    alice.client.publish_keys(&alice_keys).await?;
    alice.client.upload_prekeys(&alice_keys).await?;

    let store = backend.store(&relay).await?;
    let before = references(&store, bob.account, "bob").await?;
    let tables_before: Vec<&str> = before
        .iter()
        .map(|(c, _)| c.split('.').next().unwrap_or(""))
        .collect();
    for table in [
        "accounts",
        "tokens",
        "identity_keys",
        "one_time_prekeys",
        "messages",
        "account_backups",
    ] {
        ensure!(
            tables_before.contains(&table),
            "the scan does not find bob in {table} before deletion ({before:?}); it could not detect a leftover"
        );
    }
    let alice_before = references(&store, alice.account, "alice").await?;

    // Delete, from a fresh connection.
    bob.client = bob.reconnect(&url).await?;
    let reply = bob.client.request(Request::DeleteAccount).await?;
    ensure!(reply == Response::Ok, "DeleteAccount answered {reply:?}");
    bob.client
        .read_until_closed(WAIT)
        .await
        .context("the relay must close the connection after DeleteAccount")?;

    // The deletion marks bob's account and name for the next key-
    // transparency epoch (PROTOCOL.md 16.13); that epoch consumes the
    // marks, within about a second.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut after = references(&store, bob.account, "bob").await?;
    while after
        .iter()
        .any(|(column, _)| column.starts_with("kt_pending."))
    {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no epoch consumed the deletion's key-transparency marks: {after:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = references(&store, bob.account, "bob").await?;
    }
    // What may mention bob afterwards: the name quarantine's record that
    // the name "bob" was released (the name and a time, no account id;
    // forgotten when the quarantine ends; OPERATIONS.md "Usernames"), and
    // the directory's published versions of the name "bob", whose values
    // name the account that held it and are kept for good (an append-only
    // history clients hold proofs of; THREAT_MODEL.md "Key transparency,
    // honestly"), if an epoch published bob's name before the deletion.
    // Anything else is a leftover.
    let leftovers: Vec<_> = after
        .iter()
        .filter(|(column, _)| column != "kt_versions.value")
        .cloned()
        .collect();
    ensure!(
        leftovers == [("released_names.username".to_string(), 1)],
        "rows still refer to the deleted account: {after:?}"
    );
    // Alice's rows, but for the directory's: the epoch that consumed bob's
    // marks also published alice (her marks became versions meanwhile).
    let not_directory = |rows: Vec<(String, i64)>| -> Vec<(String, i64)> {
        rows.into_iter()
            .filter(|(column, _)| !column.starts_with("kt_"))
            .collect()
    };
    let alice_after = references(&store, alice.account, "alice").await?;
    let (alice_before, alice_after) = (not_directory(alice_before), not_directory(alice_after));
    ensure!(
        alice_after == alice_before,
        "deleting bob changed alice's rows: {alice_before:?} -> {alice_after:?}"
    );
    store.close().await;

    // Nothing of bob works any more.
    for token in [&bob.token, &second_token] {
        let mut client = WireClient::connect(&url).await?;
        match client.authenticate(token).await {
            Err(WireClientError::Refused {
                code: ErrorCode::AuthFailed,
                ..
            }) => {}
            other => bail!("a deleted account's token: expected AuthFailed, got {other:?}"),
        }
    }
    let mut client = WireClient::connect(&url).await?;
    let attempt = client.login_attempt("bob", "bob's password").await?;
    ensure!(
        matches!(
            attempt.outcome,
            Err(WireClientError::Refused {
                code: ErrorCode::AuthFailed,
                ..
            })
        ),
        "login to a deleted account: expected AuthFailed, got {:?}",
        attempt.outcome
    );
    match alice
        .client
        .request_ok(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: bob.address,
                envelope: b"late".to_vec(),
            }],
        })
        .await?
    {
        Response::SendResult { results }
            if results
                == vec![SendOutcome::Rejected {
                    code: ErrorCode::UnknownRecipient,
                }] => {}
        other => bail!(
            "Send to a deleted account: expected Rejected {{ UnknownRecipient }}, got {other:?}"
        ),
    }
    match alice
        .client
        .request(Request::FetchBundle {
            target: AccountRef::Username(Username::parse("bob")?),
        })
        .await?
    {
        Response::Error {
            code: ErrorCode::UnknownUsername,
            ..
        } => {}
        other => {
            bail!("FetchBundle for a deleted account: expected UnknownUsername, got {other:?}")
        }
    }
    // The name is quarantined (30 days by default): nobody may take it yet.
    let mut newcomer = WireClient::connect(&url).await?;
    match newcomer.register("bob", "another bob").await {
        Err(WireClientError::Refused {
            code: ErrorCode::UsernameTaken,
            ..
        }) => {}
        other => bail!("registering a deleted account's name at once: {other:?}"),
    }
    Ok(())
}
