//! Parsing tests for the command-line surface: names and flags scripts
//! rely on must keep parsing as docs/CLI.md says.

use super::daemon::MAX_IDLE;
use super::*;
use clap::CommandFactory;

#[test]
fn definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn global_flags_work_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "umbra",
        "receive",
        "--json",
        "--timeout",
        "3",
        "--data-dir",
        "/tmp/a",
    ])
    .unwrap();
    assert!(cli.json);
    assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/a")));
    assert!(matches!(
        cli.command,
        Command::Receive {
            timeout: 3,
            follow: false
        }
    ));
}

#[test]
fn send_takes_recipient_and_message() {
    let cli = Cli::try_parse_from(["umbra", "send", "bob", "-"]).unwrap();
    match cli.command {
        Command::Send {
            username, message, ..
        } => {
            assert_eq!(username, "bob");
            assert_eq!(message, "-");
        }
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn verify_flags_exclude_each_other() {
    let both = Cli::try_parse_from([
        "umbra",
        "verify",
        "bob",
        "--accept",
        "1",
        "--mark-verified",
        "1",
    ]);
    assert!(both.is_err());
}

#[test]
fn account_rename_takes_the_new_name() {
    let cli = Cli::try_parse_from(["umbra", "account", "rename", "alice2"]).unwrap();
    match cli.command {
        Command::Account(AccountCommand::Rename { new_username }) => {
            assert_eq!(new_username, "alice2");
        }
        other => panic!("parsed as {other:?}"),
    }
    let missing = Cli::try_parse_from(["umbra", "account", "rename"]).unwrap_err();
    assert_eq!(missing.exit_code(), 2);
}

#[test]
fn account_delete_asks_unless_yes() {
    let cli = Cli::try_parse_from(["umbra", "account", "delete"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Account(AccountCommand::Delete { yes: false })
    ));
    let cli = Cli::try_parse_from(["umbra", "account", "delete", "--yes", "--json"]).unwrap();
    assert!(cli.json);
    assert!(matches!(
        cli.command,
        Command::Account(AccountCommand::Delete { yes: true })
    ));
    let stray = Cli::try_parse_from(["umbra", "account", "delete", "alice"]).unwrap_err();
    assert_eq!(stray.exit_code(), 2);
    let bare = Cli::try_parse_from(["umbra", "account"]).unwrap_err();
    assert_eq!(bare.exit_code(), 2);
}

#[test]
fn daemon_and_follow_flags_parse() {
    let cli =
        Cli::try_parse_from(["umbra", "daemon", "--stdio", "--tcp", "127.0.0.1:7900"]).unwrap();
    match cli.command {
        Command::Daemon(args) => {
            assert!(args.stdio);
            assert_eq!(args.tcp, Some("127.0.0.1:7900".parse().unwrap()));
        }
        other => panic!("parsed as {other:?}"),
    }
    assert!(Cli::try_parse_from(["umbra", "daemon", "--tcp", "localhost"]).is_err());
    let cli = Cli::try_parse_from(["umbra", "receive", "--follow"]).unwrap();
    assert!(matches!(cli.command, Command::Receive { follow: true, .. }));
}

#[test]
fn group_commands_parse_with_their_arguments() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(["umbra", "group"].iter().chain(args)).map(|cli| cli.command)
    };
    match parse(&["create", "family", "bob", "carol", "--json"]).unwrap() {
        Command::Group(GroupCommand::Create {
            name,
            members,
            members_may_rename,
            ..
        }) => {
            assert_eq!(name, "family");
            assert_eq!(members, ["bob", "carol"]);
            assert!(!members_may_rename, "admin-only unless asked");
        }
        other => panic!("parsed as {other:?}"),
    }
    assert!(matches!(
        parse(&["create", "club", "bob", "--members-may-rename"]).unwrap(),
        Command::Group(GroupCommand::Create {
            members_may_rename: true,
            ..
        })
    ));
    // A group of one is not a group: create needs a member.
    assert_eq!(parse(&["create", "family"]).unwrap_err().exit_code(), 2);
    assert!(matches!(
        parse(&["send", "family", "-", "--timeout", "5"]).unwrap(),
        Command::Group(GroupCommand::Send { timeout: 5, ref message, .. }) if message == "-"
    ));
    assert!(matches!(
        parse(&["rename", "family", "fam"]).unwrap(),
        Command::Group(GroupCommand::Rename { ref new_name, .. }) if new_name == "fam"
    ));
    for (args, ok) in [
        (&["add", "family", "dave"][..], true),
        (&["remove", "family", "dave"], true),
        (&["promote", "family", "dave"], true),
        (&["leave", "family"], true),
        (&["members", "family"], true),
        (&["list"], true),
        (&["add", "family"], false),
        (&["add", "family", "dave", "erin"], false),
        (&["leave"], false),
        (&["list", "family"], false),
        (&[], false),
    ] {
        assert_eq!(parse(args).is_ok(), ok, "{args:?}");
    }
    let timeout = parse(&["send", "family", "hi", "--timeout", "86401"]).unwrap_err();
    assert_eq!(timeout.exit_code(), 2);
    match parse(&["add", "family", "dave", "--timeout", "3"]).unwrap() {
        Command::Group(command) => assert_eq!(command.timeout(), Some(3)),
        other => panic!("parsed as {other:?}"),
    }
    match parse(&["leave", "family"]).unwrap() {
        Command::Group(command) => assert_eq!(command.timeout(), Some(30)),
        other => panic!("parsed as {other:?}"),
    }
    assert!(parse(&["members", "family", "--timeout", "3"]).is_err());
}

#[test]
fn there_is_no_password_flag() {
    let err = Cli::try_parse_from(["umbra", "--password", "x", "whoami"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn unknown_command_is_a_usage_error() {
    let err = Cli::try_parse_from(["umbra", "fly"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn durations_take_a_unit_and_zero_or_off_is_off() {
    use std::time::Duration;
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_duration("168h"), Ok(MAX_IDLE));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("off"), Ok(Duration::ZERO));
    for bad in [
        "",
        "m",
        "15 m",
        "1.5h",
        "-3s",
        "15d",
        "169h",
        "99999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}
