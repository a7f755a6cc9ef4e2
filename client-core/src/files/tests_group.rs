//! Files in groups over a real relay in this process (docs/PROTOCOL.md
//! §12.16): one upload, one pointer per member in a sealed group message;
//! every member is told (with the file's id), fetches the same bytes and
//! finds the file in the group's history, as the sender does in its own.
//! A group we left is refused before anything is uploaded.

use std::time::Duration;

use crate::groups::tests::team;
use crate::{Client, Event, FileInfo, GroupId};

async fn files_told(client: &Client) -> Vec<(GroupId, String, FileInfo)> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
        .into_iter()
        .filter_map(|e| match e {
            Event::GroupMessage {
                group,
                from,
                file: Some(file),
                ..
            } => Some((group, from, file)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_to_a_group_is_fetched_by_every_member_and_kept_in_history() {
    let team = team().await;
    // Every member holds the group before the file goes.
    for member in [&team.bob, &team.carol] {
        member
            .receive_until_empty(Duration::from_secs(10))
            .await
            .expect("welcome");
    }
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let path = team.dir.path().join("topo.pdf");
    std::fs::write(&path, &bytes).expect("write");
    let (report, sent) = team
        .alice
        .send_group_file(&team.group, &path, None, &|_| {})
        .await
        .expect("send the file");
    assert_eq!(report.failed().count(), 0, "{report:?}");
    assert_eq!((sent.name.as_str(), sent.size), ("topo.pdf", 200_000));

    for (n, member) in [&team.bob, &team.carol].into_iter().enumerate() {
        let told = files_told(member).await;
        assert_eq!(told.len(), 1, "{told:?}");
        let (group, from, file) = &told[0];
        assert_eq!((group, from.as_str()), (&team.group, "alice"));
        assert_eq!((file.name.as_str(), file.size), ("topo.pdf", 200_000));
        // The group's history shows it, and names the same file.
        let history = member
            .group_history(&team.group, 10)
            .await
            .expect("history");
        let last = history.last().expect("an entry");
        assert_eq!(last.entry.body, "[file] topo.pdf (200000 bytes)");
        let of = member.group_file_of(&team.group, last).await.expect("file");
        assert_eq!(of.as_ref(), Some(file));
        // And its id fetches the very bytes sent.
        let saved = team.dir.path().join(format!("saved-{n}"));
        std::fs::create_dir(&saved).expect("mkdir");
        let (at, _) = member
            .fetch_file(&file.id, Some(&saved), &|_| {})
            .await
            .expect("fetch");
        assert_eq!(std::fs::read(at).expect("read"), bytes);
    }
    // The sender's own history names the file it sent.
    let mine = team
        .alice
        .group_history(&team.group, 10)
        .await
        .expect("history");
    let own = mine.last().expect("our entry");
    let of = team
        .alice
        .group_file_of(&team.group, own)
        .await
        .expect("file");
    assert_eq!(of, Some(sent));
    // A text names no file.
    team.alice
        .send_group_text(&team.group, "a text")
        .await
        .expect("text");
    let mine = team
        .alice
        .group_history(&team.group, 10)
        .await
        .expect("history");
    let text = mine.last().expect("the text");
    let none = team
        .alice
        .group_file_of(&team.group, text)
        .await
        .expect("none");
    assert_eq!(none, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_we_left_is_refused_before_the_upload() {
    let team = team().await;
    team.bob
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("welcome");
    team.bob.leave_group(&team.group).await.expect("leave");
    let path = team.dir.path().join("late.txt");
    std::fs::write(&path, b"too late").expect("write");
    let uploaded = std::sync::atomic::AtomicU64::new(0);
    let progress = |p: crate::Progress| {
        uploaded.store(p.done, std::sync::atomic::Ordering::SeqCst);
    };
    let refused = team
        .bob
        .send_group_file(&team.group, &path, None, &progress)
        .await
        .expect_err("a group we left");
    assert!(
        matches!(
            refused,
            crate::Error::Group(crate::GroupFailure::NotAMember)
        ),
        "{refused:?}"
    );
    assert_eq!(uploaded.load(std::sync::atomic::Ordering::SeqCst), 0);
}
