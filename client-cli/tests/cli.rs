//! Runs the real `umbra` binary for the behaviour that needs no relay:
//! argument parsing, exit codes, error lines, completions, the data
//! directory and password-source rules. Conversations over a live relay are
//! covered by the end-to-end suite in `tests/`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn umbra(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_umbra"));
    command
        .args(args)
        .env("UMBRA_DATA_DIR", data_dir)
        .env_remove("UMBRA_PASSWORD_FILE")
        .env_remove("UMBRA_SERVER")
        .env_remove("UMBRA_LOG")
        // Never a terminal, so no test can hang on a prompt.
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the umbra binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One line, prefixed, no backtrace or debug dump.
fn assert_one_error_line(output: &Output) {
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "stderr: {text}");
    assert!(text.starts_with("umbra: "), "stderr: {text}");
    assert!(!text.contains("backtrace"), "stderr: {text}");
}

#[test]
fn completions_are_generated_for_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_umbra"),
        ("zsh", "#compdef umbra"),
        ("fish", "complete -c umbra"),
    ] {
        let output = run(&mut umbra(tmp.path(), &["completions", shell]));
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell} script lacks {marker}");
        assert!(
            script.contains("receive"),
            "{shell} script lacks subcommands"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&mut umbra(tmp.path(), &["fly"]));
    assert_eq!(output.status.code(), Some(2));
    let output = run(&mut umbra(tmp.path(), &["send", "bob"]));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_timeout_past_a_day_is_a_usage_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["receive", "--timeout", "18446744073709551615"][..],
        &["send", "bob", "hi", "--timeout", "86401"][..],
    ] {
        let output = run(&mut umbra(tmp.path(), args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[test]
fn help_and_version_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&mut umbra(tmp.path(), &["--help"]));
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["register", "login", "send", "receive", "verify", "chat"] {
        assert!(help.contains(command), "help lacks {command}");
    }
    let output = run(&mut umbra(tmp.path(), &["--version"]));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn without_terminal_or_password_source_it_exits_1_and_names_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("umbra");
    // `register` needs a password before anything else happens.
    let output = run(&mut umbra(&data_dir, &["register", "alice"]));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(stderr(&output).contains("UMBRA_PASSWORD_FILE"));
}

#[test]
fn whoami_on_an_empty_data_dir_says_there_is_no_account_without_asking_for_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("umbra");
    let output = run(&mut umbra(&data_dir, &["whoami"]));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(
        stderr(&output).contains("no account"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("UMBRA_PASSWORD_FILE"));
}

#[cfg(unix)]
#[test]
fn data_directory_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("nested").join("umbra");
    let _ = run(&mut umbra(&data_dir, &["whoami"]));
    let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn an_empty_message_is_refused_before_anything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("pw");
    std::fs::write(&password, "hunter2\n").unwrap();
    let output =
        run(umbra(tmp.path(), &["send", "bob", "  "]).env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(stderr(&output).contains("empty"));
}

#[test]
fn group_commands_check_their_input_before_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("pw");
    std::fs::write(&password, "hunter2\n").unwrap();
    // An empty group message is refused before anything else, as `send`'s.
    let output = run(umbra(tmp.path(), &["group", "send", "family", " \t"])
        .env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(stderr(&output).contains("empty"), "{}", stderr(&output));
    // A group needs a member besides its creator; a missing argument is usage.
    for args in [
        &["group", "create", "family"][..],
        &["group", "add", "family"],
        &["group", "rename", "family"],
        &["group"],
    ] {
        let output = run(&mut umbra(tmp.path(), args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // Without an account every group command says so (exit 1).
    let output = run(umbra(tmp.path(), &["group", "list"]).env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no account"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn chat_refuses_to_run_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("pw");
    std::fs::write(&password, "hunter2\n").unwrap();
    let output = run(umbra(tmp.path(), &["chat"]).env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(stderr(&output).contains("terminal"));
}

#[test]
fn a_failing_password_command_is_reported_without_its_text() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&mut umbra(
        tmp.path(),
        &[
            "--password-command",
            "echo s3cret >/dev/null; exit 9",
            "register",
            "alice",
        ],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(!stderr(&output).contains("s3cret"));
}

#[test]
fn account_delete_without_a_terminal_needs_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("pw");
    std::fs::write(&password, "hunter2\n").unwrap();
    let output =
        run(umbra(tmp.path(), &["account", "delete"]).env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert_one_error_line(&output);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    // With --yes it gets as far as the (missing) account instead.
    let output =
        run(umbra(tmp.path(), &["account", "delete", "--yes"])
            .env("UMBRA_PASSWORD_FILE", &password));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no account"),
        "{}",
        stderr(&output)
    );
}

/// Writes a password file only its owner can read (else umbra warns).
fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A guessable password is refused before any network traffic: the relay
/// named here does not exist, so reaching it would be exit 3, not 1.
#[test]
fn register_refuses_a_guessable_password_with_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("umbra");
    let password = tmp.path().join("pw");
    for weak in ["123456\n", "alice1990\n", "qwertyuiop\n"] {
        write_private(&password, weak);
        let output = run(umbra(&data_dir, &["register", "alice"])
            .env("UMBRA_PASSWORD_FILE", &password)
            .env("UMBRA_SERVER", "http://127.0.0.1:9"));
        assert_eq!(output.status.code(), Some(1), "{weak}: {}", stderr(&output));
        assert_one_error_line(&output);
        let text = stderr(&output);
        assert!(text.contains("too easy to guess"), "{text}");
        assert!(text.contains("Add another word"), "zxcvbn's advice: {text}");
        assert!(
            !text.contains(weak.trim()),
            "the password is quoted: {text}"
        );
    }
    // A strong password passes the check and gets as far as the network.
    write_private(&password, "tangerine-obelisk-whistle-87\n");
    let output = run(umbra(&data_dir, &["register", "alice"])
        .env("UMBRA_PASSWORD_FILE", &password)
        .env("UMBRA_SERVER", "http://127.0.0.1:9"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}
