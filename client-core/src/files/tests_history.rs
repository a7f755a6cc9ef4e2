//! A file shown from the stored history can be fetched: `Client::file_of`
//! gives the stored message's file (its local id for `fetch_file`), on
//! the recipient's side and the sender's, and nothing for a text.

use std::time::Duration;

use umbra_protocol::wire::Username;

use crate::groups::tests::{register, relay};
use crate::PeerRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_file_message_names_its_file_and_a_text_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob_name = Username::parse("bob").expect("name");
    alice.send_text(&bob_name, "a text").await.expect("send");
    let path = dir.path().join("menu.pdf");
    std::fs::write(&path, b"twelve bytes").expect("write");
    let (_, sent) = alice
        .send_file(&bob_name, &path, None, &|_| {})
        .await
        .expect("send the file");
    alice
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    bob.receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive");

    let alice_ref: PeerRef = "alice".parse().expect("peer");
    let history = bob.history(&alice_ref, 10).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        bob.file_of(&alice_ref, &history[0]).await.expect("text"),
        None
    );
    let got = bob
        .file_of(&alice_ref, &history[1])
        .await
        .expect("file")
        .expect("the file message names its file");
    assert_eq!((got.name.as_str(), got.size), ("menu.pdf", 12));
    // Its id is what fetch_file takes.
    let saved = dir.path().join("saved");
    std::fs::create_dir(&saved).expect("mkdir");
    let (at, _) = bob
        .fetch_file(&got.id, Some(&saved), &|_| {})
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(at).expect("read"), b"twelve bytes");

    // The sender's own stored message names the file it sent.
    let bob_ref: PeerRef = "bob".parse().expect("peer");
    let mine = alice.history(&bob_ref, 10).await.expect("history");
    let own = alice.file_of(&bob_ref, &mine[1]).await.expect("file");
    assert_eq!(own, Some(sent));
}
