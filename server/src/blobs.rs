//! Encrypted attachments over HTTP: `POST /v1/blobs` streams a body into the
//! store in chunks and returns a random id; `GET /v1/blobs/{id}` streams it
//! back. Blobs are ciphertext the client encrypted with a key it sends to
//! the recipient inside an envelope; the relay never sees that key.
//!
//! Upload needs `Authorization: Bearer <token as 64 hex digits>`; download
//! needs only the id, which is 256 random bits and so unguessable (the
//! recipient, who learns it inside an envelope, has no token of the
//! uploader's and may not be logged in on this relay at all).
//!
//! An upload must keep arriving: a gap of `blob_idle_timeout` without a
//! byte, or an average rate below `blob_min_bytes_per_sec` once the first
//! idle period has passed, ends it with 408 and deletes what arrived, so a
//! client that declares a size and stops sending cannot hold its
//! connection and a partial blob for ever.
//!
//! Every store call a blob request makes (the token lookup, creating,
//! appending to, finishing, deleting and reading a blob) is bounded by the
//! WebSocket commands' request deadline (`commands::REQUEST_DEADLINE`,
//! 1.5 s): a database that stops answering on an open connection is
//! answered `503` with `Retry-After: 1` within 2 s, as a `Send` is answered
//! `Internal` with `retry_after_secs: 1`, never held for minutes. The
//! client's own body is not under that deadline: it has the pace above.
//!
//! Must never: buffer a whole blob in memory, wait on the store without a
//! deadline, accept more than the size
//! limit (answer 413 and delete the partial blob), keep a partial upload
//! visible, wait for a body without a deadline, or log ids together with
//! accounts.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::time::Instant;
use umbra_wire::{SessionToken, SESSION_TOKEN_LEN};

use crate::app::AppState;
use crate::auth::tokens::{unix_now, TokenHash};
use crate::commands::STORE_RETRY_AFTER_SECS;
use crate::metrics::{AuthFailure, Metrics};
use crate::store::{BlobId, StoreError, MAX_BLOB_CHUNK_BYTES};

fn status(code: StatusCode, text: &'static str) -> Response {
    (code, text).into_response()
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<SessionToken> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let hex_token = value.strip_prefix("Bearer ")?.trim();
    let bytes: [u8; SESSION_TOKEN_LEN] = hex::decode(hex_token).ok()?.try_into().ok()?;
    Some(SessionToken::from_bytes(bytes))
}

/// Parses the 64-hex-digit id in a URL.
pub fn parse_blob_id(text: &str) -> Option<BlobId> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(BlobId(bytes))
}

fn internal(error: &StoreError, what: &'static str) -> Response {
    // The uploader's own quota, not a relay failure.
    if let StoreError::BlobQuotaExceeded { .. } = error {
        return status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "blob quota exceeded: delete or wait for older blobs to expire\n",
        );
    }
    if error.is_unavailable() {
        tracing::warn!(%error, operation = what, "blob store operation: database unavailable");
        return unavailable();
    }
    tracing::error!(%error, operation = what, "blob store operation failed");
    status(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// `503` with `Retry-After`: the database did not answer (in time).
fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, STORE_RETRY_AFTER_SECS.to_string())],
        "the relay's database did not answer in time; try again\n",
    )
        .into_response()
}

/// One store call of a blob request, bounded by `deadline` (the request deadline): its
/// error as [`internal`] says, no answer in time as [`unavailable`]. The
/// abandoned call's connection is not reused until it answers (sqlx pings
/// it first), as for a WebSocket request.
async fn bounded<T>(
    deadline: std::time::Duration,
    what: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, Response> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(internal(&error, what)),
        Err(_) => {
            tracing::warn!(
                operation = what,
                deadline_ms = deadline.as_millis() as u64,
                "blob store operation got no answer from the database in time"
            );
            Err(unavailable())
        }
    }
}

/// Deletes an upload that did not finish, within the deadline; what is
/// left (the store did not answer) the expiry purge removes.
async fn discard(state: &AppState, id: BlobId) {
    if bounded(
        state.limits.request_deadline,
        "delete_blob",
        state.store.delete_blob(id),
    )
    .await
    .is_err()
    {
        tracing::warn!("cannot delete a failed upload; expiry will");
    }
}

/// `POST /v1/blobs`: 201 with `{"id":"<64 hex>","size":N}`; 401 without a
/// valid token; 413 past the size limit.
pub async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return status(StatusCode::UNAUTHORIZED, "bearer token required\n");
    };
    let hash = TokenHash::of(&token);
    let owner = match bounded(
        state.limits.request_deadline,
        "lookup_token",
        state.store.lookup_token(&hash.0, unix_now()),
    )
    .await
    {
        Ok(Some(address)) => address.account,
        Ok(None) => {
            state.metrics.auth_failed(AuthFailure::BlobToken);
            return status(StatusCode::UNAUTHORIZED, "token unknown or expired\n");
        }
        Err(response) => return response,
    };
    let max = state.limits.blob_max_bytes;
    if let Some(declared) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if declared > max {
            return status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "blob exceeds the size limit\n",
            );
        }
    }
    let mut id = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    let id = BlobId(id);
    // Until it is finished the blob expires when an honest upload must have
    // ended: if the relay dies mid-upload, the expiry purge frees the
    // uploader's quota then, not after the whole TTL.
    let ttl = state.limits.blob_ttl.as_secs();
    let uploading = Pace::of(&state).unfinished_lifetime_secs(max, ttl);
    let expires = unix_now().saturating_add(uploading);
    if let Err(response) = bounded(
        state.limits.request_deadline,
        "create_blob",
        state.store.create_blob(id, owner, expires),
    )
    .await
    {
        // Created after all, if it was only slow: unfinished, so it expires.
        return response;
    }
    match copy_body(&state, id, body, max).await {
        Ok(size) => match bounded(
            state.limits.request_deadline,
            "finish_blob",
            state
                .store
                .finish_blob(id, size, unix_now().saturating_add(ttl)),
        )
        .await
        {
            Ok(()) => {
                Metrics::inc(&state.metrics.blobs_uploaded);
                let json = format!("{{\"id\":\"{}\",\"size\":{size}}}\n", hex::encode(id.0));
                (
                    StatusCode::CREATED,
                    [(header::CONTENT_TYPE, "application/json")],
                    json,
                )
                    .into_response()
            }
            Err(response) => {
                discard(&state, id).await;
                response
            }
        },
        Err(response) => {
            // Never leave a partial upload behind.
            discard(&state, id).await;
            response
        }
    }
}

/// How fast an upload must arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Longest gap between body bytes.
    idle: std::time::Duration,
    /// Slowest average rate after the first idle period; 0 = no rate check.
    min_bytes_per_sec: u64,
}

/// Added to the longest honest upload for an unfinished blob's expiry: the
/// store counts whole seconds and the last chunk and the finish are written
/// after the body's deadline check, so the row must outlive the deadline by
/// a little. A minute is far more than those writes take and far less than
/// the TTL an unfinished blob used to keep.
const UPLOAD_EXPIRY_SLACK_SECS: u64 = 60;

impl Pace {
    /// The configured pace.
    pub(crate) fn of(state: &AppState) -> Self {
        Self {
            idle: state.limits.blob_idle_timeout,
            min_bytes_per_sec: state.limits.blob_min_bytes_per_sec,
        }
    }

    /// The longest an upload of at most `max` bytes can last within this
    /// pace (the latest [`Pace::deadline`] for `max` bytes received), or
    /// `None` without a rate check, when a slow trickle may last for ever.
    fn longest_upload(self, max: u64) -> Option<std::time::Duration> {
        if self.min_bytes_per_sec == 0 {
            return None;
        }
        let earned = std::time::Duration::from_secs(max.div_ceil(self.min_bytes_per_sec));
        Some(self.idle.saturating_add(earned))
    }

    /// How long an unfinished blob of at most `max` bytes is kept: the
    /// longest honest upload plus [`UPLOAD_EXPIRY_SLACK_SECS`], never more
    /// than the finished blob's `ttl_secs` (all of it without a rate check).
    fn unfinished_lifetime_secs(self, max: u64, ttl_secs: u64) -> u64 {
        self.longest_upload(max)
            .map_or(ttl_secs, |d| {
                d.as_secs().saturating_add(UPLOAD_EXPIRY_SLACK_SECS)
            })
            .min(ttl_secs)
    }

    /// When the upload is abandoned unless more bytes arrive: `idle` after
    /// the last piece, and no later than the time by which `received` bytes
    /// would be too few at the minimum rate (one idle period of grace, then
    /// one second per `min_bytes_per_sec` received).
    pub(crate) fn deadline(self, started: Instant, last_piece: Instant, received: u64) -> Instant {
        // A configured timeout too large for the clock means "no deadline
        // from this rule"; a year stands in for that without overflowing.
        let far = |from: Instant| from + std::time::Duration::from_secs(365 * 24 * 3600);
        let stalled = last_piece
            .checked_add(self.idle)
            .unwrap_or_else(|| far(last_piece));
        if self.min_bytes_per_sec == 0 {
            return stalled;
        }
        let nanos = u128::from(received) * 1_000_000_000 / u128::from(self.min_bytes_per_sec);
        let earned = std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        match self
            .idle
            .checked_add(earned)
            .and_then(|allowed| started.checked_add(allowed))
        {
            Some(rate_deadline) => stalled.min(rate_deadline),
            None => stalled,
        }
    }
}

/// Streams the body into store chunks of exactly `MAX_BLOB_CHUNK_BYTES`
/// (the last one shorter), holding at most one chunk in memory, within the
/// configured [`Pace`].
async fn copy_body(state: &AppState, id: BlobId, body: Body, max: u64) -> Result<u64, Response> {
    let pace = Pace::of(state);
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_BLOB_CHUNK_BYTES);
    let mut index = 0u32;
    let mut size = 0u64;
    let started = Instant::now();
    let mut last_piece = started;
    loop {
        let deadline = pace.deadline(started, last_piece, size);
        let piece = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(_) => {
                Metrics::inc(&state.metrics.body_timeouts);
                tracing::debug!("blob upload stalled or too slow; abandoned");
                return Err((
                    StatusCode::REQUEST_TIMEOUT,
                    [(header::CONNECTION, "close")],
                    "upload stalled or too slow\n",
                )
                    .into_response());
            }
        };
        let piece: Bytes =
            piece.map_err(|_| status(StatusCode::BAD_REQUEST, "upload interrupted\n"))?;
        size = size.saturating_add(piece.len() as u64);
        if size > max {
            return Err(status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "blob exceeds the size limit\n",
            ));
        }
        let mut rest: &[u8] = &piece;
        while !rest.is_empty() {
            let room = MAX_BLOB_CHUNK_BYTES - pending.len();
            let (take, remainder) = rest.split_at(room.min(rest.len()));
            pending.extend_from_slice(take);
            rest = remainder;
            if pending.len() == MAX_BLOB_CHUNK_BYTES {
                bounded(
                    state.limits.request_deadline,
                    "append_blob_chunk",
                    state.store.append_blob_chunk(id, index, &pending),
                )
                .await?;
                index += 1;
                pending.clear();
            }
        }
        // The store's own time does not count as the client's gap.
        last_piece = Instant::now();
    }
    if !pending.is_empty() {
        bounded(
            state.limits.request_deadline,
            "append_blob_chunk",
            state.store.append_blob_chunk(id, index, &pending),
        )
        .await?;
    }
    if size == 0 {
        return Err(status(StatusCode::BAD_REQUEST, "empty blob\n"));
    }
    Ok(size)
}

/// `GET /v1/blobs/{id}`: 200 with the bytes, streamed chunk by chunk; 404
/// if unknown, unfinished or expired.
pub async fn download(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_blob_id(&id) else {
        return status(StatusCode::NOT_FOUND, "no such blob\n");
    };
    let info = match bounded(
        state.limits.request_deadline,
        "blob_info",
        state.store.blob_info(id, unix_now()),
    )
    .await
    {
        Ok(Some(info)) => info,
        Ok(None) => return status(StatusCode::NOT_FOUND, "no such blob\n"),
        Err(response) => return response,
    };
    let Some(size) = info.size else {
        return status(StatusCode::NOT_FOUND, "no such blob\n");
    };
    let store = state.store.clone();
    let deadline = state.limits.request_deadline;
    let chunks = futures_util::stream::unfold(0u32, move |index| {
        let store = store.clone();
        async move {
            if index >= info.chunk_count {
                return None;
            }
            // Bounded too: once the head is sent, a chunk the store does
            // not hand over in time ends the body (the client sees it cut
            // short of Content-Length and fetches again).
            match tokio::time::timeout(deadline, store.read_blob_chunk(id, index)).await {
                Ok(Ok(Some(bytes))) => {
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(bytes)), index + 1))
                }
                Ok(Ok(None)) => Some((Err(std::io::Error::other("blob chunk missing")), u32::MAX)),
                Ok(Err(error)) => Some((Err(std::io::Error::other(error.to_string())), u32::MAX)),
                Err(_) => Some((
                    Err(std::io::Error::other("no answer from the store in time")),
                    u32::MAX,
                )),
            }
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_parse_only_in_the_exact_form() {
        let mut headers = HeaderMap::new();
        assert!(bearer_token(&headers).is_none());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&headers).is_none());
        let hex_token = "11".repeat(32);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {hex_token}")).expect("header"),
        );
        assert_eq!(
            bearer_token(&headers),
            Some(SessionToken::from_bytes([0x11; 32]))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 1234"),
        );
        assert!(bearer_token(&headers).is_none(), "short tokens are refused");
    }

    #[test]
    fn upload_deadline_is_the_gap_or_the_rate_whichever_comes_first() {
        use std::time::Duration;
        let t0 = Instant::now();
        let pace = Pace {
            idle: Duration::from_secs(30),
            min_bytes_per_sec: 1000,
        };
        // Nothing received yet: one idle period.
        assert_eq!(pace.deadline(t0, t0, 0), t0 + Duration::from_secs(30));
        // 500 bytes by second 5: the rate allows until 30 + 0.5 s.
        let at5 = t0 + Duration::from_secs(5);
        assert_eq!(
            pace.deadline(t0, at5, 500),
            t0 + Duration::from_millis(30_500)
        );
        // Plenty received: the gap decides.
        assert_eq!(
            pace.deadline(t0, at5, 1_000_000),
            at5 + Duration::from_secs(30)
        );
        // A trickle: 1 byte every 29 s never stalls but falls behind the rate.
        let late = t0 + Duration::from_secs(29 * 40);
        assert_eq!(
            pace.deadline(t0, late, 40),
            t0 + Duration::from_millis(30_040)
        );
        let no_rate = Pace {
            min_bytes_per_sec: 0,
            ..pace
        };
        assert_eq!(
            no_rate.deadline(t0, late, 40),
            late + Duration::from_secs(30)
        );
    }

    #[test]
    fn an_unfinished_blob_expires_when_an_honest_upload_must_have_ended() {
        let pace = Pace {
            idle: std::time::Duration::from_secs(30),
            min_bytes_per_sec: 1000,
        };
        let ttl = 30 * 24 * 3600;
        // One idle period, one second per 1000 bytes (rounded up), slack.
        assert_eq!(
            pace.unfinished_lifetime_secs(10_001, ttl),
            30 + 11 + UPLOAD_EXPIRY_SLACK_SECS
        );
        // Never longer than a finished blob lives.
        assert_eq!(pace.unfinished_lifetime_secs(u64::MAX, ttl), ttl);
        // Without a rate check an honest upload has no bound: the TTL.
        let no_rate = Pace {
            min_bytes_per_sec: 0,
            ..pace
        };
        assert_eq!(no_rate.unfinished_lifetime_secs(10_001, ttl), ttl);
    }

    #[test]
    fn blob_ids_are_64_hex_digits() {
        assert_eq!(parse_blob_id(&"ab".repeat(32)), Some(BlobId([0xab; 32])));
        assert!(parse_blob_id("ab").is_none());
        assert!(parse_blob_id(&"zz".repeat(32)).is_none());
    }
}
