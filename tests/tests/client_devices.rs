//! `umbra devices` through the real binaries and a real relay: an account
//! that never linked a device lists device 1, marked as this device and
//! listed (the implicit list), in human form and as one `device` record;
//! `devices remove` of this device is refused with exit 1 before anything
//! is asked, and an id that is no device likewise; all of it the same
//! through a running daemon. With a second device linked (`umbra link`,
//! `link-accept`), each lists both and marks itself, and `devices remove
//! 2` on device 1 removes it: device 1 lists itself alone, and device 2's
//! session is gone.
//!
//! Must never: pass on an empty listing (the record's fields are checked),
//! or reach into the store.

mod client_daemon_support;
mod client_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use client_daemon_support::{run, without_password, Daemon, KillOnDrop};
use client_support::{exit, json_records, start_relay, User};
use serde_json::Value;

/// A password zxcvbn scores 4, for the linked data directory.
const NEW_DEVICE_PASSWORD: &str = "violet anchor marmalade 1987 trombone";

/// `(device_id, this_device, listed)` of each `device` record, in order.
fn marks(records: &[Value]) -> Vec<(u64, bool, bool)> {
    records
        .iter()
        .map(|d| {
            assert_eq!(d["type"], "device", "{d}");
            (
                d["device_id"].as_u64().expect("device_id"),
                d["this_device"].as_bool().expect("this_device"),
                d["listed"].as_bool().expect("listed"),
            )
        })
        .collect()
}

/// Links a new data directory to `user`'s account through `umbra link`
/// and `umbra link-accept`, reading the code from `link`'s output.
fn link(relay: &umbra_e2e::Relay, user: &User) -> User {
    let mut child = user
        .cli
        .command(&["link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn umbra link");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let child = KillOnDrop(child);
    let mut code = String::new();
    out.read_line(&mut code).expect("the link code");
    let joined = User::unregistered(relay, &user.name, NEW_DEVICE_PASSWORD);
    let args = ["link-accept", code.trim_end()];
    joined.run(&args).assert_success(&args);
    let mut child = child;
    let status = child.0.wait().expect("wait for link");
    assert!(status.success(), "umbra link failed");
    joined
}

/// The one device record of an account with one device.
fn only_device(records: &[Value]) -> &Value {
    assert_eq!(records.len(), 1, "{records:?}");
    let device = &records[0];
    assert_eq!(device["type"], "device", "{device}");
    assert_eq!(device["device_id"], 1, "{device}");
    assert_eq!(device["this_device"], true, "{device}");
    assert_eq!(device["listed"], true, "{device}");
    let created = device["created_at"].as_str().expect("created_at");
    assert!(created.ends_with('Z') && created.len() >= 20, "{created}");
    // It logged in when it registered: seen, at a whole hour.
    let seen = device["last_seen_at"].as_str().expect("last_seen_at");
    assert!(seen.ends_with(":00:00Z"), "{seen}");
    device
}

#[test]
fn devices_lists_this_device_and_refuses_removing_it() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");

    only_device(&alice.json_ok(&["devices"]));
    let out = alice.run(&["devices"]);
    out.assert_success(&["devices"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with("device 1\tadded ") && lines[0].ends_with("\tthis device"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\tlast seen "), "{}", lines[0]);

    let args = ["devices", "remove", "1"];
    let line = alice.run(&args).assert_failure(1, &args);
    assert!(line.contains("device 1 is this device"), "{line}");
    let args = ["--json", "devices", "remove", "1"];
    alice.run(&args).assert_failure(1, &args);
    let args = ["devices", "remove", "7"];
    let line = alice.run(&args).assert_failure(1, &args);
    assert!(line.contains("device 7 is not a current device"), "{line}");
    // Still there.
    only_device(&alice.json_ok(&["devices"]));

    // Through a running daemon, with no password source.
    let daemon = Daemon::start(&alice);
    let args = ["--json", "devices"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    only_device(&json_records(&out.stdout, &args));
    let args = ["devices", "remove", "1"];
    let line = run(without_password(&alice.cli, &args)).assert_failure(1, &args);
    assert!(line.contains("device 1 is this device"), "{line}");
    let mut rpc = daemon.connect();
    let answer = rpc.ask(r#"{"jsonrpc":"2.0","id":1,"method":"devices.remove","params":{"id":1}}"#);
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    let answer = rpc.ask(r#"{"jsonrpc":"2.0","id":2,"method":"devices","params":{}}"#);
    let records = answer["result"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records: {answer}"));
    only_device(records);
    drop(rpc);
    drop(daemon);
}

#[test]
fn a_linked_device_is_listed_by_both_and_removed_from_the_first() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let laptop = link(&relay, &alice);

    assert_eq!(
        marks(&alice.json_ok(&["devices"])),
        [(1, true, true), (2, false, true)]
    );
    assert_eq!(
        marks(&laptop.json_ok(&["devices"])),
        [(1, false, true), (2, true, true)]
    );
    let args = ["devices", "remove", "2"];
    let line = laptop.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("device 2 is this device"), "{line}");

    let args = ["--json", "devices", "remove", "2"];
    let out = alice.run(&args);
    out.assert_success(&args);
    let done = json_records(&out.stdout, &args);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["type"], "done", "{done:?}");
    assert_eq!(done[0]["action"], "device_remove", "{done:?}");
    assert_eq!(marks(&alice.json_ok(&["devices"])), [(1, true, true)]);
    // Removing it again: it is no device any more.
    let args = ["devices", "remove", "2"];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("device 2 is not a current device"), "{line}");

    // The removed device's session is gone: it must link again.
    let args = ["devices"];
    laptop.run(&args).assert_failure(exit::AUTH, &args);
}
