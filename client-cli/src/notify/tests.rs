//! Notification settings, what each content level shows, the escapes'
//! safety against a hostile text, and the command run with the text as
//! plain arguments (a real process, never a shell).

use std::time::{Duration, Instant};

use super::*;

fn arrival<'a>(from: &'a str, group: Option<&'a str>, body: &'a str) -> Arrival<'a> {
    Arrival { from, group, body }
}

#[test]
fn notifications_are_off_unless_asked_for_and_typos_are_refused() {
    let off = Notifier::parse(None, None, None).unwrap();
    assert!(off.is_off());
    assert_eq!(off.shown, Shown::Nothing);
    assert_eq!(
        Notifier::parse(Some("OSC9"), None, None).unwrap().via,
        Via::Osc9
    );
    let command = Notifier::parse(
        Some("command"),
        Some(" notify-send  -a umbra "),
        Some("sender"),
    );
    let command = command.unwrap();
    assert_eq!(
        command.via,
        Via::Command(vec!["notify-send".into(), "-a".into(), "umbra".into()])
    );
    assert_eq!(command.shown, Shown::Sender);
    for (notify, cmd, content, named) in [
        (Some("osc99"), None, None, NOTIFY_VAR),
        (Some("command"), None, None, COMMAND_VAR),
        (Some("osc9"), None, Some("everything"), CONTENT_VAR),
    ] {
        let error = Notifier::parse(notify, cmd, content)
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{error}");
    }
}

#[test]
fn a_notification_shows_only_what_the_user_asked_for() {
    let message = arrival("bob", Some("climbing"), "meet at 6, the code is 4321");
    let at = |shown| {
        Notifier {
            via: Via::Osc9,
            shown,
        }
        .texts(&message)
    };
    let (title, body) = at(Shown::Nothing);
    for text in [&title, &body] {
        assert!(!text.contains("bob") && !text.contains("4321"), "{text}");
    }
    let (title, body) = at(Shown::Sender);
    assert_eq!(body, "new message from bob in climbing");
    assert!(!title.contains("4321") && !body.contains("4321"));
    let (title, body) = at(Shown::Message);
    assert_eq!(title, "umbra: bob in climbing");
    assert_eq!(body, "meet at 6, the code is 4321");
}

#[test]
fn a_hostile_text_cannot_break_out_of_the_escape() {
    // A BEL ends an OSC early; ESC starts another sequence; `;` would
    // split OSC 777's title field.
    let hostile = arrival("eve;x", None, "hi\x07\x1b]0;pwned\x07\x1b[2J\nnext line");
    for via in [Via::Osc9, Via::Osc777] {
        let escape = Notifier {
            via: via.clone(),
            shown: Shown::Message,
        }
        .escape(&hostile)
        .expect("an escape");
        let inner = &escape[2..escape.len() - 1];
        assert!(
            escape.starts_with("\x1b]") && escape.ends_with('\x07'),
            "{escape:?}"
        );
        assert!(!inner.chars().any(char::is_control), "{escape:?}");
        if via == Via::Osc777 {
            let fields: Vec<&str> = inner.splitn(4, ';').collect();
            assert_eq!(fields[..3], ["777", "notify", "umbra: eve,x"], "{escape:?}");
        }
    }
    let long = "x".repeat(1000);
    let (_, body) = Notifier {
        via: Via::Osc9,
        shown: Shown::Message,
    }
    .texts(&arrival("bob", None, &long));
    assert_eq!(body.chars().count(), MAX_PREVIEW_CHARS + 1, "a preview");
}

#[tokio::test]
async fn the_command_gets_the_text_as_arguments_never_through_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("argv");
    let canary = dir.path().join("pwned");
    // A notifier that writes each argument it got on a line of its own.
    let script = dir.path().join("notifier");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}.tmp && mv {0}.tmp {0}\n",
            out.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let command = format!("{} --app umbra", script.display());
    let notifier = Notifier::parse(Some("command"), Some(&command), Some("message")).unwrap();
    let body = format!("$(touch {}) `touch {0}`; touch {0}", canary.display());
    notifier
        .run_command(&arrival("bob", None, &body))
        .expect("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.exists() {
        assert!(Instant::now() < deadline, "the notifier never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let argv = std::fs::read_to_string(&out).expect("argv");
    let lines: Vec<&str> = argv.lines().collect();
    assert_eq!(lines, ["--app", "umbra", "umbra: bob", body.as_str()]);
    assert!(!canary.exists(), "the text was run as shell code");
}
