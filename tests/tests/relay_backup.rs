//! The account backup over HTTP (docs/PROTOCOL.md §11.13) against a real
//! `umbra-relay` on SQLite and PostgreSQL: a sealed backup round-trips with
//! its `seq`; an older or equal-but-different `seq` is refused with `409`
//! and the stored `seq`, and the stored backup stays; requests without a
//! valid token are refused; over-size, non-bucket and malformed bodies are
//! refused and nothing is stored; writes are rate limited per account;
//! deleting the account deletes the backup; and the relay's database holds
//! exactly the sealed bytes, never a canary from the sealed plaintext.
//!
//! Must never: write to the relay's store, or wait without a bound.

mod relay_backup_support;
mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_backup_support::{
    bearer, get, http, outside_only, put, sealed_backup, sealed_padded, WAIT,
};
use relay_support::{on_every_store, Backend, StoreView, TableLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_e2e::wire_client::Session;
use umbra_protocol::backup::{MAX_BACKUP_BYTES, MIN_BACKUP_BYTES};
use umbra_protocol::wire::{AccountId, Request, Response};

on_every_store!(
    a_sealed_backup_round_trips_and_only_ciphertext_is_stored,
    an_older_or_conflicting_seq_is_refused_and_the_newest_stays,
    requests_without_a_valid_token_are_refused,
    bad_bodies_are_refused_and_nothing_is_stored,
    backup_writes_are_rate_limited_per_account,
    the_largest_backup_round_trips,
    a_stalled_upload_is_abandoned_and_nothing_is_stored,
    a_put_the_database_does_not_answer_is_refused_with_a_retry,
    deleting_the_account_deletes_its_backup,
);

/// The account's stored backup rows: `(seq, bytes)`.
async fn stored(store: &StoreView, account: AccountId) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
    use sqlx::Row;
    let rows = match store {
        StoreView::Sqlite(pool) => {
            sqlx::query("SELECT seq, bytes FROM account_backups WHERE account_id = ?1")
                .bind(account.as_bytes().as_slice())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        }
        StoreView::Postgres(pool) => {
            sqlx::query("SELECT seq, bytes FROM account_backups WHERE account_id = $1")
                .bind(account.as_bytes().as_slice())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        }
    };
    Ok(rows)
}

/// Rows anywhere in the store whose text or byte columns contain `needle`.
async fn anywhere(store: &StoreView, needle: &str) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            let hits = if column.is_bytes() {
                store.rows_with_bytes(&column, needle.as_bytes()).await?
            } else if column.is_text() {
                store.rows_with_text_containing(&column, needle).await?
            } else {
                0
            };
            if hits > 0 {
                found.push(format!("{table}.{}", column.name));
            }
        }
    }
    Ok(found)
}

async fn a_sealed_backup_round_trips_and_only_ciphertext_is_stored(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let none = get(&relay, &alice.token).await?;
    ensure!(none.status == 404, "GET before any PUT: {}", none.status);

    let canary = "canary-backup-7f3a91";
    let sealed = sealed_backup(alice.account, 1, canary)?;
    ensure!(sealed.len() == MIN_BACKUP_BYTES, "a small backup is 16 KiB");
    let stored_answer = put(&relay, &alice.token, &sealed).await?;
    ensure!(
        stored_answer.status == 204 && stored_answer.seq() == Some(1),
        "PUT seq 1: {} seq {:?}",
        stored_answer.status,
        stored_answer.seq()
    );
    let back = get(&relay, &alice.token).await?;
    ensure!(back.status == 200, "GET: {}", back.status);
    ensure!(back.seq() == Some(1), "GET seq header {:?}", back.seq());
    ensure!(back.body == sealed, "GET returns the sealed bytes exactly");

    // A bigger one (a second bucket) replaces it.
    let bigger = sealed_padded(alice.account, 2, canary, 20)?;
    ensure!(
        bigger.len() == 2 * MIN_BACKUP_BYTES,
        "{} bytes",
        bigger.len()
    );
    let replaced = put(&relay, &alice.token, &bigger).await?;
    ensure!(
        replaced.status == 204 && replaced.seq() == Some(2),
        "PUT seq 2: {}",
        replaced.status
    );
    let back = get(&relay, &alice.token).await?;
    ensure!(
        back.seq() == Some(2) && back.body == bigger,
        "GET returns seq 2"
    );

    let store = backend.store(&relay).await?;
    let rows = stored(&store, alice.account).await?;
    ensure!(
        rows == [(2, bigger.clone())],
        "the store holds exactly the sealed bytes of seq 2"
    );
    let leaks = anywhere(&store, canary).await?;
    ensure!(
        leaks.is_empty(),
        "the canary is in the relay's store: {leaks:?}"
    );
    store.close().await;
    Ok(())
}

async fn an_older_or_conflicting_seq_is_refused_and_the_newest_stays(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let five = sealed_backup(alice.account, 5, "five")?;
    ensure!(
        put(&relay, &alice.token, &five).await?.status == 204,
        "seq 5 stored"
    );
    // The same bytes again: a retried upload, answered as stored.
    let repeat = put(&relay, &alice.token, &five).await?;
    ensure!(
        repeat.status == 204 && repeat.seq() == Some(5),
        "repeat: {}",
        repeat.status
    );
    for (seq, what) in [(4, "an older seq"), (5, "the same seq, other bytes")] {
        let refused = put(
            &relay,
            &alice.token,
            &sealed_backup(alice.account, seq, "x")?,
        )
        .await?;
        ensure!(
            refused.status == 409 && refused.seq() == Some(5),
            "{what}: expected 409 with seq 5, got {} seq {:?}",
            refused.status,
            refused.seq()
        );
    }
    let back = get(&relay, &alice.token).await?;
    ensure!(
        back.seq() == Some(5) && back.body == five,
        "the newest backup stays"
    );
    Ok(())
}

async fn requests_without_a_valid_token_are_refused(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let sealed = sealed_backup(alice.account, 1, "x")?;
    let forged = format!("Bearer {}", "ab".repeat(32));
    for method in ["PUT", "GET", "DELETE"] {
        for auth in [
            None,
            Some(forged.clone()),
            Some("Basic YWxpY2U6cHc=".to_string()),
        ] {
            let body = (method == "PUT").then_some(sealed.as_slice());
            let answer = http(relay.addr, method, auth.clone(), body, None).await?;
            ensure!(
                answer.status == 401,
                "{method} with {auth:?}: {}",
                answer.status
            );
        }
    }
    let store = backend.store(&relay).await?;
    ensure!(store.count("account_backups").await? == 0, "nothing stored");
    store.close().await;
    Ok(())
}

async fn bad_bodies_are_refused_and_nothing_is_stored(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let auth = Some(format!("Bearer {}", bearer(&alice.token)));
    let sealed = sealed_backup(alice.account, 1, "x")?;

    // Declared over 16 MiB: refused before any of it is read.
    let huge = http(relay.addr, "PUT", auth.clone(), Some(&[]), Some(32 << 20)).await?;
    ensure!(
        huge.status == 413,
        "a 32 MiB Content-Length: {}",
        huge.status
    );
    // Not a bucket size.
    let odd = put(&relay, &alice.token, &sealed[..sealed.len() - 1]).await?;
    ensure!(
        odd.status == 400,
        "a length one short of a bucket: {}",
        odd.status
    );
    // A bucket of bytes that is not a sealed backup (version 2).
    let mut wrong_version = sealed.clone();
    wrong_version[0] = 2;
    let refused = put(&relay, &alice.token, &wrong_version).await?;
    ensure!(refused.status == 400, "version 2: {}", refused.status);
    let text = String::from_utf8_lossy(&refused.body);
    ensure!(
        text.contains("version"),
        "the refusal names the version: {text:?}"
    );
    // A body shorter than it declared, then the client's side ends: the
    // relay answers 400 or closes without an answer, and stores nothing.
    let mut stream =
        tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(relay.addr)).await??;
    let head = format!(
        "PUT /v1/backup HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n",
        relay.addr,
        bearer(&alice.token),
        sealed.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&sealed[..1000]).await?;
    stream.shutdown().await?;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .context("the relay must end a request whose body stopped short")?;
    let text = String::from_utf8_lossy(&response);
    ensure!(
        response.is_empty() || text.starts_with("HTTP/1.1 400"),
        "a short body: {:?}",
        text.lines().next()
    );
    // No Content-Length at all.
    let no_length = http(relay.addr, "PUT", auth, None, None).await?;
    ensure!(
        no_length.status == 411,
        "no Content-Length: {}",
        no_length.status
    );

    let store = backend.store(&relay).await?;
    ensure!(
        store.count("account_backups").await? == 0,
        "nothing was stored"
    );
    store.close().await;
    ensure!(
        get(&relay, &alice.token).await?.status == 404,
        "and nothing is served"
    );
    Ok(())
}

async fn backup_writes_are_rate_limited_per_account(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let bob = Session::sign_up(&relay.ws_url(), "bob", "bob's password").await?;
    // The budget is 10 writes a minute, all available at once.
    for seq in 1..=10 {
        let answer = put(
            &relay,
            &alice.token,
            &sealed_backup(alice.account, seq, "x")?,
        )
        .await?;
        ensure!(answer.status == 204, "write {seq}: {}", answer.status);
    }
    let refused = put(
        &relay,
        &alice.token,
        &sealed_backup(alice.account, 11, "x")?,
    )
    .await?;
    ensure!(refused.status == 429, "the 11th write: {}", refused.status);
    let wait: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .context("a 429 says when to retry")?;
    ensure!((1..=60).contains(&wait), "Retry-After {wait}");
    ensure!(
        get(&relay, &alice.token).await?.seq() == Some(10),
        "reads have their own budget"
    );
    let other = put(&relay, &bob.token, &sealed_backup(bob.account, 1, "x")?).await?;
    ensure!(
        other.status == 204,
        "another account is not limited: {}",
        other.status
    );
    Ok(())
}

async fn deleting_the_account_deletes_its_backup(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let alices = sealed_backup(alice.account, 1, "alice")?;
    ensure!(
        put(&relay, &alice.token, &alices).await?.status == 204,
        "alice's backup"
    );
    ensure!(
        put(&relay, &bob.token, &sealed_backup(bob.account, 1, "bob")?)
            .await?
            .status
            == 204,
        "bob's"
    );

    // DELETE removes only the caller's backup.
    let deleted = http(
        relay.addr,
        "DELETE",
        Some(format!("Bearer {}", bearer(&bob.token))),
        None,
        None,
    )
    .await?;
    ensure!(deleted.status == 204, "DELETE: {}", deleted.status);
    ensure!(
        get(&relay, &bob.token).await?.status == 404,
        "bob's backup is gone"
    );
    let again = http(
        relay.addr,
        "DELETE",
        Some(format!("Bearer {}", bearer(&bob.token))),
        None,
        None,
    )
    .await?;
    ensure!(again.status == 404, "a second DELETE: {}", again.status);
    ensure!(
        get(&relay, &alice.token).await?.body == alices,
        "alice's stays"
    );

    // Account deletion takes the backup with it.
    ensure!(
        put(&relay, &bob.token, &sealed_backup(bob.account, 2, "bob")?)
            .await?
            .status
            == 204,
        "bob again"
    );
    let store = backend.store(&relay).await?;
    ensure!(
        stored(&store, bob.account).await?.len() == 1,
        "bob's backup is stored"
    );
    let reply = bob.client.request(Request::DeleteAccount).await?;
    ensure!(reply == Response::Ok, "DeleteAccount answered {reply:?}");
    if bob.client.read_until_closed(WAIT).await.is_err() {
        bail!("the relay must close the connection after DeleteAccount");
    }
    ensure!(
        stored(&store, bob.account).await?.is_empty(),
        "bob's backup went with the account"
    );
    ensure!(
        stored(&store, alice.account).await?.len() == 1,
        "alice's did not"
    );
    store.close().await;
    ensure!(
        get(&relay, &bob.token).await?.status == 401,
        "a deleted account's token"
    );
    Ok(())
}

async fn the_largest_backup_round_trips(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let largest = outside_only(MAX_BACKUP_BYTES, 1);
    let answer = put(&relay, &alice.token, &largest).await?;
    ensure!(answer.status == 204, "a 16 MiB backup: {}", answer.status);
    let back = get(&relay, &alice.token).await?;
    ensure!(
        back.status == 200 && back.seq() == Some(1),
        "GET: {}",
        back.status
    );
    ensure!(back.body == largest, "all 16 MiB come back unchanged");
    Ok(())
}

async fn a_stalled_upload_is_abandoned_and_nothing_is_stored(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend
        .start_relay(&["--blob-idle-timeout-secs", "1"])
        .await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let sealed = sealed_backup(alice.account, 1, "x")?;
    // Declares 16 KiB, sends 1 000 bytes, then keeps the connection open
    // without sending more: the relay must give up on its own.
    let mut stream =
        tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(relay.addr)).await??;
    let head = format!(
        "PUT /v1/backup HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n",
        relay.addr,
        bearer(&alice.token),
        sealed.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&sealed[..1000]).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .context("the relay must end a stalled upload")??;
    let text = String::from_utf8_lossy(&response);
    ensure!(
        text.starts_with("HTTP/1.1 408"),
        "a stalled upload: {:?}",
        text.lines().next()
    );
    let store = backend.store(&relay).await?;
    ensure!(
        store.count("account_backups").await? == 0,
        "nothing was stored"
    );
    store.close().await;
    Ok(())
}

/// Backstop for the relay's answer while the backup table is locked: its
/// deadline is 4 s (PROTOCOL.md 11.13); a hang is caught, no time asserted.
const LOCKED_REPLY_BOUND: Duration = Duration::from_secs(15);

async fn a_put_the_database_does_not_answer_is_refused_with_a_retry(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let sealed = sealed_backup(alice.account, 1, "x")?;
    // The suite holds the write lock the relay's compare-and-swap needs
    // (PostgreSQL: the backup table only, so the token check still reads;
    // SQLite: the database's one write lock).
    let view = backend.store(&relay).await?;
    let lock = TableLock::take(&view, "account_backups", "EXCLUSIVE").await?;
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(LOCKED_REPLY_BOUND, put(&relay, &alice.token, &sealed))
        .await
        .context("the relay must answer a PUT whose database does not")??;
    println!("answered {} after {:?}", answer.status, started.elapsed());
    ensure!(
        answer.status == 503,
        "a PUT under a held lock: {}",
        answer.status
    );
    ensure!(
        answer.header("retry-after") == Some("1"),
        "a 503 says to retry: {:?}",
        answer.headers
    );
    lock.release().await?;
    view.close().await;
    // The retry is stored (or meets its first attempt's commit as a repeat).
    let retried = put(&relay, &alice.token, &sealed).await?;
    ensure!(retried.status == 204, "the retry: {}", retried.status);
    let back = get(&relay, &alice.token).await?;
    ensure!(
        back.seq() == Some(1) && back.body == sealed,
        "the backup is stored once"
    );
    Ok(())
}
