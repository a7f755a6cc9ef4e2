//! Files through the real `umbra` binary and a real relay (issue 13): a
//! file sent with `file send` arrives as a `message` record with a `file`
//! member, and `file get` saves exactly the bytes sent; a blob changed on
//! the relay is refused with nothing left at the destination; a name chosen
//! by the sender cannot leave the directory it is saved in.
//!
//! Assertions are on what a user or script sees (the `--json` records, the
//! exit status, the files in the destination directory), except the one
//! step that plays the hostile relay: changing a stored blob in its SQLite
//! database.

mod client_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use client_support::{exit, start_relay, string_field, User};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// A 5 MiB file of bytes no compressor or pattern would make up.
fn write_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    let mut bytes = Vec::with_capacity(size);
    let mut block = Sha256::digest(b"umbra file e2e").to_vec();
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

/// `file send TO PATH [--name NAME]`: the `file_sent` record.
fn send_file(sender: &User, to: &str, path: &Path, name: Option<&str>) -> Value {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["file", "send", to, path, "--timeout", "20"];
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    let records = sender.json_ok(&args);
    let sent: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "file_sent")
        .collect();
    assert_eq!(sent.len(), 1, "one file_sent record: {records:?}");
    assert_eq!(sent[0]["to"], to);
    sent[0].clone()
}

/// The `file` member of the one file message in `receiver`'s inbox.
fn received_file(receiver: &User) -> Value {
    let inbox = receiver.receive();
    let files: Vec<&Value> = inbox
        .of_type("message")
        .into_iter()
        .filter(|m| m.get("file").is_some())
        .collect();
    assert_eq!(files.len(), 1, "one file message: {:?}", inbox.records);
    let file = files[0]["file"].clone();
    let id = string_field(&file, "id");
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "the file id is a 16-hex-digit local id: {file}"
    );
    file
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the destination directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_five_mib_file_arrives_byte_for_byte() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let work = tempfile::tempdir().expect("temp dir");
    let original = write_file(work.path(), "report.pdf", 5 * 1024 * 1024);

    let sent = send_file(&alice, "bob", &original, None);
    assert_eq!(sent["file"]["name"], "report.pdf");
    assert_eq!(sent["file"]["size"], 5 * 1024 * 1024);

    let file = received_file(&bob);
    assert_eq!(file["name"], "report.pdf");
    assert_eq!(file["size"], 5 * 1024 * 1024);
    assert_eq!(file["media_type"], "application/pdf");

    let dest = tempfile::tempdir().expect("temp dir");
    let id = string_field(&file, "id");
    let records = bob.json_ok(&["file", "get", &id, dest.path().to_str().unwrap()]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["type"], "file_saved");
    let saved = PathBuf::from(string_field(&records[0], "path"));
    assert_eq!(saved, dest.path().join("report.pdf"));
    assert_eq!(sha256_of(&saved), sha256_of(&original), "the bytes differ");
    assert_eq!(entries(dest.path()), vec!["report.pdf"], "a stray file");

    // A second get refuses to overwrite the first.
    let args = ["file", "get", &id, dest.path().to_str().unwrap()];
    let error = bob.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(error.contains("already exists"), "{error}");
}

/// The relay's SQLite database, as a hostile relay (or a damaged disk)
/// would change it.
fn relay_db<T>(relay: &umbra_e2e::Relay, work: impl AsyncFnOnce(&sqlx::SqlitePool) -> T) -> T {
    let path = relay.data_dir().join("umbra.db");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("the relay's database opens");
        let out = work(&pool).await;
        pool.close().await;
        out
    })
}

/// Stored chunk `index` of the one blob the relay holds.
fn stored_chunk(relay: &umbra_e2e::Relay, index: i64) -> Vec<u8> {
    relay_db(relay, async |pool| {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM blob_chunks WHERE chunk_index = ?")
                .bind(index)
                .fetch_all(pool)
                .await
                .expect("select");
        assert_eq!(rows.len(), 1, "one stored blob with chunk {index}");
        rows.into_iter().next().unwrap().0
    })
}

fn set_stored_chunk(relay: &umbra_e2e::Relay, index: i64, bytes: &[u8]) {
    relay_db(relay, async |pool| {
        sqlx::query("UPDATE blob_chunks SET bytes = ? WHERE chunk_index = ?")
            .bind(bytes)
            .bind(index)
            .execute(pool)
            .await
            .expect("update");
    })
}

/// `file get ID TARGET` fails verification and leaves `dir` empty.
fn refused(bob: &User, id: &str, dir: &Path, what: &str) {
    let target = dir.join("copy.txt");
    let args = ["file", "get", id, target.to_str().unwrap()];
    let error = bob.run(&args).assert_failure(exit::NETWORK, &args);
    assert!(error.contains("failed verification"), "{what}: {error}");
    assert!(
        !target.exists(),
        "{what}: a file was left at the destination"
    );
    assert_eq!(entries(dir), Vec::<String>::new(), "{what}: a partial file");
}

#[test]
fn a_tampered_truncated_or_reordered_blob_is_refused_and_nothing_is_saved() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let work = tempfile::tempdir().expect("temp dir");
    // Five relay chunks (64 KiB each, the last shorter).
    let original = write_file(work.path(), "notes.txt", 300 * 1024);
    send_file(&alice, "bob", &original, None);
    let file = received_file(&bob);
    let id = string_field(&file, "id");
    let dest = tempfile::tempdir().expect("temp dir");
    let (first, second, third, last) = (
        stored_chunk(&relay, 0),
        stored_chunk(&relay, 1),
        stored_chunk(&relay, 2),
        stored_chunk(&relay, 4),
    );

    let mut flipped = third.clone();
    flipped[100] ^= 0x01;
    set_stored_chunk(&relay, 2, &flipped);
    refused(&bob, &id, dest.path(), "one byte flipped");
    set_stored_chunk(&relay, 2, &third);

    set_stored_chunk(&relay, 0, &second);
    set_stored_chunk(&relay, 1, &first);
    refused(&bob, &id, dest.path(), "two chunks swapped");
    set_stored_chunk(&relay, 0, &first);
    set_stored_chunk(&relay, 1, &second);

    set_stored_chunk(&relay, 4, &last[..last.len() - 1000]);
    refused(&bob, &id, dest.path(), "the end cut off");
    set_stored_chunk(&relay, 4, &last);

    // Put back as it was, the same blob verifies: each refusal was the change.
    let target = dest.path().join("copy.txt");
    let records = bob.json_ok(&["file", "get", &id, target.to_str().unwrap()]);
    assert_eq!(records[0]["type"], "file_saved");
    assert_eq!(sha256_of(&target), sha256_of(&original));
}

#[test]
fn a_sender_chosen_path_is_saved_inside_the_target_directory() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let work = tempfile::tempdir().expect("temp dir");
    let original = write_file(work.path(), "innocent.bin", 1000);
    send_file(&alice, "bob", &original, Some("../../etc/passwd"));

    let file = received_file(&bob);
    let name = string_field(&file, "name");
    assert!(!name.contains('/') && !name.contains(".."), "{name:?}");

    // Two levels down, so `../../` would leave the target directory.
    let outer = tempfile::tempdir().expect("temp dir");
    let dest = outer.path().join("a").join("b");
    std::fs::create_dir_all(&dest).unwrap();
    let id = string_field(&file, "id");
    let records = bob.json_ok(&["file", "get", &id, dest.to_str().unwrap()]);
    let saved = PathBuf::from(string_field(&records[0], "path"));
    assert_eq!(
        saved.parent(),
        Some(dest.as_path()),
        "saved outside: {saved:?}"
    );
    assert_eq!(entries(&dest), vec![name.clone()]);
    assert_eq!(entries(outer.path()), vec!["a"], "something left above");
    assert_eq!(sha256_of(&saved), sha256_of(&original));
}
