//! A throwaway PostgreSQL cluster for the suites that take the database
//! away or freeze parts of it (relay_fault_postgres, relay_listener_liveness):
//! `initdb` into a temporary directory, `pg_ctl` on a free port, run as the
//! `postgres` user when the suite runs as root. The shared PostgreSQL of the
//! other suites is never touched.
//!
//! Must never: signal or stop a PostgreSQL it did not start, or leave its
//! cluster running or frozen (it is thawed and stopped on drop).
// Each suite uses some of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use rustix::process::{kill_process, Pid, Signal};

/// A PostgreSQL cluster of this test alone.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server binaries as `postgres` (they refuse to run as root).
    as_postgres: bool,
}

impl Cluster {
    /// `initdb` + start, or why it cannot be done here.
    pub fn create() -> Result<Cluster, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .max()
            .ok_or("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot chown the cluster directory to postgres".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    pub fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs one server binary (as `postgres` when needed); `Err` has its output.
    pub fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("running {tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let sockets = self.dir.path().display().to_string();
        let options = format!(
            "-p {} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100",
            self.port
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
    }

    /// `pg_ctl stop -m immediate`: every backend is killed, nothing is
    /// flushed beyond what was committed; the next start runs recovery.
    pub fn stop_immediately(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
    }

    /// The postmaster's pid (from `postmaster.pid`).
    pub fn postmaster(&self) -> Result<i32, String> {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let text =
            std::fs::read_to_string(&pid_file).map_err(|e| format!("postmaster.pid: {e}"))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| "postmaster.pid names no process".to_string())
    }

    /// Sends `signal` to the postmaster, then to each of its children (every
    /// backend calls `setsid`, so there is no one process group to signal).
    /// The postmaster first: once it is stopped it forks no new child that
    /// the scan could miss. `Stop` freezes the server with every connection
    /// open, as a network partition or a stalled host looks from the relay
    /// (no reset, no answer).
    pub fn signal_all(&self, signal: Signal) -> Result<(), String> {
        let postmaster = self.postmaster()?;
        let pid = |raw: i32| Pid::from_raw(raw).ok_or_else(|| format!("bad pid {raw}"));
        kill_process(pid(postmaster)?, signal)
            .map_err(|e| format!("signalling PostgreSQL: {e}"))?;
        let entries = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
        for entry in entries.filter_map(Result::ok) {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue; // exited meanwhile
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if parent == Some(postmaster) {
                // A child that exits meanwhile is no error.
                let _ = kill_process(pid(child)?, signal);
            }
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The last lines of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A test that failed mid-freeze must not leave a stopped server.
        let _ = self.signal_all(Signal::Cont);
        let _ = self.stop_immediately();
    }
}

/// The cluster, or `None` after reporting the skip (a panic in CI).
pub fn cluster_or_skip(test: &str) -> Option<Cluster> {
    match Cluster::create() {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            assert!(
                !umbra_test_support::in_ci(),
                "{test}: a throwaway PostgreSQL cluster is required in CI, but {reason}"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
            None
        }
    }
}
