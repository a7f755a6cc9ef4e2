//! File names chosen by a hostile sender, through the real `umbra` binary
//! and a real relay (issue 13; docs/PROTOCOL.md §10.4 and §14.7,
//! docs/CLI.md "Files").
//!
//! "mallory" is a [`Rogue`]: a real account that uploads real encrypted
//! blobs and sends file pointers whose names no honest client would send,
//! some of them past the content limits. Two honest recipients see them:
//! bob through `--json`, carol through the human output.
//!
//! What is asserted: a name the protocol accepts arrives as exactly the
//! name `sanitize_file_name` gives (§14.7, the spec's rules and examples),
//! `file get ID` with no PATH saves it in the current directory and
//! nowhere else, never over an existing file or through a symlink placed
//! there, and the human output carries no control or bidi character; a
//! name the protocol refuses at decode (§10.4) is one `decryption_failed`
//! record (`undecodable`, dropped), never a crash, and the message sent
//! after it still arrives.

mod client_support;
mod group_support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use client_support::{exit, start_relay, string_field, User};
use group_support::rogue::Rogue;
use serde_json::Value;
use umbra_protocol::content::{Content, MessageId};

/// A name the protocol accepts, and what §14.7 says it becomes.
struct Accepted {
    sent: String,
    shown: String,
}

fn accepted(sent: impl Into<String>, shown: impl Into<String>) -> Accepted {
    Accepted {
        sent: sent.into(),
        shown: shown.into(),
    }
}

/// Every accepted hostile name of the suite, with its sanitised form
/// worked out by hand from the five rules of §14.7.
fn accepted_names() -> Vec<Accepted> {
    vec![
        // Rule 3: an option-looking name gets a `_` (commit 2067cce).
        accepted("-rf", "_-rf"),
        // Rule 2: no hidden file.
        accepted(".bashrc", "bashrc"),
        // Rule 1: the right-to-left override is dropped, so the name shows
        // its real extension.
        accepted("\u{202e}txt.exe", "txt.exe"),
        accepted("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
        // Invisible characters that make two names look alike.
        accepted("pay\u{200b}roll\u{feff}.pdf", "payroll.pdf"),
        // Rule 1: the line and paragraph separators are line breaks to a
        // terminal, and the deprecated format characters are dropped from
        // what the CLI shows, so they are dropped from the saved name too.
        accepted("two\u{2028}lines\u{2029}.txt", "twolines.txt"),
        accepted("memo\u{206e}\u{fffb}.pdf", "memo.pdf"),
        // Rule 3: Windows device names, any case, any extension.
        accepted("nul", "_nul"),
        accepted("CON", "_CON"),
        accepted("com1.tar.gz", "_com1.tar.gz"),
        // Rule 1: `:` (a drive or an NTFS stream) becomes `_`.
        accepted("C:evil", "C_evil"),
        // Rule 2: a run of dots is one dot, trailing dots and spaces go.
        accepted("a..b.. ", "a.b"),
        // The longest name the protocol carries: kept as it is.
        accepted(
            format!("{}.txt", "a".repeat(251)),
            format!("{}.txt", "a".repeat(251)),
        ),
        // 255 bytes that the `_` of rule 3 makes 256: rule 4 cuts the stem
        // and keeps the extension.
        accepted(
            format!("-{}.txt", "a".repeat(250)),
            format!("_-{}.txt", "a".repeat(249)),
        ),
        // Rule 4 on a two-byte character: the cut falls inside an `é`, so
        // the whole `é` goes (254 bytes, never a broken character).
        accepted(
            format!("-{}", "é".repeat(127)),
            format!("_-{}", "é".repeat(126)),
        ),
    ]
}

/// Names the content layer refuses at decode (§10.4: non-empty, not `.` or
/// `..`, no `/` or `\`, no control character, at most 255 bytes).
fn refused_names() -> Vec<String> {
    vec![
        "../../etc/passwd".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        "a/b".to_owned(),
        "a\\b".to_owned(),
        "..\\..\\x".to_owned(),
        "line\nbreak.txt".to_owned(),
        "\u{1b}[2J\u{1b}]0;pwned\u{7}title.txt".to_owned(),
        "nel\u{85}.txt".to_owned(),
        String::new(),
        format!("{}.txt", "a".repeat(252)),
    ]
}

/// The characters §14.7 rule 1 drops, besides controls.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// The rules every sanitised name keeps (§14.7, "the output always passes
/// 10.4's file-name rules"), checked on what the recipient was shown.
fn assert_safe_name(name: &str) {
    assert!(!name.is_empty() && name != "." && name != "..", "{name:?}");
    assert!(name.len() <= 255, "{name:?}: {} bytes", name.len());
    for c in name.chars() {
        assert!(
            !c.is_control() && !is_bidi_or_invisible(c),
            "{name:?} holds {c:?}"
        );
        assert!(!matches!(c, '/' | '\\' | ':'), "{name:?} holds {c:?}");
    }
    assert!(!name.contains(".."), "{name:?} holds a dot run");
    assert!(!name.starts_with('-'), "{name:?} starts with a dash");
    let trimmed = name.trim_matches(|c: char| c == '.' || c.is_whitespace());
    assert_eq!(trimmed, name, "leading or trailing dot or space");
}

/// Human output is text for a terminal: no control character but the line
/// breaks, no bidi or invisible formatting character.
fn assert_printable(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || (!c.is_control() && !is_bidi_or_invisible(c)),
            "{what} printed {c:?}: {text:?}"
        );
    }
}

/// The bytes of case `index`: distinct per case, so a file saved under the
/// wrong name or over another is seen.
fn contents(index: usize) -> Vec<u8> {
    format!("hostile file number {index}\n")
        .repeat(40)
        .into_bytes()
}

/// The rogue's clock, as an honest sender would stamp a text.
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("a 64-bit clock")
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `umbra ARGS` run in `cwd`, as a user in that directory would.
fn run_in(user: &User, cwd: &Path, args: &[&str]) -> Output {
    user.cli
        .command(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run umbra")
}

/// `umbra --json file get ID` (no PATH) in `cwd`: the saved path, resolved.
fn get_here(user: &User, cwd: &Path, id: &str) -> PathBuf {
    let args = ["--json", "file", "get", id];
    let out = run_in(user, cwd, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "file get {id}: {:?}; stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let records = client_support::json_records(&stdout, &args);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["type"], "file_saved");
    cwd.join(string_field(&records[0], "path"))
}

/// The `file` members of `records`' file messages, in order.
fn files(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["type"] == "message" && r.get("file").is_some())
        .map(|r| {
            assert_eq!(r["from"], "mallory", "{r}");
            r["file"].clone()
        })
        .collect()
}

#[test]
fn accepted_hostile_names_are_sanitised_and_saved_only_inside_the_directory() {
    let relay = start_relay();
    let bob = User::register(&relay, "bob", "bob's password");
    let carol = User::register(&relay, "carol", "carol's password");
    let mut mallory = Rogue::sign_up(&relay.ws_url(), "mallory", "mallory's password");
    let cases = accepted_names();
    for (index, case) in cases.iter().enumerate() {
        let pointer = mallory.upload_file(&contents(index), &case.sent);
        // Through the checked encoder: these names are within §10.4.
        mallory.send("bob", Content::FilePointer(pointer.clone()));
        mallory.send("carol", Content::FilePointer(pointer));
    }

    let inbox = bob.receive();
    let got = files(&inbox.records);
    assert_eq!(got.len(), cases.len(), "{:?}", inbox.records);
    let messages = inbox.of_type("message");
    for ((case, file), message) in cases.iter().zip(&got).zip(&messages) {
        let name = string_field(file, "name");
        assert_eq!(name, case.shown, "sent as {:?}", case.sent);
        assert_safe_name(&name);
        assert_eq!(
            string_field(message, "body"),
            format!("[file] {name} ({} bytes)", file["size"]),
        );
    }

    // `file get ID` with no PATH, two levels down so a `..` would show.
    let outer = tempfile::tempdir().expect("temp dir");
    let cwd = outer.path().join("a").join("here");
    std::fs::create_dir_all(&cwd).unwrap();
    let cwd = cwd.canonicalize().unwrap();
    let mut saved_names = Vec::new();
    for (index, (case, file)) in cases.iter().zip(&got).enumerate() {
        let id = string_field(file, "id");
        let saved = get_here(&bob, &cwd, &id).canonicalize().expect("saved");
        assert_eq!(saved, cwd.join(&case.shown), "sent as {:?}", case.sent);
        assert_eq!(std::fs::read(&saved).unwrap(), contents(index));
        saved_names.push(case.shown.clone());

        // A second get never replaces the first (docs/CLI.md: exit 1).
        let args = ["file", "get", &id];
        let out = run_in(&bob, &cwd, &args);
        assert_eq!(out.status.code(), Some(exit::USER_ERROR), "{:?}", case.sent);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("already exists"), "{stderr}");
        assert_printable("file get's refusal", &stderr);
        assert_eq!(std::fs::read(&saved).unwrap(), contents(index));
    }
    saved_names.sort();
    assert_eq!(entries(&cwd), saved_names, "a stray or partial file");
    assert_eq!(entries(outer.path()), vec!["a"], "something left above");
    assert_eq!(entries(&outer.path().join("a")), vec!["here"]);

    // Carol reads them as a person would: the human `receive`.
    let args = ["receive", "--timeout", client_support::RECEIVE_TIMEOUT];
    let out = carol.run(&args);
    out.assert_success(&args);
    assert_printable("receive", &out.stdout);
    assert_printable("receive's stderr", &out.stderr);
    for case in &cases {
        assert!(
            out.stdout.contains(&format!("[file] {}", case.shown)),
            "{:?} not shown as {:?}: {}",
            case.sent,
            case.shown,
            out.stdout
        );
    }
    // Into a directory that already holds a file and a dangling symlink
    // (pointing out of it) under two of the sanitised names, with the
    // human output of `file get`: bob's ids serve any number of gets.
    let ids: Vec<String> = got.iter().map(|f| string_field(f, "id")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = dir.path().join("_-rf");
    std::fs::write(&mine, b"bob's own file").unwrap();
    let escape = outer.path().join("escaped");
    std::os::unix::fs::symlink(&escape, dir.path().join("bashrc")).unwrap();
    for (case, id) in cases.iter().zip(&ids) {
        let out = run_in(&bob, dir.path(), &["file", "get", id]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_printable("file get", &stdout);
        assert_printable("file get's stderr", &stderr);
        if case.shown == "_-rf" || case.shown == "bashrc" {
            assert_eq!(
                out.status.code(),
                Some(exit::USER_ERROR),
                "{stdout}{stderr}"
            );
            assert!(stderr.contains("already exists"), "{stderr}");
        } else {
            assert!(out.status.success(), "{:?}: {stderr}", case.sent);
            assert!(stdout.contains(&case.shown), "{stdout}");
        }
    }
    assert_eq!(std::fs::read(&mine).unwrap(), b"bob's own file");
    assert!(
        !escape.exists(),
        "file get wrote through a symlink at its target name"
    );
}

#[test]
fn names_refused_at_decode_are_reported_and_lose_no_later_message() {
    let relay = start_relay();
    let bob = User::register(&relay, "bob", "bob's password");
    let mut mallory = Rogue::sign_up(&relay.ws_url(), "mallory", "mallory's password");
    let names = refused_names();
    for (index, name) in names.iter().enumerate() {
        let pointer = mallory.upload_file(&contents(index), name);
        mallory.send_unchecked("bob", &Content::FilePointer(pointer));
        mallory.send(
            "bob",
            Content::Text {
                id: MessageId::random(&mut rand::rngs::OsRng),
                body: format!("after refused name {index}"),
                sent_at_ms: now_ms(),
            },
        );
    }
    let inbox = bob.receive();
    assert!(files(&inbox.records).is_empty(), "{:?}", inbox.records);
    let failures = inbox.of_type("decryption_failed");
    assert_eq!(failures.len(), names.len(), "{:?}", inbox.records);
    for failure in &failures {
        assert_eq!(failure["reason_code"], "undecodable", "{failure}");
        assert_eq!(failure["outcome"], "rejected", "{failure}");
        assert_printable("the reason", &string_field(failure, "reason"));
    }
    let bodies: Vec<String> = inbox.messages.iter().map(|m| m.body.clone()).collect();
    let expected: Vec<String> = (0..names.len())
        .map(|i| format!("after refused name {i}"))
        .collect();
    assert_eq!(bodies, expected, "{:?}", inbox.records);

    // Nothing of the refused pointers was kept: `file get` of a made-up id
    // is the documented unknown-id error, and the session still works.
    let args = ["file", "get", "0123456789abcdef"];
    bob.run(&args).assert_failure(exit::USER_ERROR, &args);
    let last = MessageId::random(&mut rand::rngs::OsRng);
    mallory.send(
        "bob",
        Content::Text {
            id: last,
            body: "still talking".to_owned(),
            sent_at_ms: now_ms(),
        },
    );
    let inbox = bob.receive();
    let bodies: Vec<&str> = inbox.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, vec!["still talking"], "{:?}", inbox.records);
}
