//! Files in groups through the real `umbra` binary and a real relay
//! (issue 13): `file send --group` uploads once and every member's
//! `receive --json` shows a group `message` with a `file` member, whose id
//! `file get` saves byte for byte; the relay holds one blob for the whole
//! group, and `chat`'s history (the daemon's `group.conversations`, read
//! by `umbra chat`) names the file too. A group we left sends nothing.

mod client_support;
mod group_support;

use std::path::{Path, PathBuf};

use client_support::{exit, start_relay, string_field, User};
use group_support::{group_message_of, GroupCli};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn write_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    let mut bytes = Vec::with_capacity(size);
    let mut block = Sha256::digest(b"umbra group file e2e").to_vec();
    while bytes.len() < size {
        block = Sha256::digest(&block).to_vec();
        bytes.extend_from_slice(&block);
    }
    bytes.truncate(size);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write the file to send");
    path
}

fn sha256_of(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read the file")).to_vec()
}

/// How many blobs the relay stores (its SQLite database, read only).
fn stored_blobs(relay: &umbra_e2e::Relay) -> i64 {
    let path = relay.data_dir().join("umbra.db");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("the relay's database opens");
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs")
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        count
    })
}

#[test]
fn a_file_sent_to_a_group_is_saved_by_every_member() {
    let relay = start_relay();
    let [alice, bob, carol] = ["alice", "bob", "carol"]
        .map(|n| User::register(&relay, n, &format!("{n}'s group password")));
    alice.group_create("climbing", &["bob", "carol"]);
    for member in [&bob, &carol] {
        member.receive_records();
    }
    let work = tempfile::tempdir().expect("temp dir");
    let original = write_file(work.path(), "topo.pdf", 1024 * 1024 + 17);
    let args = [
        "file",
        "send",
        "--group",
        "climbing",
        original.to_str().expect("utf-8 path"),
        "--timeout",
        "20",
    ];
    let records = alice.json_ok(&args);
    let sent: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "file_sent")
        .collect();
    assert_eq!(sent.len(), 1, "one file_sent record: {records:?}");
    assert_eq!(sent[0]["group"]["name"], "climbing", "{records:?}");
    assert_eq!(sent[0]["file"]["name"], "topo.pdf");
    assert!(!records.iter().any(|r| r["type"] == "send_failed"));
    assert_eq!(stored_blobs(&relay), 1, "uploaded once for the group");

    for member in [&bob, &carol] {
        let inbox = member.receive_records();
        let files: Vec<&Value> = inbox
            .iter()
            .filter(|r| r.get("file").is_some_and(|f| !f.is_null()))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{}: one file message: {inbox:?}",
            member.name
        );
        let message = group_message_of(files[0]).expect("a group message");
        assert_eq!(
            (message.from.as_str(), message.group.name.as_str()),
            ("alice", "climbing")
        );
        let file = &files[0]["file"];
        assert_eq!(file["name"], "topo.pdf");
        assert_eq!(file["size"], 1024 * 1024 + 17);
        let id = string_field(file, "id");
        let dest = tempfile::tempdir().expect("temp dir");
        let got = member.json_ok(&["file", "get", &id, dest.path().to_str().unwrap()]);
        assert_eq!(got[0]["type"], "file_saved", "{got:?}");
        let saved = PathBuf::from(string_field(&got[0], "path"));
        assert_eq!(saved, dest.path().join("topo.pdf"));
        assert_eq!(sha256_of(&saved), sha256_of(&original), "the bytes differ");
    }

    // Carol leaves: a file to the group she left is refused, nothing sent.
    carol.group_ok(&["leave", "climbing"]);
    let late = write_file(work.path(), "late.txt", 10);
    let args = [
        "file",
        "send",
        "--group",
        "climbing",
        late.to_str().unwrap(),
        "--timeout",
        "20",
    ];
    let error = carol.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(error.contains("no longer a member"), "{error}");
    assert_eq!(stored_blobs(&relay), 1, "nothing uploaded for a group left");
}
