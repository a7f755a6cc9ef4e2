//! Everything a command needs before it can talk to client-core: the relay
//! URL, the prepared data directory, the password source and the output
//! format, resolved once from the command line and environment.
//!
//! This module must never keep a password beyond the call that uses it: each
//! password is read, handed to client-core and dropped (zeroized) at once.

use std::path::PathBuf;

use anyhow::Context as _;
use umbra_client_core::{Client, ClientConfig};

use crate::cli::Cli;
use crate::data_dir;
use crate::exit_status::Failure;
use crate::output::Printer;
use crate::password::{Password, PasswordSource, Purpose};

pub struct Session {
    pub server: String,
    pub data_dir: PathBuf,
    password: PasswordSource,
    pub json: bool,
}

impl Session {
    /// Resolves and prepares (creates 0700) the data directory.
    pub fn prepare(cli: &Cli) -> Result<Self, Failure> {
        let data_dir = data_dir::resolve(cli.data_dir.as_deref())?;
        data_dir::prepare(&data_dir)?;
        Ok(Self {
            server: cli.server.clone(),
            data_dir,
            password: PasswordSource::from_environment(cli.password_command.as_deref())?,
            json: cli.json,
        })
    }

    pub fn config(&self) -> ClientConfig {
        ClientConfig::new(self.server.clone(), self.data_dir.clone())
    }

    pub fn printer(&self) -> Printer<std::io::Stdout> {
        Printer::stdout(self.json)
    }

    pub fn password(&self, label: &str, purpose: Purpose) -> Result<Password, Failure> {
        self.password.read(label, purpose)
    }

    /// Unlocks the local store of an account set up earlier (no network).
    pub async fn open_client(&self) -> anyhow::Result<Client> {
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
        let password = self.password(&label, Purpose::Existing)?;
        let client = Client::open(self.config(), &password)
            .await
            .context("unlocking the local store")?;
        Ok(client)
    }
}
