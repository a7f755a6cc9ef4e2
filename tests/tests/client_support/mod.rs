//! What every `umbra` client suite shares: a relay started with limits that
//! never throttle a suite's own commands, named users driving real `umbra`
//! processes, and strict readers of the `--json` output documented in
//! docs/CLI.md (one JSON object a line, `drained` last on `receive`).
//!
//! Must never: hide a failed command (every helper that expects success
//! asserts the exit status and shows stderr), accept output it does not
//! understand (a non-JSON line under `--json` fails the test), or wait without
//! a bound (every `receive`/`send` passes `--timeout`, and the harness kills
//! any `umbra` that outlives `CLI_RUN_LIMIT`).

#![allow(dead_code)] // each suite uses a different part of this module

use std::cell::RefCell;
use std::process::Output;

use serde_json::Value;
use umbra_e2e::{Cli, Relay, StoreKind};

/// Seconds `receive` may wait for the relay to report the queue empty. The
/// relay answers in well under a second; this only bounds a broken one.
pub const RECEIVE_TIMEOUT: &str = "5";

/// Seconds `send` may wait for the relay to accept a message.
pub const SEND_TIMEOUT: &str = "10";

/// Relay arguments: authentication and bundle-fetch rate limits far above
/// what a suite does, because every `umbra` command may log in and fetch
/// keys, and rate limiting has its own tests in the relay crate.
pub const RELAY_ARGS: &[&str] = &[
    "--auth-per-ip-per-minute",
    "100000",
    "--auth-per-username-per-minute",
    "100000",
    "--logins-per-username-per-minute",
    "100000",
    "--bundle-fetches-per-minute",
    "100000",
];

/// Exit codes from docs/CLI.md.
pub mod exit {
    pub const USER_ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NETWORK: i32 = 3;
    pub const UNTRUSTED_KEY: i32 = 4;
    pub const AUTH: i32 = 6;
}

/// A relay on embedded SQLite in a fresh directory.
pub fn start_relay() -> Relay {
    Relay::start_with(StoreKind::Sqlite, RELAY_ARGS)
}

/// [`start_relay`] with the relay's quarantine of released names off, for
/// tests of the client's own defence when someone else registers a name its
/// contact gave up (the quarantine would otherwise refuse that for 30 days).
pub fn start_relay_without_name_quarantine() -> Relay {
    let mut args = RELAY_ARGS.to_vec();
    args.extend(["--name-quarantine-days", "0"]);
    Relay::start_with(StoreKind::Sqlite, &args)
}

/// One person: a username and the `umbra` data directory that is their device.
pub struct User {
    pub name: String,
    pub cli: Cli,
    /// `message` records printed by commands other than `receive`: `send`
    /// prints what its connection delivers meanwhile (client-core stores and
    /// acknowledges it, so `receive` will not show it again). They belong to
    /// the user's next [`User::receive`].
    shown_early: RefCell<Vec<Received>>,
    /// Everything every `umbra` run of this user printed (stdout, stderr),
    /// for suites that search the output for secrets.
    transcript: RefCell<Vec<u8>>,
}

/// A text message as `receive --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub id: String,
    pub body: String,
}

/// Everything one `receive --json` printed, already checked for shape.
#[derive(Debug)]
pub struct Inbox {
    /// The `message` records, in the order printed.
    pub messages: Vec<Received>,
    /// Every record, `drained` included, in the order printed.
    pub records: Vec<Value>,
}

impl Inbox {
    /// Records of one type.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.records.iter().filter(|r| r["type"] == kind).collect()
    }
}

impl User {
    /// Registers `name` with `password` in a fresh data directory.
    pub fn register(relay: &Relay, name: &str, password: &str) -> User {
        let user = User::unregistered(relay, name, password);
        let records = user.json_ok(&["register", name]);
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "done" && r["action"] == "register"),
            "register {name} printed no done/register record: {records:?}"
        );
        user
    }

    /// A fresh data directory for `name` that has not registered or logged in.
    pub fn unregistered(relay: &Relay, name: &str, password: &str) -> User {
        User {
            name: name.to_string(),
            cli: Cli::new(relay, password),
            shown_early: RefCell::new(Vec::new()),
            transcript: RefCell::new(Vec::new()),
        }
    }

    /// Runs `umbra ARGS` and returns what happened, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.keep(Outcome::from(self.cli.run(args)))
    }

    /// Everything this user's `umbra` runs have printed so far.
    pub fn transcript(&self) -> Vec<u8> {
        self.transcript.borrow().clone()
    }

    fn keep(&self, outcome: Outcome) -> Outcome {
        let mut transcript = self.transcript.borrow_mut();
        transcript.extend_from_slice(outcome.stdout.as_bytes());
        transcript.extend_from_slice(outcome.stderr.as_bytes());
        drop(transcript);
        outcome
    }

    /// Runs `umbra ARGS` feeding `stdin`.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Outcome {
        self.keep(Outcome::from(self.cli.run_with_stdin(args, Some(stdin))))
    }

    /// Runs `umbra --json ARGS`, asserts success and returns the records.
    pub fn json_ok(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        out.assert_success(&full);
        json_records(&out.stdout, &full)
    }

    /// Runs `umbra --json ARGS` and returns the records whatever the exit
    /// status (`verify` of a changed key prints its record and exits 4).
    pub fn json_run_any(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        json_records(&self.run(&full).stdout, &full)
    }

    /// `send TO BODY`: asserts the relay accepted it and returns the
    /// message id from the `sent` record.
    pub fn send(&self, to: &str, body: &str) -> String {
        let records = self.json_ok(&["send", to, body, "--timeout", SEND_TIMEOUT]);
        self.keep_early_messages(&records);
        sent_id(&records, to)
    }

    /// `send TO -` with `stdin` as the message.
    pub fn send_stdin(&self, to: &str, stdin: &str) -> String {
        let args = ["--json", "send", to, "-", "--timeout", SEND_TIMEOUT];
        let out = self.run_with_stdin(&args, stdin);
        out.assert_success(&args);
        let records = json_records(&out.stdout, &args);
        self.keep_early_messages(&records);
        sent_id(&records, to)
    }

    fn keep_early_messages(&self, records: &[Value]) {
        self.shown_early
            .borrow_mut()
            .extend(records.iter().filter_map(message_of));
    }

    /// `receive --json --timeout 5`, checked against the documented shape:
    /// every line a JSON object with a `type`, exactly one `drained` record,
    /// last, counting the `message` records. The returned messages are those
    /// printed by earlier `send`s since the last receive, then this one's.
    pub fn receive(&self) -> Inbox {
        let args = ["receive", "--json", "--timeout", RECEIVE_TIMEOUT];
        let out = self.run(&args);
        out.assert_success(&args);
        let records = json_records(&out.stdout, &args);
        let drained: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r["type"] == "drained")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            drained,
            vec![records.len() - 1],
            "{} receive: expected exactly one drained record, last; got {records:?}",
            self.name
        );
        let printed: Vec<Received> = records.iter().filter_map(message_of).collect();
        assert_eq!(
            records[records.len() - 1]["count"].as_u64(),
            Some(printed.len() as u64),
            "{} receive: drained count disagrees with the messages printed: {records:?}",
            self.name
        );
        let mut messages = std::mem::take(&mut *self.shown_early.borrow_mut());
        messages.extend(printed);
        Inbox { messages, records }
    }

    /// `verify CONTACT --json`: the safety number and trust, asserting exit 0.
    pub fn safety_number(&self, contact: &str) -> (String, String) {
        let records = self.json_ok(&["verify", contact]);
        safety_record(&records, contact)
    }

    /// `contacts --json` as (username, trust) pairs, in the order printed.
    pub fn contacts(&self) -> Vec<(String, String)> {
        self.json_ok(&["contacts"])
            .iter()
            .filter(|r| r["type"] == "contact")
            .map(|r| (string_field(r, "username"), string_field(r, "trust")))
            .collect()
    }

    /// The trust `contacts` shows for one contact, if listed.
    pub fn trust_in(&self, contact: &str) -> Option<String> {
        self.contacts()
            .into_iter()
            .find(|(name, _)| name == contact)
            .map(|(_, trust)| trust)
    }
}

/// The `safety_number` record for `contact` among `records`: (number, trust).
pub fn safety_record(records: &[Value], contact: &str) -> (String, String) {
    let record = records
        .iter()
        .find(|r| r["type"] == "safety_number")
        .unwrap_or_else(|| panic!("verify {contact} printed no safety_number record: {records:?}"));
    assert_eq!(
        record["contact"], contact,
        "safety number for whom? {record}"
    );
    let number = string_field(record, "safety_number");
    assert_safety_number_format(&number);
    (number, string_field(record, "trust"))
}

/// 60 digits in 12 groups of 5, separated by single spaces.
pub fn assert_safety_number_format(number: &str) {
    let groups: Vec<&str> = number.split(' ').collect();
    assert!(
        groups.len() == 12
            && groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())),
        "safety number is not 12 space-separated groups of 5 digits: {number:?}"
    );
}

/// Message ids are 32 lower-case hex digits (docs/CLI.md).
pub fn assert_message_id(id: &str) {
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "message id is not 32 lower-case hex digits: {id:?}"
    );
}

/// A `message` record as [`Received`], its id checked for format.
fn message_of(record: &Value) -> Option<Received> {
    if record["type"] != "message" {
        return None;
    }
    let message = Received {
        from: string_field(record, "from"),
        id: string_field(record, "id"),
        body: string_field(record, "body"),
    };
    assert_message_id(&message.id);
    Some(message)
}

fn sent_id(records: &[Value], to: &str) -> String {
    let sent: Vec<&Value> = records.iter().filter(|r| r["type"] == "sent").collect();
    assert_eq!(
        sent.len(),
        1,
        "send to {to}: expected one sent record: {records:?}"
    );
    assert_eq!(sent[0]["to"], to, "sent record names the wrong recipient");
    let id = string_field(sent[0], "id");
    assert_message_id(&id);
    id
}

/// A string field of a record, failing the test if it is missing.
pub fn string_field(record: &Value, field: &str) -> String {
    record[field]
        .as_str()
        .unwrap_or_else(|| panic!("record has no string {field:?}: {record}"))
        .to_string()
}

/// Parses `--json` output: every line one JSON object with a string `type`.
pub fn json_records(stdout: &str, args: &[&str]) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("umbra {args:?}: stdout line is not JSON ({e}): {line:?}")
            });
            assert!(
                value.is_object() && value["type"].is_string(),
                "umbra {args:?}: JSON line without a type: {line}"
            );
            value
        })
        .collect()
}

/// One finished `umbra` process.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Self {
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Outcome {
    pub fn assert_success(&self, args: &[&str]) {
        assert_eq!(
            self.code,
            Some(0),
            "umbra {args:?} failed; stderr: {}",
            self.stderr
        );
    }

    /// Asserts the documented failure shape: exit `code`, nothing on stdout,
    /// and exactly one line on stderr starting `umbra: `. Returns that line.
    pub fn assert_failure(&self, code: i32, args: &[&str]) -> String {
        assert_eq!(
            self.code,
            Some(code),
            "umbra {args:?}: expected exit {code}; stdout {:?}, stderr {:?}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stdout, "",
            "umbra {args:?}: a failed command printed on stdout"
        );
        self.single_error_line(args)
    }

    /// Asserts stderr is exactly one line starting `umbra: `, and returns it.
    pub fn single_error_line(&self, args: &[&str]) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("umbra: "),
            "umbra {args:?}: expected one `umbra: ...` line on stderr, got {:?}",
            self.stderr
        );
        lines[0].to_string()
    }
}
