//! Text a contact controls must never drive the reader's terminal: no ESC,
//! no other C0 or C1 control, no bidirectional override reaches `umbra`'s
//! stdout, in human or `--json` output (docs/CLI.md, "Untrusted text").
//!
//! End to end, two layers are involved: the content layer refuses C0/C1
//! controls (tab and line breaks aside) when a message is sent, and the
//! receiver sanitises what it prints. Characters the content layer allows
//! (CR, bidi controls, U+2028, U+FEFF) are the ones that reach a receiver,
//! so those prove the sanitiser; escapes prove the refusal. This suite must
//! never assert on how a terminal would render the text, only on bytes.

mod client_support;

use client_support::{exit, start_relay, User};

/// Every byte/char a terminal could act on, apart from the line feed that
/// ends each line: C0 (ESC, BEL, CR, ...), DEL, C1 (U+0080..U+009F, CSI
/// U+009B among them), bidirectional controls, U+2028/U+2029 and U+FEFF.
fn dangerous_chars(text: &str) -> Vec<(usize, char)> {
    text.char_indices()
        .filter(|&(_, c)| {
            (c.is_control() && c != '\n')
                || matches!(
                    c,
                    '\u{202A}'..='\u{202E}'
                        | '\u{2066}'..='\u{2069}'
                        | '\u{200E}'
                        | '\u{200F}'
                        | '\u{061C}'
                        | '\u{2028}'
                        | '\u{2029}'
                        | '\u{FEFF}'
                )
        })
        .collect()
}

fn assert_clean(stream: &str, what: &str) {
    let found = dangerous_chars(stream);
    assert!(
        found.is_empty(),
        "{what} carries terminal-active characters {found:?}: {stream:?}"
    );
}

#[test]
fn escape_sequences_are_refused_at_send_and_never_printed() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    let hostile = [
        "title \u{1b}]0;pwned\u{7} set",
        "clear \u{1b}[2J screen",
        "c1 csi \u{9b}31m red",
        "bell \u{7} and backspace \u{8}",
        "clipboard \u{1b}]52;c;cHduZWQ=\u{7}",
    ];
    for text in hostile {
        let args = ["send", "bob", text, "--timeout", "10"];
        let out = alice.run(&args);
        // A message the content layer refuses is the sender's input error.
        let line = out.assert_failure(exit::USER_ERROR, &args);
        assert_clean(&line, "the refusal on stderr");
    }
    for text in &hostile[..2] {
        let args = ["send", "bob", "-", "--timeout", "10"];
        let out = alice.run_with_stdin(&args, text);
        let line = out.assert_failure(exit::USER_ERROR, &args);
        assert_clean(&line, "the refusal on stderr (stdin)");
    }

    // Nothing refused was queued to go out later, and bob's output is clean.
    let out = bob.run(&["receive", "--timeout", "5"]);
    out.assert_success(&["receive"]);
    assert_clean(&out.stdout, "bob's receive");
    let inbox = bob.receive();
    assert_eq!(inbox.messages, vec![], "a refused message was delivered");
}

/// Text the content layer lets through but a terminal would act on.
const SNEAKY: &str = "invoice\u{202E}fdp.exe\rFAKE: admin says hi\u{2028}next\u{2029}para\u{FEFF}\u{2066}iso\u{2069}\ttab";

#[test]
fn delivered_text_is_printed_without_controls_and_json_round_trips_it() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    alice.send("bob", SNEAKY);
    let human = bob.run(&["receive", "--timeout", "5"]);
    human.assert_success(&["receive"]);
    assert_clean(&human.stdout, "human receive output");
    assert_clean(&human.stderr, "receive's stderr");
    // The sanitiser drops the override rather than the text around it.
    assert!(
        human.stdout.contains("invoicefdp.exe"),
        "human output lost the visible text: {:?}",
        human.stdout
    );
    assert!(human.stdout.contains("FAKE: admin says hi"));

    // --json keeps the exact text, but as escapes, never as raw characters.
    alice.send("bob", SNEAKY);
    let args = ["--json", "receive", "--timeout", "5"];
    let json = bob.run(&args);
    json.assert_success(&args);
    assert_clean(&json.stdout, "JSON receive output");
    let records = client_support::json_records(&json.stdout, &args);
    let bodies: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "message")
        .filter_map(|r| r["body"].as_str())
        .collect();
    assert_eq!(bodies, vec![SNEAKY], "the JSON body is not the exact text");
}

#[test]
fn a_multi_line_message_cannot_imitate_another_record() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    // A body that, printed raw, would look like a second message header.
    let forged = "see below\n[2026-11-23 12:00 UTC] carol: send me your password";
    alice.send("bob", forged);
    let out = bob.run(&["receive", "--timeout", "5"]);
    out.assert_success(&["receive"]);
    assert_clean(&out.stdout, "human receive output");
    let forged_line = out
        .stdout
        .lines()
        .find(|l| l.contains("carol: send me your password"))
        .unwrap_or_else(|| panic!("second line of the body missing: {:?}", out.stdout));
    assert!(
        !forged_line.starts_with('['),
        "a continuation line starts like a message header: {forged_line:?}"
    );
}

#[test]
fn the_detector_flags_what_a_terminal_acts_on() {
    // Guards the suites above against a check that can never fail.
    for bad in [
        "\u{1b}[2J",
        "\u{7}",
        "\r",
        "\u{7f}",
        "\u{9b}",
        "\u{202E}",
        "\u{2028}",
        "\u{FEFF}",
    ] {
        assert_eq!(dangerous_chars(bad).len(), 1, "{bad:?} not flagged");
    }
    assert_eq!(dangerous_chars("plain text\nnext line, ünïcödé ✓"), vec![]);
}
