//! What the group suites share: the `umbra group ...` commands run through
//! the real binary, strict readers of their `--json` records (docs/CLI.md,
//! "group"), group messages as `receive --json` prints them, a running
//! `receive --follow`, and polling with a deadline until every member's
//! client shows what a test waits for.
//!
//! Every reader of a record shape lives here, once, so a suite asserts on
//! behaviour (who is a member, which text arrived where) and the shapes are
//! checked in one place.
//!
//! Must never: treat "not seen yet" as "never arrives" (absence is asserted
//! only after a later marker message sent on the same route has arrived:
//! the relay keeps each recipient's queue in acceptance order), wait without
//! a bound (every wait has a deadline and fails the test when it passes), or
//! accept a record it does not understand where it expects a known one.

#![allow(dead_code)] // each suite uses a different part of this module

pub mod rogue;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client_support::{json_records, string_field, User, RECEIVE_TIMEOUT, SEND_TIMEOUT};

/// How long a suite waits for something every client should see after a
/// few round trips (a change, its welcome, a message). Far above what a
/// loaded two-core machine takes; it only bounds a broken client.
pub const SETTLE: Duration = Duration::from_secs(60);

/// One member as `group members NAME --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub username: String,
    pub admin: bool,
}

/// A group as records name it (`group list` rows, a message's `group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// 64 lower-case hex digits (the 32-byte group id).
    pub id: String,
    pub name: String,
}

/// One row of `group list --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub group: GroupInfo,
    /// False once this account left or was removed.
    pub active: bool,
}

/// A group message as `receive --json` prints it: a `message` record with a
/// `group` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    pub from: String,
    pub body: String,
    pub group: GroupInfo,
}

/// A member list in a canonical order (by username), for comparing what
/// several clients show.
pub fn sorted(mut members: Vec<Member>) -> Vec<Member> {
    members.sort();
    members
}

/// `admin` and then plain members, sorted: what a test expects to see.
pub fn roster(admins: &[&str], members: &[&str]) -> Vec<Member> {
    sorted(
        admins
            .iter()
            .map(|n| Member {
                username: n.to_string(),
                admin: true,
            })
            .chain(members.iter().map(|n| Member {
                username: n.to_string(),
                admin: false,
            }))
            .collect(),
    )
}

/// Group ids are 64 lower-case hex digits (32 bytes).
pub fn assert_group_id(id: &str) {
    assert!(
        id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "group id is not 64 lower-case hex digits: {id:?}"
    );
}

/// The `group` member of a record, if it has one.
pub fn group_of(record: &Value) -> Option<GroupInfo> {
    let group = record.get("group")?;
    if group.is_null() {
        return None;
    }
    let info = GroupInfo {
        id: string_field(group, "id"),
        name: string_field(group, "name"),
    };
    assert_group_id(&info.id);
    Some(info)
}

/// A `message` record that carries a `group`, as [`GroupMessage`].
pub fn group_message_of(record: &Value) -> Option<GroupMessage> {
    if record["type"] != "message" {
        return None;
    }
    let group = group_of(record)?;
    Some(GroupMessage {
        from: string_field(record, "from"),
        body: string_field(record, "body"),
        group,
    })
}

/// Every body of a `message` record (group or 1:1) among `records`.
pub fn bodies(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "message")
        .map(|r| string_field(r, "body"))
        .collect()
}

/// The group commands, on [`User`].
pub trait GroupCli {
    /// `group create NAME MEMBER...`: asserts success; returns every record.
    fn group_create(&self, name: &str, members: &[&str]) -> Vec<Value>;
    /// `group ARGS...` (after `--json`), asserting success.
    fn group_ok(&self, args: &[&str]) -> Vec<Value>;
    /// `group ARGS...` (after `--json`) whatever the exit status.
    fn group_run(&self, args: &[&str]) -> crate::client_support::Outcome;
    /// `group send NAME BODY`: asserts the relay accepted it for everyone.
    fn group_send(&self, name: &str, body: &str) -> Vec<Value>;
    /// `group members NAME` as members, or `None` if this client does not
    /// know the group (exit 1).
    fn members(&self, name: &str) -> Option<Vec<Member>>;
    /// `group list`: the groups this account is in (active ones).
    fn groups(&self) -> Vec<GroupInfo>;
    /// `group list`: every row, those it left or was removed from too.
    fn group_rows(&self) -> Vec<Listed>;
    /// `receive --json` once: every record, `drained` last (checked).
    fn receive_records(&self) -> Vec<Value>;
}

impl GroupCli for User {
    fn group_create(&self, name: &str, members: &[&str]) -> Vec<Value> {
        let mut args = vec!["create", name];
        args.extend_from_slice(members);
        self.group_ok(&args)
    }

    fn group_ok(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["--json", "group"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        out.assert_success(&full);
        json_records(&out.stdout, &full)
    }

    fn group_run(&self, args: &[&str]) -> crate::client_support::Outcome {
        let mut full = vec!["--json", "group"];
        full.extend_from_slice(args);
        self.run(&full)
    }

    fn group_send(&self, name: &str, body: &str) -> Vec<Value> {
        let records = self.group_ok(&["send", name, body, "--timeout", SEND_TIMEOUT]);
        assert!(
            records.iter().any(|r| r["type"] == "sent"),
            "{}: group send {name} printed no sent record: {records:?}",
            self.name
        );
        assert!(
            !records.iter().any(|r| r["type"] == "send_failed"),
            "{}: group send {name} failed for someone: {records:?}",
            self.name
        );
        records
    }

    fn members(&self, name: &str) -> Option<Vec<Member>> {
        let args = ["--json", "group", "members", name];
        let out = self.run(&args);
        if out.code == Some(crate::client_support::exit::USER_ERROR) {
            return None;
        }
        out.assert_success(&args);
        let members = json_records(&out.stdout, &args)
            .iter()
            .filter(|r| r["type"] == "group_member")
            .map(|r| Member {
                username: string_field(r, "username"),
                admin: r["admin"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("group_member record without admin: {r}")),
            })
            .collect();
        Some(sorted(members))
    }

    fn groups(&self) -> Vec<GroupInfo> {
        self.group_rows()
            .into_iter()
            .filter(|row| row.active)
            .map(|row| row.group)
            .collect()
    }

    fn group_rows(&self) -> Vec<Listed> {
        self.group_ok(&["list"])
            .iter()
            .filter(|r| r["type"] == "group")
            .map(|r| {
                let group = GroupInfo {
                    id: string_field(r, "id"),
                    name: string_field(r, "name"),
                };
                assert_group_id(&group.id);
                let active = r["active"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("group record without active: {r}"));
                Listed { group, active }
            })
            .collect()
    }

    fn receive_records(&self) -> Vec<Value> {
        let args = ["--json", "receive", "--timeout", RECEIVE_TIMEOUT];
        let out = self.run(&args);
        out.assert_success(&args);
        let records = json_records(&out.stdout, &args);
        let last = records.last().map(|r| r["type"].clone());
        assert_eq!(
            last,
            Some(Value::from("drained")),
            "{}: receive did not end with drained: {records:?}",
            self.name
        );
        records
    }
}

/// What a set of users' `receive` runs printed, one list per user, for
/// suites that let users talk and then check who saw what.
pub struct Transcript<'a> {
    users: Vec<&'a User>,
    /// Every record each user's `receive` printed, in order.
    pub seen: Vec<Vec<Value>>,
}

impl<'a> Transcript<'a> {
    /// An empty transcript of `users`.
    pub fn new(users: &[&'a User]) -> Self {
        Transcript {
            users: users.to_vec(),
            seen: vec![Vec::new(); users.len()],
        }
    }

    /// Position of `user` in this transcript.
    fn index(&self, user: &User) -> usize {
        self.users
            .iter()
            .position(|u| u.name == user.name)
            .unwrap_or_else(|| panic!("{} is not in this transcript", user.name))
    }

    /// `user` reads what is waiting (kept), then sends `body` to `group`:
    /// people read before they reply, and what arrives while a command
    /// is connected has its own test (group_membership.rs).
    pub fn say(&mut self, user: &User, group: &str, body: &str) {
        let i = self.index(user);
        self.seen[i].extend(user.receive_records());
        user.group_send(group, body);
    }

    /// What `user`'s `receive` runs printed so far.
    pub fn of(&self, user: &User) -> &[Value] {
        &self.seen[self.index(user)]
    }

    /// Runs `receive` for each user in turn until `done(user, its records)`
    /// holds for every user, or [`SETTLE`] passes (the test fails with
    /// `what` and everything seen).
    pub fn until(&mut self, what: &str, done: impl Fn(&User, &[Value]) -> bool) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let mut all = true;
            for (user, records) in self.users.iter().zip(self.seen.iter_mut()) {
                if done(user, records) {
                    continue;
                }
                records.extend(user.receive_records());
                all &= done(user, records);
            }
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {SETTLE:?}; records so far (without `drained`): {:#?}",
                self.seen
                    .iter()
                    .map(|r| r
                        .iter()
                        .filter(|r| r["type"] != "drained")
                        .collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Runs `receive` for each of `users` in turn, keeping every record each
/// printed, until `done(user, its records)` holds for every user or
/// [`SETTLE`] passes. Returns the records, one list per user.
pub fn receive_until(
    users: &[&User],
    what: &str,
    done: impl Fn(&User, &[Value]) -> bool,
) -> Vec<Vec<Value>> {
    let mut transcript = Transcript::new(users);
    transcript.until(what, done);
    transcript.seen
}

/// Runs `receive` for every user (so each processes what is queued), then
/// reads `observe` for each, until every user's observation equals
/// `expected`, or [`SETTLE`] passes. Returns every record each user's
/// `receive` printed meanwhile (one list per user), so a caller that waits
/// for a change does not lose the messages that arrived with it.
pub fn converge<T: PartialEq + std::fmt::Debug>(
    users: &[&User],
    what: &str,
    observe: impl Fn(&User) -> T,
    expected: &T,
) -> Vec<Vec<Value>> {
    let deadline = Instant::now() + SETTLE;
    let mut records: Vec<Vec<Value>> = vec![Vec::new(); users.len()];
    loop {
        let mut seen = Vec::new();
        for (user, kept) in users.iter().zip(records.iter_mut()) {
            kept.extend(user.receive_records());
            seen.push((user.name.clone(), observe(user)));
        }
        if seen.iter().all(|(_, t)| t == expected) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: clients did not converge on {expected:?} within {SETTLE:?}: {seen:#?}"
        );
    }
}

/// A running `umbra --json receive --follow`, killed on drop.
pub struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every record printed so far, in order.
    pub records: Vec<Value>,
    who: String,
}

impl Follower {
    /// Starts `receive --follow` for `user` and waits for its first batch
    /// (up to and including `drained`).
    pub fn start(user: &User) -> Follower {
        let mut child = user
            .cli
            .command(&[
                "--json",
                "receive",
                "--follow",
                "--timeout",
                RECEIVE_TIMEOUT,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn receive --follow");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut follower = Follower {
            child,
            lines,
            records: Vec::new(),
            who: user.name.clone(),
        };
        follower.wait_for("the first batch's drained record", |r| {
            r["type"] == "drained"
        });
        follower
    }

    /// Reads records until one satisfies `wanted` (returned) or [`SETTLE`]
    /// passes (the test fails, showing everything printed).
    pub fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SETTLE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "{}'s receive --follow: {what} not printed within {SETTLE:?} \
                     (or it exited); printed: {:#?}",
                    self.who, self.records
                ),
            };
            let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "{}'s receive --follow printed non-JSON ({e}): {line:?}",
                    self.who
                )
            });
            assert!(
                record["type"].is_string(),
                "{}'s receive --follow printed a record without a type: {line}",
                self.who
            );
            self.records.push(record.clone());
            if wanted(&record) {
                return record;
            }
        }
    }

    /// Stops the follower with SIGTERM and asserts a clean exit (0).
    pub fn stop(mut self) -> Vec<Value> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let code = self.child.wait().expect("wait for receive --follow").code();
        assert_eq!(
            code,
            Some(0),
            "{}'s receive --follow did not stop cleanly",
            self.who
        );
        // Whatever it printed before exiting still counts.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            if let Ok(record) = serde_json::from_str::<Value>(&line) {
                self.records.push(record);
            }
        }
        std::mem::take(&mut self.records)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts none of `records` is a message whose body contains any of
/// `forbidden`, and none is a group message of group `group_id`.
pub fn assert_nothing_of(records: &[Value], forbidden: &[&str], group_id: &str, who: &str) {
    for record in records {
        if record["type"] != "message" {
            continue;
        }
        let body = string_field(record, "body");
        for text in forbidden {
            assert!(
                !body.contains(text),
                "{who} was shown {text:?}, sent to the group after {who} left it: {record}"
            );
        }
        if let Some(group) = group_of(record) {
            assert_ne!(
                group.id, group_id,
                "{who} was shown a message of the group after leaving it: {record}"
            );
        }
    }
}

/// The message of `records` with body `body`, if any.
pub fn message_with_body<'a>(records: &'a [Value], body: &str) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| r["type"] == "message" && r["body"] == body)
}

/// Whether `records` hold a group message from `from` with exactly `body`
/// in group `group_id`.
pub fn has_group_message(records: &[Value], from: &str, body: &str, group_id: &str) -> bool {
    records
        .iter()
        .filter_map(group_message_of)
        .any(|m| m.from == from && m.body == body && m.group.id == group_id)
}

/// `send`'s timeout, re-exported for suites that run `send` directly.
pub const SEND: &str = SEND_TIMEOUT;

/// Whether `record` is the `group_change` record saying that `who` was
/// removed from group `group_id`.
pub fn is_removal(record: &Value, group_id: &str, who: &str) -> bool {
    record["type"] == "group_change"
        && record["change"] == "removed"
        && group_of(record).is_some_and(|g| g.id == group_id)
        && record["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|n| n == who))
}

/// The id of the group called `name` in `user`'s `group list`.
pub fn group_id(user: &User, name: &str) -> String {
    let groups = user.groups();
    let matching: Vec<&GroupInfo> = groups.iter().filter(|g| g.name == name).collect();
    assert_eq!(
        matching.len(),
        1,
        "{}: expected one group named {name:?}: {groups:?}",
        user.name
    );
    matching[0].id.clone()
}
