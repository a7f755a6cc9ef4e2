//! The processes under load: the bare forwarder, or one or more relay
//! nodes (SQLite, or PostgreSQL in a fresh database they share), with the
//! accounts the drive uses on them.
//!
//! Must never: leave a process or a database behind (both are stopped or
//! dropped with [`Nodes`]), or start relay nodes that do not share one
//! OPAQUE key file (their logins would fail on every node but the first).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use umbra_test_support::PgTestDb;

use crate::consts::{RELAY_BENCH_FLAGS, START_TIMEOUT};
use crate::drive::DriveConfig;
use crate::setup::{self, Identity};
use crate::Store;

/// How to start relay nodes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The umbra-relay binary.
    pub relay_bin: PathBuf,
    /// Its backend.
    pub store: Store,
    /// PostgreSQL admin URL, for [`Store::Postgres`].
    pub database_url: Option<String>,
    /// Nodes on the one database.
    pub nodes: usize,
}

impl Target {
    /// The backend's name in reports.
    pub fn store_name(&self) -> &'static str {
        match self.store {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }
}

/// Running processes and the accounts on them.
pub struct Nodes {
    children: Vec<Child>,
    /// `ws://.../v1/ws` of each process.
    pub urls: Vec<String>,
    /// Sending accounts (sender `i` connects to `urls[i % n]`).
    pub senders: Vec<Identity>,
    /// Receiving accounts (recipient `j` connects to `urls[j % n]`).
    pub recipients: Vec<Identity>,
    /// Where each process's callgrind profile goes, when run under it.
    callgrind: Vec<PathBuf>,
    _dirs: Vec<tempfile::TempDir>,
    _database: Option<PgTestDb>,
}

/// Runs `program` under callgrind when `profile` names the output file; the
/// window's counts are zeroed at its start and dumped at its end
/// ([`Nodes::instrument`]) into `<profile>.1`.
fn command(program: &std::path::Path, profile: Option<&std::path::Path>) -> Command {
    match profile {
        None => Command::new(program),
        Some(out) => {
            let mut command = Command::new("valgrind");
            command
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(program);
            command
        }
    }
}

impl Nodes {
    /// The bare forwarder, as a process of this binary, with made-up
    /// identities (it checks no token).
    pub async fn start_bare(load: &DriveConfig, callgrind: bool) -> anyhow::Result<Nodes> {
        let exe = std::env::current_exe()?;
        let dir = tempfile::tempdir()?;
        let profile = callgrind.then(|| dir.path().join("callgrind.bare"));
        let mut command = command(&exe, profile.as_deref());
        command.arg("bare");
        let (child, url) = spawn(command).context("starting the bare forwarder")?;
        Ok(Nodes {
            children: vec![child],
            urls: vec![url],
            senders: (0..load.senders).map(|_| Identity::made_up()).collect(),
            recipients: (0..load.recipients).map(|_| Identity::made_up()).collect(),
            callgrind: profile.into_iter().collect(),
            _dirs: vec![dir],
            _database: None,
        })
    }

    /// `target.nodes` relay nodes, then every account registered and logged
    /// in through OPAQUE (each on the node it will use).
    pub async fn start_relay(
        target: &Target,
        load: &DriveConfig,
        callgrind: bool,
    ) -> anyhow::Result<Nodes> {
        let database = match target.store {
            Store::Sqlite => None,
            Store::Postgres => {
                if target.database_url.is_none() {
                    bail!("--store postgres needs --database-url or DATABASE_URL");
                }
                Some(
                    PgTestDb::create("umbra-loadgen")
                        .await
                        .context("no PostgreSQL database for the relay")?,
                )
            }
        };
        let mut nodes = Nodes {
            children: Vec::new(),
            urls: Vec::new(),
            senders: Vec::new(),
            recipients: Vec::new(),
            callgrind: Vec::new(),
            _dirs: Vec::new(),
            _database: None,
        };
        let mut key_file: Option<PathBuf> = None;
        for _ in 0..target.nodes {
            let dir = tempfile::tempdir()?;
            let n = nodes.urls.len();
            let profile = callgrind.then(|| dir.path().join(format!("callgrind.relay{n}")));
            let mut command = command(&target.relay_bin, profile.as_deref());
            nodes.callgrind.extend(profile);
            command
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--data-dir")
                .arg(dir.path())
                .args(RELAY_BENCH_FLAGS)
                .env_remove("DATABASE_URL")
                .env_remove("RUST_LOG");
            if let Some(db) = &database {
                command.arg("--database-url").arg(db.url());
            }
            // The first node creates the OPAQUE key; the others share it.
            if let Some(key) = &key_file {
                command.arg("--opaque-key-file").arg(key);
            }
            let (child, url) = spawn(command)
                .with_context(|| format!("starting {}", target.relay_bin.display()))?;
            key_file.get_or_insert_with(|| dir.path().join("opaque-server-key"));
            nodes.children.push(child);
            nodes.urls.push(url);
            nodes._dirs.push(dir);
        }
        nodes._database = database;
        nodes.senders = setup::register_all(&nodes.urls, "s", load.senders, 0).await?;
        nodes.recipients = setup::register_all(&nodes.urls, "r", load.recipients, 0).await?;
        Ok(nodes)
    }

    /// The URL sender or recipient `i` connects to.
    pub fn url_for(&self, i: usize) -> &str {
        &self.urls[i % self.urls.len()]
    }

    /// Process ids, for /proc.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Zeroes callgrind's counters of every process at the window's start
    /// (`on`) and dumps them at its end, if they run under it.
    pub fn instrument(&self, on: bool) {
        if self.callgrind.is_empty() {
            return;
        }
        for pid in self.pids() {
            let _ = Command::new("callgrind_control")
                .arg(if on { "--zero" } else { "--dump" })
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .status();
        }
    }

    /// Stops every process and returns, per measured window in order, the
    /// instructions callgrind counted in them (summed over nodes), if they
    /// ran under it. Each window's dump is part `<profile>.<n>`, kept in the
    /// working directory for callgrind_annotate.
    pub fn stop_counting(mut self) -> Vec<u64> {
        let files = self.callgrind.clone();
        // The profiles are in the data directories: keep them past `stop`.
        let _dirs = std::mem::take(&mut self._dirs);
        self.stop();
        let mut windows: Vec<u64> = Vec::new();
        for file in files {
            for n in 1.. {
                let mut part = file.clone().into_os_string();
                part.push(format!(".{n}"));
                let Some(count) = instructions_in(std::path::Path::new(&part)) else {
                    break;
                };
                if windows.len() < n {
                    windows.push(0);
                }
                windows[n - 1] += count;
            }
        }
        windows
    }

    /// Stops every process (SIGTERM, then SIGKILL after a few seconds).
    pub fn stop(mut self) {
        for child in &self.children {
            // SAFETY: kill(2) on our own child's pid, which we have not
            // reaped yet, so it cannot name another process.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        // Valgrind writes its profile on exit, which takes a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for child in &mut self.children {
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `command` and reads its first stdout line,
/// `... listening on http://ADDR ...`; returns the child and its
/// WebSocket URL. Later output is drained so the child never blocks.
fn spawn(mut command: Command) -> anyhow::Result<(Child, String)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines.map_while(Result::ok) {}
    });
    let first = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        _ => {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("it printed no listening line (exit status {status:?})");
        }
    };
    let addr = first
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([' ', '/']).next())
        .with_context(|| format!("unexpected first line {first:?}"))?;
    Ok((child, format!("ws://{addr}/v1/ws")))
}

/// The total of one callgrind dump, copied to the working directory.
fn instructions_in(part: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(part).ok()?;
    let name = part.file_name()?.to_owned();
    if std::fs::copy(part, &name).is_ok() {
        eprintln!("callgrind profile of a window: {}", name.to_string_lossy());
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("summary:") || l.starts_with("totals:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
