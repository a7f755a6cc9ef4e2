//! `/file` and `/save`: a file goes only where a text could, shows at once
//! as ours and becomes the file's message once sent; `/save` takes the
//! newest file or `^N`, with an optional destination.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::output::{Delivery, Trust};

const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);

fn chat() -> ChatState {
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    state.connection = Connection::Online;
    state.add_contact("bob", Trust::Verified);
    state.select("bob");
    state
}

fn run(state: &mut ChatState, line: &str) -> Option<Action> {
    state.type_text(line);
    state.handle_key(KeyEvent::from(KeyCode::Enter))
}

fn error(state: &ChatState) -> Option<String> {
    state.notice.as_ref().map(|n| n.text.to_string())
}

#[test]
fn file_sends_to_the_open_conversation_and_becomes_the_files_message() {
    let mut state = chat();
    assert_eq!(
        run(&mut state, "/file /tmp/report 2026.pdf"),
        Some(Action::SendFile {
            to: "bob".into(),
            local_id: "local-1".into(),
            path: PathBuf::from("/tmp/report 2026.pdf"),
        })
    );
    let pending = state.open().and_then(|c| c.messages.last()).expect("shown");
    assert_eq!(pending.body.as_str(), "sending report 2026.pdf");
    assert_eq!(
        pending.direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Pending))
    );
    state.transfer_progress("sending report 2026.pdf", 512 * 1024, 2048 * 1024);
    assert_eq!(
        error(&state).as_deref(),
        Some("sending report 2026.pdf: 25% (512.0 KiB of 2.0 MiB)")
    );
    let file = FileView::new("00112233aabbccdd", "report 2026.pdf", 2_097_152);
    state.file_sent("bob", "local-1", "m1", file.clone());
    let sent = state.open().and_then(|c| c.messages.last()).expect("shown");
    assert_eq!(sent.id, "m1");
    assert_eq!(sent.file.as_ref(), Some(&file));
    assert_eq!(
        sent.direction,
        Direction::Outgoing(Outgoing::Progress(Delivery::Sent))
    );
    assert_eq!(state.notice, None, "the progress line goes once it is sent");

    // Where a text could not go, a file cannot either.
    assert_eq!(run(&mut state, "/file"), None);
    assert_eq!(error(&state).as_deref(), Some("usage: /file PATH"));
    state.input.clear();
    state.key_changed("bob", "12345");
    assert_eq!(run(&mut state, "/file a.txt"), None);
    assert!(error(&state).is_some_and(|e| e.contains("key changed")));
    let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
    assert_eq!(run(&mut state, "/file a.txt"), None);
    assert!(error(&state).is_some_and(|e| e.contains("no conversation open")));
}

#[test]
fn save_takes_the_newest_file_or_the_nth_message_and_a_destination() {
    let mut state = chat();
    assert_eq!(run(&mut state, "/save"), None);
    assert_eq!(
        error(&state).as_deref(),
        Some("there is no file here to save")
    );
    state.input.clear();
    state.receive_message("bob", "b1", "[file] ../../etc/passwd (10 bytes)", NOW);
    // The name is client-core's, sanitised; the view keeps it as SafeText.
    state.set_file(
        "bob",
        "b1",
        FileView::new("aa00aa00aa00aa00", "passwd\u{1b}[2J", 10),
    );
    state.receive_message("bob", "b2", "and this", NOW);
    let b1 = &state.open().expect("open").messages[0];
    assert_eq!(b1.file.as_ref().map(|f| f.name.as_str()), Some("passwd"));
    assert_eq!(
        run(&mut state, "/save"),
        Some(Action::SaveFile {
            id: "aa00aa00aa00aa00".into(),
            name: "passwd".into(),
            dest: None,
        })
    );
    assert_eq!(
        run(&mut state, "/save ^2 ~/Downloads/"),
        Some(Action::SaveFile {
            id: "aa00aa00aa00aa00".into(),
            name: "passwd".into(),
            dest: Some(PathBuf::from("~/Downloads/")),
        })
    );
    assert_eq!(run(&mut state, "/save ^1"), None, "^1 is not a file");
    assert_eq!(error(&state).as_deref(), Some("message ^1 is not a file"));
}

#[test]
fn sizes_read_as_people_say_them() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1024), "1.0 KiB");
    assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    assert_eq!(human_size(u64::MAX), "16777216.0 TiB");
}

#[test]
fn file_in_a_group_goes_to_the_group_and_a_members_file_is_saved() {
    const TEAM: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
    let members = || {
        [
            MemberInput {
                name: "alice",
                admin: true,
                me: true,
            },
            MemberInput {
                name: "bob",
                admin: false,
                me: false,
            },
        ]
    };
    let mut state = chat();
    state.set_group(TEAM, "team", &members(), true);
    let key = group_key(TEAM);
    state.select(&key);
    assert_eq!(
        run(&mut state, "/file /tmp/topo.pdf"),
        Some(Action::SendFile {
            to: key.clone(),
            local_id: "local-1".into(),
            path: PathBuf::from("/tmp/topo.pdf"),
        })
    );
    let file = FileView::new("00112233aabbccdd", "topo.pdf", 1024);
    state.file_sent(&key, "local-1", "m1", file.clone());
    let sent = state.open().and_then(|c| c.messages.last()).expect("shown");
    assert_eq!((sent.id.as_str(), sent.file.as_ref()), ("m1", Some(&file)));
    // A member's file arrives and /save takes it.
    state.receive_group_message(TEAM, "bob", "m2", "[file] plan.txt (9 bytes)", NOW);
    state.set_file(&key, "m2", FileView::new("ffeeddccbbaa9988", "plan.txt", 9));
    assert_eq!(
        run(&mut state, "/save /tmp/in"),
        Some(Action::SaveFile {
            id: "ffeeddccbbaa9988".into(),
            name: "plan.txt".into(),
            dest: Some(PathBuf::from("/tmp/in")),
        })
    );
    // A group we left takes no file.
    state.set_group(TEAM, "team", &members(), false);
    assert_eq!(run(&mut state, "/file /tmp/late.pdf"), None);
    assert!(error(&state).is_some_and(|e| e.contains("no longer a member")));
}
