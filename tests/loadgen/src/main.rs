//! `umbra-loadgen`: drives umbra-relay with many senders and recipients and
//! measures it beside a bare WebSocket forwarder in the same run, so every
//! figure is a ratio taken under the same machine load (docs/OPERATIONS.md,
//! "Capacity planning"; docs/BENCHMARKS.md for recorded runs).
//!
//! One run: start the bare forwarder (this binary, `bare` subcommand, its
//! own process), drive it, stop it; start the relay node(s) (the
//! `--relay-bin` binary on SQLite or on a fresh PostgreSQL database),
//! register the accounts through real OPAQUE, drive them the same way,
//! optionally measure logins, stop. Relay and forwarder CPU and RSS come
//! from /proc/<pid>, the generator's own from /proc/self.
//!
//! Must never: run the key-stretching function on the relay (it never does:
//! OPAQUE's stretch is the client's; this generator uses the cheap
//! `Stretch::Cheap`, which costs only itself), print a token or password,
//! or report a figure without the baseline measured in the same run.

mod bare;
mod consts;
mod drive;
mod nodes;
mod procfs;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use crate::drive::{DriveConfig, Mode};
use crate::nodes::{Nodes, Target};
use crate::report::{PhaseReport, Table};

/// Load generator for umbra-relay with a bare-forwarder baseline.
#[derive(Debug, Parser)]
#[command(name = "umbra-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Serve the bare forwarder only (the baseline the run starts itself).
    Bare {
        /// Address to listen on; port 0 picks one (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

/// Which storage backend the relay nodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// One SQLite file in a temporary data directory (one node only).
    Sqlite,
    /// A fresh database on the server in DATABASE_URL, dropped afterwards.
    Postgres,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Targets {
    /// The bare forwarder, then the relay (the default: ratios).
    Both,
    /// The relay only.
    Relay,
    /// The bare forwarder only.
    Bare,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The umbra-relay binary [default: umbra-relay next to this binary].
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// The relay's storage backend.
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    store: Store,
    /// PostgreSQL admin URL (a role that may CREATE DATABASE) for --store postgres.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Relay nodes sharing one PostgreSQL database; connections are spread
    /// over them round-robin, so most messages cross nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Targets::Both)]
    targets: Targets,
    /// Sending connections (one account each).
    #[arg(long, default_value_t = 32)]
    senders: usize,
    /// Receiving connections (one account each); messages go round-robin.
    #[arg(long, default_value_t = 16)]
    recipients: usize,
    /// Bytes per sealed envelope (the first 8 carry the send time).
    #[arg(long, default_value_t = 420)]
    envelope_bytes: usize,
    /// Envelopes per Send request.
    #[arg(long, default_value_t = 1)]
    per_send: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop at this many messages/s over all senders (sends on a fixed
    /// schedule whatever the replies; latency from the scheduled time). 0:
    /// closed loop (each sender waits for its reply).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// After each closed-loop phase, an open-loop phase at these fractions
    /// of the acked rate it reached (e.g. 0.5 for half saturation).
    #[arg(long, value_delimiter = ',')]
    open_at: Vec<f64>,
    /// A recipient acks after this many deliveries...
    #[arg(long, default_value_t = 32)]
    ack_batch: usize,
    /// ...or when nothing more arrived for this many milliseconds.
    #[arg(long, default_value_t = 2)]
    ack_idle_ms: u64,
    /// Concurrent clients of the login phase (OPAQUE logins against the
    /// relay); 0 skips it.
    #[arg(long, default_value_t = 0)]
    login_clients: usize,
    /// Repeat the whole run this many times (bare and relay alternate).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Run the bare forwarder and the relay under valgrind's callgrind,
    /// instrumented only during the measured window, and report
    /// instructions per message: stable where CPU time is not (a busy
    /// machine). Everything runs about 50 times slower, so pair it with a
    /// modest --rate; --open-at is skipped.
    #[arg(long)]
    callgrind: bool,
    /// Exit with an error if any phase had errors or acked nothing (for a
    /// CI smoke run).
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Some(Sub::Bare { listen }) => runtime.block_on(bare::serve(listen)),
        None => runtime.block_on(run(cli.run)),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.senders == 0 || args.recipients == 0 {
        bail!("--senders and --recipients must be at least 1");
    }
    if args.envelope_bytes < consts::STAMP_BYTES {
        bail!(
            "--envelope-bytes must be at least {} (the send time)",
            consts::STAMP_BYTES
        );
    }
    if args.nodes == 0 || (args.nodes > 1 && args.store == Store::Sqlite) {
        bail!("--nodes above 1 needs --store postgres (an SQLite relay is one node)");
    }
    let relay_bin = match &args.relay_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("locating this binary's directory")?
            .join("umbra-relay"),
    };
    let base = DriveConfig {
        senders: args.senders,
        recipients: args.recipients,
        envelope_bytes: args.envelope_bytes,
        per_send: args.per_send.max(1),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        mode: if args.rate > 0.0 {
            Mode::Open { rate: args.rate }
        } else {
            Mode::Closed
        },
        ack_batch: args.ack_batch.max(1),
        ack_idle: Duration::from_millis(args.ack_idle_ms),
    };
    println!("{}", report::machine_line());
    println!(
        "load: {} senders, {} recipients, {} B envelopes, {} per Send, {}, {:.0} s measured after {:.0} s warm-up; relay {} x{} ({})",
        base.senders,
        base.recipients,
        base.envelope_bytes,
        base.per_send,
        base.mode,
        args.duration,
        args.warmup,
        match args.store {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        },
        args.nodes,
        relay_bin.display()
    );
    let open_at: Vec<f64> = if args.callgrind {
        Vec::new()
    } else {
        args.open_at.clone()
    };
    let mut table = Table::default();
    for round in 0..args.repeat.max(1) {
        if args.targets != Targets::Relay {
            let nodes = Nodes::start_bare(&base, args.callgrind).await?;
            measure(&mut table, round, "bare", &nodes, &base, &open_at).await?;
            let counts = nodes.stop_counting();
            table.instructions(round, "bare", counts.first().copied());
        }
        if args.targets != Targets::Bare {
            let target = Target {
                relay_bin: relay_bin.clone(),
                store: args.store,
                database_url: args.database_url.clone(),
                nodes: args.nodes,
            };
            let nodes = Nodes::start_relay(&target, &base, args.callgrind).await?;
            let label = format!("relay {}-{}n", target.store_name(), args.nodes);
            measure(&mut table, round, &label, &nodes, &base, &open_at).await?;
            let logins = if args.login_clients > 0 {
                let phase = setup::login_phase(&nodes, &base, args.login_clients).await?;
                println!("{}", phase.line(round, &label));
                Some(phase.accepted)
            } else {
                None
            };
            let counts = nodes.stop_counting();
            table.instructions(round, &label, counts.first().copied());
            if let (Some(logins), Some(count)) = (logins, counts.get(1)) {
                println!(
                    "[{round}] {label} logins: {count} instructions in the window = {:.0} per login",
                    *count as f64 / logins.max(1) as f64
                );
            }
        }
    }
    println!("{}", table.summary());
    if args.check {
        if let Some(failed) = table.failed_phase() {
            bail!("--check: phase {failed} had errors or acked nothing");
        }
    }
    Ok(())
}

/// One closed- or open-loop phase on `nodes`, then the open-loop phases at
/// fractions of what the closed loop reached.
async fn measure(
    table: &mut Table,
    round: usize,
    label: &str,
    nodes: &Nodes,
    base: &DriveConfig,
    open_at: &[f64],
) -> anyhow::Result<()> {
    let phase = drive::phase(nodes, base).await?;
    println!("{}", phase.line(round, label));
    let saturated = phase.acked_per_sec();
    table.add(round, label, phase);
    if matches!(base.mode, Mode::Closed) {
        for fraction in open_at {
            let config = DriveConfig {
                mode: Mode::Open {
                    rate: saturated * fraction,
                },
                ..base.clone()
            };
            let phase: PhaseReport = drive::phase(nodes, &config).await?;
            let label = format!("{label} @{fraction}");
            println!("{}", phase.line(round, &label));
            table.add(round, &label, phase);
        }
    }
    Ok(())
}
