//! The blob's two HTTP transfers (docs/PROTOCOL.md §11.9): `POST /v1/blobs`
//! with the file encrypted while it is read, and `GET /v1/blobs/{id}` with
//! the answer verified and decrypted while it arrives.
//!
//! Must never: buffer more than a chunk of the file or the blob, release
//! plaintext the decryptor has not authenticated, or accept an answer
//! longer than the pointer implies.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use umbra_protocol::attachment::{
    blob_len, AttachmentDecryptor, AttachmentEncryptor, SealedAttachment, ATTACHMENT_CHUNK_BYTES,
};
use umbra_protocol::content::{FileKey, FilePointer};
use umbra_protocol::wire::SessionToken;

use super::Progress;
use crate::failure::FileFailure;
use crate::relay_http::{HttpError, RelayHttp};
use crate::Error;

/// Longest upload answer read (a short JSON object or a one-line refusal).
const MAX_ANSWER_BYTES: u64 = 4096;

pub(crate) fn file_error(error: HttpError) -> Error {
    match error {
        HttpError::Setup(e) => e,
        HttpError::Timeout(t) => Error::Timeout(t),
        HttpError::Transport(e) => Error::File(FileFailure::Transport(e)),
        HttpError::BadAnswer(what) => Error::File(FileFailure::BadAnswer(what)),
    }
}

fn local<'a>(
    what: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        Error::File(FileFailure::Local {
            what,
            path: path.to_owned(),
            source,
        })
    }
}

fn refused(status: u16, body: &[u8]) -> Error {
    Error::File(FileFailure::Refused {
        status,
        reason: String::from_utf8_lossy(body)
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
    })
}

/// Encrypts `size` bytes of `file` under `key` straight into the body of
/// `POST /v1/blobs`; returns the relay's blob id and what the pointer
/// needs. The file must still be `size` bytes long at its end (a file that
/// grows or shrinks meanwhile is refused: its pointer would lie). `file` is
/// any reader: a file being sent, or bytes in memory (a link's snapshot,
/// `crate::link`); `path` names it in errors.
pub(crate) async fn upload<R: AsyncRead + Unpin>(
    http: &RelayHttp,
    token: &SessionToken,
    key: &FileKey,
    mut file: R,
    path: &std::path::Path,
    size: u64,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(Vec<u8>, SealedAttachment), Error> {
    let total = blob_len(size).map_err(|e| {
        Error::File(FileFailure::Unsendable {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    })?;
    let mut exchange = http
        .start("POST", "/v1/blobs", Some(token), Some(total))
        .await
        .map_err(file_error)?;
    let mut encryptor = AttachmentEncryptor::new(key);
    let mut plain = zeroize::Zeroizing::new(vec![0u8; ATTACHMENT_CHUNK_BYTES]);
    let mut sealed = Vec::with_capacity(ATTACHMENT_CHUNK_BYTES + 64);
    let mut read = 0u64;
    let mut sent = 0u64;
    let encrypt = |e: umbra_protocol::attachment::AttachmentError| {
        Error::File(FileFailure::Unsendable {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    while read < size && !exchange.body_cut() {
        let want = usize::try_from(size - read)
            .unwrap_or(usize::MAX)
            .min(plain.len());
        let n = file
            .read(&mut plain[..want])
            .await
            .map_err(local("reading", path))?;
        if n == 0 {
            // Shorter than when it was measured: stop before the declared
            // length, so the relay discards the upload.
            return Err(Error::File(FileFailure::Changed(path.to_owned())));
        }
        read += n as u64;
        encryptor.push(&plain[..n], &mut sealed).map_err(encrypt)?;
        if !sealed.is_empty() {
            exchange.write(&sealed).await.map_err(file_error)?;
            sent += sealed.len() as u64;
            sealed.clear();
            progress(Progress { done: sent, total });
        }
    }
    if !exchange.body_cut() {
        if file
            .read(&mut plain[..1])
            .await
            .map_err(local("reading", path))?
            != 0
        {
            return Err(Error::File(FileFailure::Changed(path.to_owned())));
        }
        let attachment = encryptor.finish(&mut sealed).map_err(encrypt)?;
        exchange.write(&sealed).await.map_err(file_error)?;
        sent += sealed.len() as u64;
        progress(Progress { done: sent, total });
        let head = exchange
            .answer(&[], MAX_ANSWER_BYTES)
            .await
            .map_err(file_error)?;
        let body = exchange.read_to_end().await.map_err(file_error)?;
        if head.status != 201 {
            return Err(refused(head.status, &body));
        }
        let id = blob_id_of(&body, sent).map_err(|e| Error::File(FileFailure::BadAnswer(e)))?;
        return Ok((id, attachment));
    }
    // The relay stopped reading (a quota, a size limit): its answer says why.
    let head = exchange
        .answer(&[], MAX_ANSWER_BYTES)
        .await
        .map_err(file_error)?;
    let body = exchange.read_to_end().await.map_err(file_error)?;
    Err(refused(head.status, &body))
}

/// The relay's answer to an upload (PROTOCOL 11.9): `{"id":"<64 lower-case
/// hex>","size":<bytes>}`. Other members are ignored, so a relay may add
/// some without breaking clients.
#[derive(serde::Deserialize)]
struct UploadAnswer {
    id: String,
    size: u64,
}

/// The blob id in the upload answer `body`, checked: at most
/// `MAX_ANSWER_BYTES` (checked before parsing, whatever read it), the
/// shape above, an id of exactly 32 bytes in lower-case hex, and a size
/// that is the `sent` bytes of the blob (a relay that stored something
/// else would hand out a pointer to a blob that cannot verify).
fn blob_id_of(body: &[u8], sent: u64) -> Result<Vec<u8>, &'static str> {
    if body.len() as u64 > MAX_ANSWER_BYTES {
        return Err("an upload answer over 4096 bytes");
    }
    let answer: UploadAnswer = serde_json::from_slice(body)
        .map_err(|_| "an upload answer that is not {\"id\",\"size\"} JSON")?;
    let lower_hex = answer.id.len() == 64
        && answer
            .id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lower_hex {
        return Err("an upload answer whose id is not 64 lower-case hex digits");
    }
    if answer.size != sent {
        return Err("an upload answer whose size is not the blob's");
    }
    hex::decode(&answer.id).map_err(|_| "an upload answer whose id is not hex")
}

/// Downloads the blob of `pointer` and writes its authenticated plaintext
/// to `out`; `Ok` only once `finish` accepted the whole blob (length,
/// digest, last chunk). On an error `out` holds a prefix of the file that
/// the caller must discard.
pub(crate) async fn download<W: AsyncWrite + Unpin>(
    http: &RelayHttp,
    pointer: &FilePointer,
    out: &mut W,
    out_path: &std::path::Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), Error> {
    let verification = |e| Error::File(FileFailure::Verification(e));
    let mut decryptor = AttachmentDecryptor::for_pointer(pointer).map_err(verification)?;
    let total = decryptor.expected_blob_len();
    let path = format!("/v1/blobs/{}", hex::encode(&pointer.blob_id));
    let mut exchange = http
        .start("GET", &path, None, None)
        .await
        .map_err(file_error)?;
    // A longer answer is refused before its body is read; a shorter one
    // is caught by the decryptor as truncated.
    let head = exchange.answer(&[], total).await.map_err(file_error)?;
    if head.status != 200 {
        // A refusal's body is a short JSON error; one longer than that is
        // not read at all (the limit given to `answer` is the blob's).
        if head.length.unwrap_or(0) > MAX_ANSWER_BYTES {
            return Err(file_error(HttpError::BadAnswer(
                "a refusal with a body over 4096 bytes",
            )));
        }
        let body = exchange.read_to_end().await.map_err(file_error)?;
        return Err(refused(head.status, &body));
    }
    let mut buf = vec![0u8; ATTACHMENT_CHUNK_BYTES];
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(ATTACHMENT_CHUNK_BYTES + 64));
    let mut done = 0u64;
    loop {
        let n = match exchange.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // Cut short: what arrived is checked (it is `Truncated`).
            Err(HttpError::BadAnswer(_)) => break,
            Err(e) => return Err(file_error(e)),
        };
        done += n as u64;
        decryptor
            .push(&buf[..n], &mut plain)
            .map_err(verification)?;
        if !plain.is_empty() {
            out.write_all(&plain)
                .await
                .map_err(local("writing", out_path))?;
            plain.clear();
        }
        progress(Progress { done, total });
    }
    decryptor.finish(&mut plain).map_err(verification)?;
    out.write_all(&plain)
        .await
        .map_err(local("writing", out_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_id_is_read_from_the_upload_answer() {
        let id = "ab".repeat(32);
        let body = format!("{{\"id\":\"{id}\",\"size\":42}}\n");
        assert_eq!(blob_id_of(body.as_bytes(), 42), Ok(vec![0xab; 32]));
        // Order and whitespace are JSON's business; unknown members are ignored.
        let body = format!("{{ \"size\": 42, \"extra\": [1], \"id\": \"{id}\" }}");
        assert_eq!(blob_id_of(body.as_bytes(), 42), Ok(vec![0xab; 32]));
    }

    #[test]
    fn a_malformed_upload_answer_is_refused() {
        let id = "ab".repeat(32);
        let refused = |body: String| blob_id_of(body.as_bytes(), 42).is_err();
        assert!(refused("{\"size\":42}".into()), "no id");
        assert!(refused(format!("{{\"id\":\"{id}\"}}")), "no size");
        assert!(
            refused(format!("{{\"id\":\"{id}0\",\"size\":42}}")),
            "65 digits"
        );
        assert!(
            refused(format!("{{\"id\":\"{}\",\"size\":42}}", "ab".repeat(31))),
            "31 bytes"
        );
        assert!(
            refused(format!("{{\"id\":\"{}\",\"size\":42}}", "AB".repeat(32))),
            "upper case"
        );
        assert!(refused("{\"id\":\"zz\",\"size\":42}".into()), "not hex");
        assert!(
            refused(format!("{{\"id\":{},\"size\":42}}", 7)),
            "id not a string"
        );
        assert!(
            refused(format!("{{\"id\":\"{id}\",\"size\":-1}}")),
            "negative size"
        );
        assert!(refused(format!("\"{id}\"")), "a bare string");
        assert!(
            refused(format!("{{\"id\":\"{id}\",\"size\":42")),
            "cut short"
        );
        // The old substring search took the first "id":" anywhere, here
        // one nested in another member.
        assert!(refused(format!(
            "{{\"x\":{{\"id\":\"{id}\"}},\"size\":42}}"
        )));
    }

    #[test]
    fn an_upload_answer_for_another_size_is_refused() {
        let body = format!("{{\"id\":\"{}\",\"size\":41}}", "ab".repeat(32));
        assert_eq!(
            blob_id_of(body.as_bytes(), 42),
            Err("an upload answer whose size is not the blob's")
        );
    }

    #[test]
    fn an_upload_answer_over_the_bound_is_refused_before_parsing() {
        let id = "ab".repeat(32);
        let padded = format!("{{\"id\":\"{id}\",\"size\":42{}}}", " ".repeat(4096));
        assert_eq!(
            blob_id_of(padded.as_bytes(), 42),
            Err("an upload answer over 4096 bytes")
        );
    }
}
