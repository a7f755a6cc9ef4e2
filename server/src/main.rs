//! `umbra-relay`: parse the command line, set up logging, open the store,
//! and serve until SIGTERM/Ctrl-C — or apply migrations and exit.
//!
//! The first line on stdout is always where the relay listens and which
//! store it uses (tests and scripts read it to learn the port). Must never
//! print or log a database password, token or message.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use umbra_relay::config::{Cli, Command, RelayConfig};
use umbra_relay::store::migrate_only;

/// Exit status for a configuration the relay refuses (bad flag value, file,
/// log filter): the operator's to fix before retrying.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure to start or serve (store, key file, socket).
const EXIT_FAILURE: u8 = 1;

/// Startup errors end in one line on stderr, `error: <what>: <cause>`,
/// never a backtrace or a Debug dump.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match RelayConfig::load(cli.settings).context("invalid configuration") {
        Ok(config) => config,
        Err(error) => return fail(&error, EXIT_CONFIG),
    };
    if let Err(error) = umbra_relay::logging::init(&config.log_level) {
        return fail(&anyhow::Error::new(error), EXIT_CONFIG);
    }
    match run(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error, EXIT_FAILURE),
    }
}

fn fail(error: &anyhow::Error, code: u8) -> ExitCode {
    // `{:#}` is the whole cause chain on one line.
    eprintln!("error: {error:#}");
    ExitCode::from(code)
}

fn run(command: Option<Command>, config: RelayConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Some(Command::Migrate) => {
                migrate_only(config.database_url(), &config.data_dir)
                    .await
                    .context("migration failed")?;
                println!(
                    "umbra-relay: migrations applied ({})",
                    config.store_description()
                );
                Ok(())
            }
            Some(Command::Audit) => audit(config).await,
            Some(Command::Serve) | None => serve(config).await,
        }
    })
}

/// `umbra-relay audit`: reads every epoch and version of the configured
/// database and checks them (`umbra_relay::kt::audit`).
async fn audit(config: RelayConfig) -> anyhow::Result<()> {
    use umbra_relay::kt::audit;
    let store = umbra_relay::app::open_store(&config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.store_description()))?;
    let keys = store
        .kt_public_keys()
        .await
        .context("cannot read the key-transparency keys")?
        .ok_or(audit::AuditError::NoKeys)?;
    let (directory_key, vrf_key) = audit::parse_keys(&keys)?;
    let (versions, epochs) = store
        .kt_since(None)
        .await
        .context("cannot read the key-transparency history")?;
    let summary = audit::audit(&directory_key, &versions, &epochs)
        .context("the key-transparency history is NOT honest")?;
    println!(
        "umbra-relay audit: ok: {} epochs, {} versions, {} labels; directory key {}, VRF key {} \
         (compare them with the keys clients pin)",
        summary.epochs,
        summary.versions,
        summary.labels,
        hex::encode(directory_key.to_bytes()),
        hex::encode(vrf_key.to_bytes()),
    );
    Ok(())
}

async fn serve(config: RelayConfig) -> anyhow::Result<()> {
    let store = umbra_relay::app::open_store(&config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.store_description()))?;
    let relay = umbra_relay::app::start(&config, store, true)
        .await
        .context("cannot start the relay")?;
    if !config.is_loopback() && config.tls.is_none() {
        tracing::warn!(
            listen = %relay.local_addr,
            "listening on a non-loopback address without TLS: terminate TLS in front of the relay or pass --tls-cert/--tls-key"
        );
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "umbra-relay listening on {} (store: {})",
        relay.url(),
        config.store_description()
    )?;
    // The second line is for the person who just ran the README's first
    // command: how to reach this relay from the client.
    writeln!(
        stdout,
        "chat through it: umbra --server {} --data-dir DIR register NAME (then `umbra chat`; README has the walkthrough)",
        relay.url()
    )?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(url = %relay.url(), store = %config.store_description(), "relay started");
    relay.wait().await;
    Ok(())
}
