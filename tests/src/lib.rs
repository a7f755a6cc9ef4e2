//! Harness for umbra's end-to-end suites: real `umbra-relay` and `umbra`
//! processes, built from this checkout, talking over loopback.
//!
//! Binaries are built through cargo (escargot) the first time a suite asks
//! for them, so a suite can never run against a stale binary. That build
//! reuses every third-party crate `cargo build` and `cargo test` compiled:
//! the same features (umbra-workspace-hack) and, because [`binary`] drops
//! the variables cargo sets for a test process, the same build-script
//! environment as a build from the shell. At most umbra's own crates are
//! compiled once more, because `cargo test --workspace` turns on features
//! that dev-dependencies ask for (umbra-protocol's `low-level-api`) in the
//! one copy of each crate it builds; after `cargo build` it compiles nothing. Every relay runs
//! in its own temporary data directory (SQLite) or its own fresh PostgreSQL
//! database, on a port the kernel picks.
//!
//! Must never: talk to anything but 127.0.0.1, leave a child process running
//! after a test (processes are killed on drop), or skip the PostgreSQL suites
//! silently (their databases come from umbra-test-support, whose one rule
//! fails in CI and prints and counts every skip elsewhere).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The one wire client of umbra's suites, kept in umbra-test-support so the
/// relay's in-process tests use the same code; re-exported under its old
/// path so every e2e suite keeps `umbra_e2e::wire_client::...`.
pub use umbra_test_support::wire_client;
pub mod ws_proxy;

/// Whether `name` is one of the variables cargo sets for a test process
/// (they describe the umbra-e2e package). Build scripts such as ring's and
/// rustix's declare `rerun-if-env-changed` on several of them
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...), so a nested `cargo build`
/// that inherited them saw "changed" values and recompiled ring, rustls and
/// everything above them, and the next build from the shell did it again.
pub fn is_set_by_cargo_for_tests(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
    ];
    const NAMES: &[&str] = &[
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// Path of a workspace binary, built (or confirmed up to date) by cargo once
/// per test process, in the environment a build from the shell would have.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    static RELAY: OnceLock<PathBuf> = OnceLock::new();
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    let cell = match bin {
        "umbra-relay" => &RELAY,
        "umbra" => &CLIENT,
        other => panic!("unknown binary {other}"),
    };
    cell.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut build = escargot::CargoBuild::new()
            .manifest_path(manifest)
            .package(package)
            .bin(bin);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(is_set_by_cargo_for_tests) {
                build = build.env_remove(name);
            }
        }
        build
            .run()
            .unwrap_or_else(|e| panic!("building {bin} failed: {e}"))
            .path()
            .to_path_buf()
    })
    .clone()
}

/// Which store a relay under test uses.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// Embedded SQLite in the relay's data directory (the default).
    Sqlite,
    /// PostgreSQL at this URL (a fresh database made for the test).
    Postgres(String),
}

/// A running `umbra-relay` process.
pub struct Relay {
    child: Option<Child>,
    /// Address it listens on.
    pub addr: SocketAddr,
    data_dir: PathBuf,
    store: StoreKind,
    extra_args: Vec<String>,
    log_level: String,
    /// Everything the relay printed (stdout and stderr), across restarts.
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _dir_guard: Option<tempfile::TempDir>,
}

/// The request deadline every relay under test gets unless its suite names
/// one (see `Relay::spawn`).
const HARNESS_REQUEST_DEADLINE_MS: &str = "10000";

/// Arguments that give a relay under test the production request deadline
/// (PROTOCOL.md 9.6), for the suites that test the deadline itself.
pub const PRODUCTION_REQUEST_DEADLINE: [&str; 2] = ["--request-deadline-ms", "1500"];

impl Relay {
    /// Starts a relay on embedded SQLite in a fresh temporary directory.
    pub fn start() -> Relay {
        Self::start_with(StoreKind::Sqlite, &[])
    }

    /// Starts a relay with the given store and extra command-line arguments.
    pub fn start_with(store: StoreKind, extra_args: &[&str]) -> Relay {
        Self::start_logging(store, extra_args, "warn")
    }

    /// [`Relay::start_with`], logging at `level` (a `RUST_LOG` filter), for
    /// suites that search what the relay prints ([`Relay::output`]).
    pub fn start_logging(store: StoreKind, extra_args: &[&str], level: &str) -> Relay {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        let mut relay = Relay {
            child: None,
            addr: "127.0.0.1:0".parse().expect("literal address"),
            data_dir,
            store,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log_level: level.to_owned(),
            output: Default::default(),
            _dir_guard: Some(dir),
        };
        relay.spawn();
        relay
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary("umbra-relay", "umbra-relay"));
        // A CI machine runs dozens of these relays and one PostgreSQL on two
        // cores, where a COMMIT can take longer than the relay's 1.5 s
        // request deadline (seen: a LoginFinish answered "may have been
        // carried out"), so suites get a generous deadline unless they ask
        // for one; the suites about the deadline pass the production value
        // ([`PRODUCTION_REQUEST_DEADLINE`]).
        if !self.extra_args.iter().any(|a| a == "--request-deadline-ms") {
            cmd.arg("--request-deadline-ms")
                .arg(HARNESS_REQUEST_DEADLINE_MS);
        }
        // The first start lets the kernel pick a port; a restart binds the
        // same address again so clients configured with the relay's URL (and
        // suites holding it) keep working across the restart, as they would
        // against a production relay.
        cmd.arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let StoreKind::Postgres(url) = &self.store {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().expect("spawn umbra-relay");
        // Stderr (the logs) is kept for `output` and still shown, so a
        // failing test shows what the relay said.
        let stderr = child.stderr.take().expect("piped stderr");
        let kept = self.output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if let Ok(mut out) = kept.lock() {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("umbra-relay printed nothing")
            .expect("read relay stdout");
        // "umbra-relay listening on http://127.0.0.1:PORT (store: ...)"
        let addr = first
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([' ', '/']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from umbra-relay: {first:?}"));
        // Keep draining stdout so the relay never blocks on a full pipe.
        let kept = self.output.clone();
        if let Ok(mut out) = kept.lock() {
            out.extend_from_slice(first.as_bytes());
            out.push(b'\n');
        }
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut out) = kept.lock() {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
        });
        self.addr = addr;
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT`, what `umbra --server` takes.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/v1/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Everything the relay has printed so far, on stdout and stderr, over
    /// all its runs.
    pub fn output(&self) -> Vec<u8> {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The running process's id (`None` after [`Relay::crash`] or
    /// [`Relay::stop`] until it is started again), for suites that look at
    /// the process itself (its sockets, its CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The relay's data directory (holds `umbra.db` on SQLite).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the relay with SIGTERM (graceful shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the relay without warning (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the relay again on the same data directory and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.crash();
    }
}

/// One `umbra` identity: its own data directory and password file.
pub struct Cli {
    /// The relay URL passed as `--server`.
    pub server: String,
    data_dir: tempfile::TempDir,
    password_file: PathBuf,
}

impl Cli {
    /// A fresh identity talking to `relay`, with `password` in its password file.
    pub fn new(relay: &Relay, password: &str) -> Cli {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let password_file = data_dir.path().join("..").join(format!(
            "pw-{}",
            data_dir
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x")
        ));
        // 0600 as a careful user would have it: `umbra` warns on stderr about
        // a password file others can read, which would pollute every command.
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&password_file)
                .expect("password file")
        };
        writeln!(f, "{password}").expect("write password");
        Cli {
            server: relay.http_url(),
            data_dir,
            password_file,
        }
    }

    /// The client's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Replaces the password in this client's password file (after
    /// `password change`, as a user's script would), keeping it 0600.
    pub fn set_password(&self, password: &str) {
        std::fs::write(&self.password_file, format!("{password}\n"))
            .expect("rewrite password file");
    }

    /// The `umbra --server URL --data-dir DIR ARGS...` command, not yet
    /// started, for a suite that must control the process itself (kill it
    /// mid-command). Its standard streams are the caller's to set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("umbra-cli", "umbra"));
        command
            .arg("--server")
            .arg(&self.server)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(args)
            .env("UMBRA_PASSWORD_FILE", &self.password_file)
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `umbra --server URL --data-dir DIR ARGS...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    /// Like [`Cli::run`], feeding `stdin` to the process.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with_env(args, stdin, &[])
    }

    /// Like [`Cli::run_with_stdin`], with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut child = Command::new(binary("umbra-cli", "umbra"))
            .envs(env.iter().copied())
            .arg("--server")
            .arg(&self.server)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(args)
            .env("UMBRA_PASSWORD_FILE", &self.password_file)
            .env("NO_COLOR", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn umbra");
        // Output is drained on threads while this thread watches the clock,
        // so a chatty child never blocks on a full pipe and a hung one
        // cannot hang the suite.
        let stdout = child.stdout.take().map(drain_on_thread);
        let stderr = child.stderr.take().map(drain_on_thread);
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A command that exits without reading all of stdin is the
            // product's business, judged by its exit status; not a harness panic.
            match pipe.write_all(input.as_bytes()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => panic!("writing stdin of umbra {args:?}: {e}"),
            }
            // Dropping the pipe closes it: the child sees end of input.
        }
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait().expect("wait for umbra") {
                Some(status) => break status,
                None if started.elapsed() > CLI_RUN_LIMIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("umbra {args:?} still running after {CLI_RUN_LIMIT:?}; killed it");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Output {
            status,
            stdout: collect(stdout),
            stderr: collect(stderr),
        }
    }

    /// Runs a command and asserts it exited 0, returning its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "umbra {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.password_file);
    }
}

/// Longest any single `umbra` command may run before the harness kills it
/// and fails the test. Far above every `--timeout` a suite passes, so only a
/// hung client trips it.
pub const CLI_RUN_LIMIT: Duration = Duration::from_secs(120);

fn drain_on_thread<R: std::io::Read + Send + 'static>(
    mut pipe: R,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// The first file under `dir` (recursively) whose bytes contain `needle`.
///
/// Panics if `dir` or anything under it cannot be read: a search that
/// skipped what it could not open would report an unreadable directory as
/// clean. A file that vanished between listing and reading (SQLite removes
/// its `-wal`/`-shm` files on close) is not an error.
pub fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    scan_files(dir, needle).unwrap_or_else(|e| panic!("cannot search {}: {e}", dir.display()))
}

/// [`any_file_contains`], reporting unreadable entries as an error.
pub fn scan_files(dir: &Path, needle: &[u8]) -> std::io::Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry?.path();
        let kind = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta.file_type(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            if let Some(hit) = scan_files(&path, needle)? {
                return Ok(Some(hit));
            }
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return Ok(Some(path));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            }
        }
    }
    Ok(None)
}
