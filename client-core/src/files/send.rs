//! Sending a file: upload the encrypted blob, then send its pointer to a
//! contact through the ordinary 1:1 send path (session, outbox, history);
//! a group's goes through the group send path instead (`group.rs`).
//!
//! Must never: send a pointer before the relay confirmed the whole blob,
//! or a pointer whose size or digest is not the uploaded blob's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::attachment::{sanitize_file_name, MAX_ATTACHMENT_PLAINTEXT_BYTES};
use umbra_protocol::content::{Content, FileKey, FilePointer};
use umbra_protocol::wire::Username;

use super::transfer::upload;
use super::{records, summary, FileInfo, Progress, StoredFile};
use crate::conversation::{Direction, HistoryEntry};
use crate::engine::{now_ms, Engine, QueuedContent};
use crate::failure::FileFailure;
use crate::relay_http::RelayHttp;
use crate::store::Txn;
use crate::{Error, InvalidMessage, MessageId};

/// Longest wait for any one step of a transfer (connect, a write, a read):
/// a relay that stops answering ends the transfer, however large the file.
pub(crate) const TRANSFER_IDLE: Duration = Duration::from_secs(30);

impl Engine {
    /// The relay's HTTP side, for blob transfers.
    pub(crate) fn blob_http(&self) -> Result<RelayHttp, Error> {
        RelayHttp::new(&self.server_url, self.tls_roots.clone(), TRANSFER_IDLE)
    }

    /// Uploads `path` as a blob and sends its pointer to `to`, named
    /// `name` (default: the file's own name), sanitised.
    pub(crate) async fn send_file(
        self: &Arc<Self>,
        to: &Username,
        path: &Path,
        name: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(MessageId, FileInfo), Error> {
        self.check_open()?;
        // Fail on an unknown or untrusted recipient before the upload.
        let recipient = async {
            if let Some(contact) = self.contact_for_sending(to).await? {
                if !contact.may_send() {
                    return Err(contact.untrusted());
                }
            }
            Ok(())
        };
        let pointer = self.upload_file(path, name, progress, recipient).await?;
        let id = pointer.id;
        let content = Content::FilePointer(pointer.clone());
        let info = self.send_pointer(to, id, content, pointer).await?;
        Ok((id, info))
    }

    /// Checks `path`, awaits `recipient` (the caller's check that the
    /// pointer can be sent, made after the file's and before any byte is
    /// uploaded), uploads the file as a blob under a fresh key and returns
    /// the pointer to send, named `name` (default: the file's own name),
    /// sanitised. Shared by 1:1 and group sends (`group.rs`).
    pub(crate) async fn upload_file(
        &self,
        path: &Path,
        name: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
        recipient: impl std::future::Future<Output = Result<(), Error>>,
    ) -> Result<FilePointer, Error> {
        let unsendable = |reason: String| {
            Error::File(FileFailure::Unsendable {
                path: path.to_owned(),
                reason,
            })
        };
        // Checked before opening: opening a FIFO for reading blocks until a
        // writer comes, so `file send` on one would hang before the check
        // on the open file below could refuse it (which still stands, for
        // a path swapped in between).
        let before = tokio::fs::metadata(path).await.map_err(|source| {
            Error::File(FileFailure::Local {
                what: "opening",
                path: path.to_owned(),
                source,
            })
        })?;
        if !before.is_file() {
            return Err(unsendable("not a regular file".into()));
        }
        let file = tokio::fs::File::open(path).await.map_err(|source| {
            Error::File(FileFailure::Local {
                what: "opening",
                path: path.to_owned(),
                source,
            })
        })?;
        let meta = file.metadata().await.map_err(|source| {
            Error::File(FileFailure::Local {
                what: "reading",
                path: path.to_owned(),
                source,
            })
        })?;
        if !meta.is_file() {
            return Err(unsendable("not a regular file".into()));
        }
        let size = meta.len();
        if size > MAX_ATTACHMENT_PLAINTEXT_BYTES {
            return Err(unsendable(format!(
                "{size} bytes is over the limit of {MAX_ATTACHMENT_PLAINTEXT_BYTES}"
            )));
        }
        let given = match name {
            Some(name) => name.to_owned(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let file_name = sanitize_file_name(&given);
        let token = self
            .token()
            .await?
            .ok_or_else(|| Error::NotLoggedIn {
                reason: "no session token in this data directory".into(),
            })?
            .session_token();
        recipient.await?;
        let http = self.blob_http()?;
        let key = FileKey::random(&mut OsRng);
        let (blob_id, sealed) = upload(&http, &token, &key, file, path, size, progress).await?;
        let id = MessageId::random(&mut OsRng);
        let pointer = FilePointer {
            id,
            blob_id,
            key,
            digest: sealed.digest,
            size: sealed.size,
            file_name,
            content_type: media_type_of(&given).to_owned(),
        };
        Content::FilePointer(pointer.clone())
            .validate()
            .map_err(|e| Error::InvalidMessage(InvalidMessage::Content(e)))?;
        Ok(pointer)
    }

    /// The pointer's message: encrypted into the outbox with its history
    /// entry and file record, in one commit (as `send_text` does).
    async fn send_pointer(
        self: &Arc<Self>,
        to: &Username,
        id: MessageId,
        content: Content,
        pointer: FilePointer,
    ) -> Result<FileInfo, Error> {
        self.ensure_connected()?;
        let sent_at_ms = now_ms();
        let info;
        let original = content.clone();
        let destination;
        {
            let (_guard, contact, mut records, _) = self.session_for_sending(to).await?;
            destination = contact.account;
            let stored = StoredFile::new(Direction::Outgoing, contact.account, pointer);
            info = stored.info();
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut records,
                QueuedContent {
                    content,
                    id,
                    visible: true,
                },
            )?;
            self.names.put_contact(&mut txn, &contact).await?;
            let local = super::local_id(Direction::Outgoing, &contact.account, &id);
            self.vault
                .save(&mut txn, records::file::slot(&self.vault, &local), &stored)?;
            let entry = HistoryEntry::outgoing(id, summary(&info.name, info.size), sent_at_ms);
            self.timeline
                .append(&mut txn, &mut counters, &contact, entry, false)
                .await?;
            self.put_counters(&mut txn, &counters)?;
            self.vault.commit(txn).await?;
        }
        self.outbox_wake.notify_one();
        // Our other devices show the file too (§15.8), after it is durable.
        self.sync_sent(destination, &original).await;
        Ok(info)
    }
}

/// A media type from the name's extension; `application/octet-stream` for
/// anything else (the receiver treats it as a hint only).
fn media_type_of(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" | "md" => "text/plain",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "json" => "application/json",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}
