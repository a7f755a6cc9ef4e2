//! The OPAQUE server setup lives in the relay's key file, never in the
//! database (issue 9 item 10), on SQLite and PostgreSQL: after the first
//! start the database holds no setup and the file is mode 0600; a restarted
//! relay with the same file accepts old logins; a database from an older
//! relay has its setup moved into the file once and deleted; a key file
//! others can read, or another relay's, is refused with one clear line.
//!
//! Must never: pass without showing the scan would find the row it looks
//! for (the fingerprint row is found), or check the file only by name.

mod relay_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{ensure, Context};
use relay_support::{on_every_store, restart, Backend, Column, StoreView};
use umbra_e2e::binary;
use umbra_e2e::wire_client::{Session, WireClient};

on_every_store!(
    the_database_holds_no_setup_and_restarts_keep_logins,
    an_old_databases_setup_moves_into_the_key_file_once,
);

const PASSWORD: &str = "key file canary password 4471";
const KEY_HEADER: &[u8] = b"umbra-relay opaque server setup v1\n";

fn mode(path: &Path) -> anyhow::Result<u32> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("no key file at {}", path.display()))?
        .permissions()
        .mode()
        & 0o777)
}

fn name_column() -> Column {
    Column {
        table: "server_secrets".into(),
        name: "name".into(),
        declared_type: "text".into(),
    }
}

/// Rows of `server_secrets` named `name`.
async fn secrets_named(store: &StoreView, name: &str) -> anyhow::Result<i64> {
    store.rows_with_text(&name_column(), name).await
}

/// Where `backend`'s relays keep the key file.
fn key_path(backend: &Backend, relay: &umbra_e2e::Relay) -> PathBuf {
    backend
        .opaque_key_file()
        .unwrap_or_else(|| relay.data_dir().join("opaque-server-key"))
}

async fn the_database_holds_no_setup_and_restarts_keep_logins(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let path = key_path(&backend, &relay);
    ensure!(mode(&path)? == 0o600, "key file mode {:o}", mode(&path)?);
    let bytes = std::fs::read(&path)?;
    ensure!(bytes.starts_with(KEY_HEADER), "key file has no header");

    let store = backend.store(&relay).await?;
    ensure!(
        secrets_named(&store, "opaque_key_fingerprint").await? == 1,
        "the scan does not find the fingerprint row, so it cannot find a setup row either"
    );
    ensure!(
        secrets_named(&store, "opaque_server_setup").await? == 0,
        "the database holds the OPAQUE server setup"
    );
    // The fingerprint, and the key-transparency public keys (PROTOCOL.md
    // 16.13: public, bound so a node with another KT key file refuses).
    ensure!(
        secrets_named(&store, "kt_public_keys").await? == 1,
        "the database does not record the key-transparency public keys"
    );
    ensure!(
        store.count("server_secrets").await? == 2,
        "server_secrets holds more than the fingerprint and the KT public keys"
    );
    let setup = &bytes[KEY_HEADER.len()..];
    // The KT key file beside it: its directory seed and VRF scalar are in
    // no row either.
    let kt = std::fs::read(path.with_file_name("kt-directory-key"))?;
    let kt_header: &[u8] = b"umbra-relay key transparency keys v1\n";
    ensure!(
        kt.starts_with(kt_header) && kt.len() == kt_header.len() + 64,
        "KT key file format"
    );
    ensure!(
        mode(&path.with_file_name("kt-directory-key"))? == 0o600,
        "KT key file mode"
    );
    let (seed, scalar) = kt[kt_header.len()..].split_at(32);
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            if column.is_bytes() {
                for (what, secret) in [
                    ("setup", &setup[..32]),
                    ("KT seed", seed),
                    ("VRF scalar", scalar),
                ] {
                    let found = store.rows_with_bytes(&column, secret).await?;
                    ensure!(found == 0, "{what} bytes in {table}.{}", column.name);
                }
            }
        }
    }
    store.close().await;

    Session::sign_up(&relay.ws_url(), "zqkeyalice", PASSWORD).await?;
    let relay = restart(relay).await?;
    let mut client = WireClient::connect(&relay.ws_url()).await?;
    client
        .login("zqkeyalice", PASSWORD)
        .await
        .context("a restarted relay with the same key file refuses the old password")?;
    client.close().await;
    Ok(())
}

async fn an_old_databases_setup_moves_into_the_key_file_once(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let path = key_path(&backend, &relay);
    Session::sign_up(&relay.ws_url(), "zqkeybob", PASSWORD).await?;
    let setup = std::fs::read(&path)?[KEY_HEADER.len()..].to_vec();
    // Make it look like an older relay's data: the setup in the database,
    // no key file.
    let relay = tokio::task::spawn_blocking(move || {
        let mut relay = relay;
        relay.stop();
        relay
    })
    .await?;
    let store = backend.store(&relay).await?;
    store
        .execute_with_bytes(
            "INSERT INTO server_secrets (name, value) VALUES ('opaque_server_setup', $1)",
            &setup,
        )
        .await?;
    std::fs::remove_file(&path)?;
    let relay = restart(relay).await?;

    ensure!(mode(&path)? == 0o600, "migrated key file mode");
    ensure!(
        std::fs::read(&path)?[KEY_HEADER.len()..] == setup[..],
        "the key file does not hold the database's setup"
    );
    ensure!(
        secrets_named(&store, "opaque_server_setup").await? == 0,
        "the setup is still in the database after the move"
    );
    store.close().await;
    let mut client = WireClient::connect(&relay.ws_url()).await?;
    client
        .login("zqkeybob", PASSWORD)
        .await
        .context("the migrated setup does not accept the old password")?;
    client.close().await;
    Ok(())
}

fn relay_once(data_dir: &Path) -> Output {
    Command::new(binary("umbra-relay", "umbra-relay"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run umbra-relay")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_others_can_read_or_from_another_relay_is_refused() -> anyhow::Result<()> {
    let relay = Backend::sqlite().start_relay(&[]).await?;
    let data_dir = relay.data_dir().to_path_buf();
    let path = data_dir.join("opaque-server-key");
    let relay = tokio::task::spawn_blocking(move || {
        let mut relay = relay;
        relay.stop();
        relay
    })
    .await?;

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    let dir = data_dir.clone();
    let out = tokio::task::spawn_blocking(move || relay_once(&dir)).await?;
    ensure!(out.status.code() == Some(1), "0644 key file: {out:?}");
    let line = stderr(&out);
    ensure!(
        line.lines().count() == 1
            && line.contains("chmod 600")
            && line.contains("opaque-server-key"),
        "0644 key file: {line}"
    );

    // Another relay's (valid) key file for this database.
    let other = Backend::sqlite().start_relay(&[]).await?;
    std::fs::copy(other.data_dir().join("opaque-server-key"), &path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let dir = data_dir.clone();
    let out = tokio::task::spawn_blocking(move || relay_once(&dir)).await?;
    ensure!(out.status.code() == Some(1), "foreign key file: {out:?}");
    ensure!(
        stderr(&out).contains("not the one this database"),
        "foreign key file: {}",
        stderr(&out)
    );
    drop(other);
    drop(relay);
    Ok(())
}
