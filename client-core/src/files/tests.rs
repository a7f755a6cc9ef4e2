//! The file records' local ids and stored form.

use super::*;

fn pointer(name: &str) -> FilePointer {
    FilePointer {
        id: MessageId([3; 16]),
        blob_id: vec![0xb1; 32],
        key: umbra_protocol::content::FileKey::random(&mut rand::rngs::OsRng),
        digest: [9; 32],
        size: 1234,
        file_name: name.into(),
        content_type: "text/plain".into(),
    }
}

#[test]
fn local_ids_differ_by_direction_and_account() {
    let id = MessageId([1; 16]);
    let a = local_id(Direction::Incoming, &[1; 16], &id);
    assert_ne!(a, local_id(Direction::Outgoing, &[1; 16], &id));
    assert_ne!(a, local_id(Direction::Incoming, &[2; 16], &id));
    assert_eq!(a, local_id(Direction::Incoming, &[1; 16], &id));
    assert_eq!(parse_local_id(&hex::encode(a)).unwrap(), a);
    assert!(parse_local_id("zz").is_err());
    assert!(parse_local_id("00").is_err());
}

#[test]
fn a_received_name_is_shown_and_saved_sanitised() {
    // Names that pass the content rules but are unsafe to save under.
    for (sent, saved) in [
        ("\u{202e}txt.exe", "txt.exe"),
        ("...bashrc", "bashrc"),
        ("nul.txt", "_nul.txt"),
    ] {
        let stored = StoredFile::new(Direction::Incoming, [5; 16], pointer(sent));
        let info = stored.info();
        assert_eq!(info.name, saved);
        assert_eq!(stored.pointer().file_name, sent);
        // The key never shows in Debug.
        let debug = format!("{stored:?}");
        assert!(!debug.contains("key"), "{debug}");
    }
}

#[test]
fn the_stored_form_round_trips() {
    let stored = StoredFile::new(Direction::Outgoing, [7; 16], pointer("a.txt"));
    let bytes = postcard::to_stdvec(&stored).unwrap();
    assert_eq!(bytes[0], 0x00, "format V1");
    let back: StoredFile = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back.info(), stored.info());
    assert_eq!(back.pointer(), stored.pointer());
}

#[test]
fn a_group_files_local_id_is_never_a_1to1_files() {
    let (id, account) = (MessageId([3; 16]), [1; 16]);
    let group = GroupId([4; 32]);
    let a = group_local_id(&group, Direction::Incoming, &account, &id);
    assert_ne!(a, local_id(Direction::Incoming, &account, &id));
    assert_ne!(
        a,
        group_local_id(&GroupId([5; 32]), Direction::Incoming, &account, &id)
    );
    assert_ne!(
        a,
        group_local_id(&group, Direction::Outgoing, &account, &id)
    );
    let stored = StoredFile::for_group(&group, Direction::Incoming, account, pointer("a.txt"));
    assert_eq!(stored.info().id, hex::encode(a));
    let bytes = postcard::to_stdvec(&stored).unwrap();
    assert_eq!(bytes[0], 0x01, "format Group");
    let back: StoredFile = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back.info(), stored.info());
}
