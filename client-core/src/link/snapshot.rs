//! The snapshot a linked device starts from (docs/PROTOCOL.md §12.17): the
//! creator's account backup contents (§13.4: identity, contacts with their
//! trust, active groups' logs; never a session), encoded, encrypted as an
//! attachment blob under a fresh file key and uploaded like a file
//! (§11.9); its pointer travels in the provisioning, so only the holder of
//! the code gets the key. The joiner downloads and verifies it and decodes
//! the contents.
//!
//! Must never: leave the plaintext in memory that is not wiped (it holds
//! the identity's private key), accept a blob longer than a backup may be,
//! or hand on contents of another account or identity than the
//! provisioning's.

use std::path::Path;

use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use umbra_protocol::backup::BackupContents;
use umbra_protocol::content::{FileKey, FilePointer};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::backup::MAX_BACKUP_BYTES;
use umbra_protocol::wire::{AccountId, SessionToken};
use zeroize::Zeroizing;

use super::LinkFailure;
use crate::backup::backup_error;
use crate::engine::Engine;
use crate::files::{download, upload, TRANSFER_IDLE};
use crate::relay_http::RelayHttp;
use crate::{Error, MessageId};

/// The name a snapshot's pointer carries (never saved under: the joiner
/// keeps the blob in memory).
const SNAPSHOT_NAME: &str = "umbra-link-snapshot";

/// What errors name the snapshot by (it has no path).
const SNAPSHOT_PATH: &str = "<link snapshot>";

/// The largest snapshot a joiner downloads: what a backup may hold.
const MAX_SNAPSHOT_BYTES: u64 = MAX_BACKUP_BYTES as u64;

/// Uploads the account's current backup contents as an attachment blob
/// and returns its pointer (key included).
pub(crate) async fn upload_snapshot(
    engine: &Engine,
    token: &SessionToken,
) -> Result<FilePointer, Error> {
    let encoded = engine
        .backup_contents()
        .await?
        .encode()
        .map_err(backup_error)?;
    let http = engine.blob_http()?;
    let key = FileKey::random(&mut OsRng);
    let size = encoded.len() as u64;
    let (blob_id, sealed) = upload(
        &http,
        token,
        &key,
        &encoded[..],
        Path::new(SNAPSHOT_PATH),
        size,
        &|_| {},
    )
    .await?;
    Ok(FilePointer {
        id: MessageId::random(&mut OsRng),
        blob_id,
        key,
        digest: sealed.digest,
        size: sealed.size,
        file_name: SNAPSHOT_NAME.to_owned(),
        content_type: "application/octet-stream".to_owned(),
    })
}

/// Downloads and verifies the snapshot `pointer` names, and decodes it:
/// contents of `account` whose identity is `identity` (compared in
/// constant time), else [`LinkFailure::Inconsistent`].
pub(crate) async fn download_snapshot(
    server_url: &str,
    tls_roots: Option<std::path::PathBuf>,
    pointer: &FilePointer,
    account: &AccountId,
    identity: &IdentityPublic,
) -> Result<BackupContents, Error> {
    if pointer.size > MAX_SNAPSHOT_BYTES {
        return Err(Error::Link(LinkFailure::Inconsistent(
            "the snapshot is larger than an account backup may be",
        )));
    }
    let http = RelayHttp::new(server_url, tls_roots, TRANSFER_IDLE)?;
    // Reserved to the verified size up front, so the buffer never moves
    // (a move would leave an unwiped copy of the identity behind).
    let capacity = usize::try_from(pointer.size).unwrap_or(usize::MAX);
    let mut plain = Zeroizing::new(Vec::with_capacity(capacity));
    download(
        &http,
        pointer,
        &mut *plain,
        Path::new(SNAPSHOT_PATH),
        &|_| {},
    )
    .await?;
    let contents =
        BackupContents::decode(&plain).map_err(|e| Error::Link(LinkFailure::Snapshot(e)))?;
    if &contents.account != account {
        return Err(Error::Link(LinkFailure::Inconsistent(
            "the snapshot is of another account",
        )));
    }
    let same: bool = contents.identity.public().ct_eq(identity).into();
    if !same {
        return Err(Error::Link(LinkFailure::Inconsistent(
            "the snapshot holds another identity than the one provisioned",
        )));
    }
    Ok(contents)
}
