//! What the daemon suites share: starting and stopping a real `umbra
//! daemon`, running commands that have no password source (so they can
//! only succeed through it), and a raw JSON-RPC connection to its socket.
//!
//! Must never: wait without a bound (every wait has a deadline that fails
//! the test, far beyond what the work takes), or leave a process running
//! after a test (each child is killed and reaped on drop).

#![allow(dead_code)] // each suite uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::Value;
use umbra_e2e::Cli;

use crate::client_support::{Outcome, User};

/// The daemon's socket inside the data directory (docs/CLI.md).
pub const SOCKET_FILE: &str = "umbra-daemon.sock";

/// A bound on every wait in this suite; only a hang reaches it.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Exit status for an unusable (here: daemon-held) data directory.
pub const LOCAL_DATA: i32 = 7;

/// A running `umbra daemon`.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    _stderr: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts `umbra daemon` for `user` and waits until it serves.
    pub fn start(user: &User) -> Daemon {
        let mut child = user
            .cli
            .command(&["daemon"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn umbra daemon");
        let lines = lines_of(child.stderr.take().expect("stderr"));
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(HANG_GUARD) {
                Ok(line) if line.contains("serving on") => break,
                Ok(line) => seen.push(line),
                Err(_) => panic!("umbra daemon never started serving; stderr: {seen:?}"),
            }
        }
        Daemon {
            child,
            socket: user.cli.data_dir().join(SOCKET_FILE),
            _stderr: lines,
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(mut self) -> Option<i32> {
        signal(self.child.id(), "TERM");
        self.child.wait().expect("wait for the daemon").code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child killed and reaped if the test fails before waiting for it.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Each line of `stream`, read on a thread.
pub fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `umbra ARGS` for `cli` with no password source at all and a short lock
/// wait: it can only succeed through a daemon.
pub fn without_password(cli: &Cli, args: &[&str]) -> Command {
    let mut command = cli.command(args);
    command
        .env_remove("UMBRA_PASSWORD_FILE")
        .env("UMBRA_LOCK_WAIT_SECS", "1")
        .stdin(Stdio::null());
    command
}

/// Runs a command to completion, killing it if it outlives the guard.
pub fn run(mut command: Command) -> Outcome {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umbra");
    let pid = child.id();
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let step = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while !finished.load(Ordering::SeqCst) && waited < HANG_GUARD {
                std::thread::sleep(step);
                waited += step;
            }
            if !finished.load(Ordering::SeqCst) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        })
    };
    let out = child.wait_with_output().expect("wait for umbra");
    finished.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    Outcome::from(out)
}

impl Daemon {
    /// Waits for the daemon to exit on its own (after `logout` or
    /// `account delete`) and returns its status.
    pub fn wait_for_exit(mut self) -> Option<i32> {
        let waited = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                return status.code();
            }
            assert!(
                waited.elapsed() < HANG_GUARD,
                "the daemon did not stop on its own"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw JSON-RPC connection to the socket.
    pub fn connect(&self) -> Rpc {
        let stream = UnixStream::connect(&self.socket).expect("connect to the daemon");
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Rpc { stream, reader }
    }
}

/// One connection to the daemon's socket, one line at a time.
pub struct Rpc {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Rpc {
    /// Writes `line` (a `\n` is added).
    pub fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
        self.stream.write_all(b"\n").unwrap();
    }

    /// The next line from the daemon, parsed.
    pub fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("the daemon answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line:?}"))
    }

    /// Sends `line` and returns the next line.
    pub fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.answer()
    }
}
