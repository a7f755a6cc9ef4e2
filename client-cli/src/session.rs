//! Everything a command needs before it can talk to client-core: the relay
//! URL, the prepared data directory, the password source and the output
//! format, resolved once from the command line and environment.
//!
//! This module must never keep a password beyond the call that uses it: each
//! password is read, handed to client-core and dropped (zeroized) at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::store::DEFAULT_LOCK_WAIT;
use umbra_client_core::{Client, ClientConfig, DataDirLock};

use crate::cli::{Cli, Command};
use crate::data_dir;
use crate::exit_status::Failure;
use crate::output::Printer;
use crate::password::{Password, PasswordSource, Purpose};

pub struct Session {
    pub server: String,
    pub data_dir: PathBuf,
    /// Why there is none is only an error once a password is needed: a
    /// command routed through a daemon needs none.
    password: Result<PasswordSource, String>,
    pub json: bool,
    /// The data directory's one-writer lock, held for the whole command.
    dir_lock: Option<Arc<DataDirLock>>,
    /// The command's `--timeout`, which also bounds each attempt to reach
    /// the relay: a relay that accepts and never answers must not hold a
    /// `send --timeout 3` for client-core's default 15 s.
    connect_timeout: Option<Duration>,
    /// `--kt-directory-key` and `--kt-vrf-key`, decoded.
    kt_pins: Option<umbra_client_core::KtPins>,
}

/// Overrides how long a command waits for another `umbra` using the same
/// data directory (whole seconds; docs/CLI.md).
const LOCK_WAIT_ENV: &str = "UMBRA_LOCK_WAIT_SECS";

/// Refuses a `--server`/`UMBRA_SERVER` client-core could not use, before
/// anything else: otherwise the error surfaces from whatever step first
/// touches the URL (for example "unlocking the local store").
fn check_server_url(url: &str) -> Result<(), Failure> {
    let bad = |why: &str| {
        Failure::user(format!(
            "invalid --server URL {url:?}: {why} (e.g. http://127.0.0.1:7878 or https://relay.example)"
        ))
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected http://, https://, ws:// or wss://"));
    };
    if !matches!(scheme, "http" | "https" | "ws" | "wss") {
        return Err(bad(&format!(
            "the scheme {scheme:?} is not http, https, ws or wss"
        )));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host after the scheme"));
    }
    Ok(())
}

/// The key-transparency keys the user gave, each 32 bytes in hex.
fn kt_pins(cli: &Cli) -> Result<Option<umbra_client_core::KtPins>, Failure> {
    let key = |flag: &str, value: &str| -> Result<[u8; 32], Failure> {
        let bad = || Failure::user(format!("{flag} must be 64 hex digits, not {value:?}"));
        let digits = value.trim().as_bytes();
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(out)
    };
    match (&cli.kt_directory_key, &cli.kt_vrf_key) {
        (Some(d), Some(v)) => Ok(Some(umbra_client_core::KtPins {
            directory_key: key("--kt-directory-key", d)?,
            vrf_key: key("--kt-vrf-key", v)?,
        })),
        (None, None) => Ok(None),
        _ => Err(Failure::user(
            "--kt-directory-key and --kt-vrf-key are given together",
        )),
    }
}

impl Session {
    /// Resolves and prepares (creates 0700) the data directory.
    pub fn prepare(cli: &Cli) -> Result<Self, Failure> {
        check_server_url(&cli.server)?;
        let data_dir = data_dir::resolve(cli.data_dir.as_deref())?;
        data_dir::prepare(&data_dir)?;
        Ok(Self {
            server: cli.server.clone(),
            data_dir,
            password: PasswordSource::from_environment(cli.password_command.as_deref())
                .map_err(|e| e.to_string()),
            json: cli.json,
            dir_lock: None,
            kt_pins: kt_pins(cli)?,
            connect_timeout: match &cli.command {
                Command::Send { timeout, .. } | Command::Receive { timeout, .. } => {
                    Some(Duration::from_secs(*timeout))
                }
                Command::Group(group) => group.timeout().map(Duration::from_secs),
                _ => None,
            },
        })
    }

    /// Takes the data directory's lock for the rest of the process: a second
    /// `umbra` on the same directory would reuse ratchet keys. Waits for a
    /// running one (saying so on stderr after a second), up to 30 s or
    /// `UMBRA_LOCK_WAIT_SECS`, then fails with exit 7.
    pub async fn lock_data_dir(&mut self) -> anyhow::Result<()> {
        let wait = match std::env::var(LOCK_WAIT_ENV) {
            Ok(value) => Duration::from_secs(value.trim().parse().map_err(|_| {
                Failure::user(format!(
                    "{LOCK_WAIT_ENV} must be a whole number of seconds, not {value:?}"
                ))
            })?),
            Err(_) => DEFAULT_LOCK_WAIT,
        };
        let lock = DataDirLock::acquire(&self.data_dir, wait, || {
            eprintln!("umbra: waiting for another umbra using this data dir");
        })
        .await
        .map_err(|e| Failure::local(e.to_string()))?;
        self.dir_lock = Some(Arc::new(lock));
        Ok(())
    }

    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.server.clone(), self.data_dir.clone());
        if let Some(pins) = self.kt_pins {
            config = config.kt_pins(pins);
        }
        if let Some(timeout) = self.connect_timeout {
            config = config.connect_timeout(timeout);
        }
        match &self.dir_lock {
            Some(lock) => config.with_dir_lock(lock.clone()),
            None => config,
        }
    }

    pub fn printer(&self) -> Printer<std::io::Stdout> {
        Printer::stdout(self.json)
    }

    pub fn password(&self, label: &str, purpose: Purpose) -> Result<Password, Failure> {
        match &self.password {
            Ok(source) => source.read(label, purpose),
            Err(why) => Err(Failure::user(why.clone())),
        }
    }

    /// Unlocks the local store of an account set up earlier (no network).
    pub async fn open_client(&self) -> anyhow::Result<Client> {
        self.open_client_with(None).await
    }

    /// [`Session::open_client`] with the password already read (`umbra
    /// daemon --password-stdin`), or from the usual sources when `None`.
    pub async fn open_client_with(&self, given: Option<Password>) -> anyhow::Result<Client> {
        let has_account = Client::has_account(&self.config())
            .await
            .context("reading the local store")?;
        if !has_account {
            return Err(Failure::user(format!(
                "no account in {}: run `umbra register USERNAME` or `umbra login USERNAME` first",
                self.data_dir.display()
            ))
            .into());
        }
        let label = format!("the umbra account in {}", self.data_dir.display());
        let password = match given {
            Some(password) => password,
            None => self.password(&label, Purpose::Existing)?,
        };
        let client = Client::open(self.config(), &password)
            .await
            .context("unlocking the local store")?;
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::check_server_url;

    #[test]
    fn server_urls_client_core_can_use_pass_and_others_are_named() {
        for good in [
            "http://127.0.0.1:7878",
            "https://relay.example/",
            "ws://[::1]:7878/v1/ws",
            "wss://relay.example",
        ] {
            assert!(check_server_url(good).is_ok(), "{good}");
        }
        for bad in [
            "relay.example:7878",
            "ftp://relay.example",
            "http://",
            "https:///x",
        ] {
            let error = check_server_url(bad).expect_err(bad);
            assert!(error.to_string().contains("--server"), "{bad}: {error}");
        }
    }
}
