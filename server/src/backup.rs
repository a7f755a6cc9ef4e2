//! The account backup over HTTP (docs/PROTOCOL.md §11.13): `PUT /v1/backup`
//! stores the authenticated account's sealed backup, `GET /v1/backup` serves
//! it back, `DELETE /v1/backup` removes it. A sealed backup is 16 KiB to
//! 16 MiB (§13.5), far over a WebSocket frame, so it travels like a blob:
//! a bearer session token, a body that must keep arriving
//! (`blob_idle_timeout`, `blob_min_bytes_per_sec`), refusals before the body
//! is read wherever the head already decides.
//!
//! The relay checks only the outside (`BackupHeader::parse`: version, a
//! bucket length, the `seq`) and keeps the newest: a backup replaces the
//! stored one only with a greater `seq` (the store's compare-and-swap), so
//! two devices racing never overwrite a newer backup; the loser gets `409`
//! and the stored `seq`.
//!
//! Memory: a body is read whole before it is checked and stored (one row,
//! one statement), never more than its declared `Content-Length`, itself at
//! most 16 MiB; every body held, uploads and downloads together, draws on a
//! byte budget of [`BACKUP_MEMORY_BYTES`], and past it the relay answers
//! `503` instead of buffering more.
//!
//! Must never: store bytes whose header does not parse or whose length is
//! not the declared one, buffer more than the declared length, replace a
//! backup with one whose `seq` is not greater, serve one account's backup
//! to another, or log a backup's bytes or an account next to a `seq`.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use futures_util::StreamExt;
use governor::clock::DefaultClock;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use umbra_wire::backup::{is_backup_bucket, BackupHeader, MAX_BACKUP_BYTES};
use umbra_wire::AccountId;

use crate::app::AppState;
use crate::auth::tokens::{unix_now, TokenHash};
use crate::blobs::{bearer_token, Pace};
use crate::commands::STORE_RETRY_AFTER_SECS;
use crate::metrics::{AuthFailure, Metrics};
use crate::rate_limit::{KeyedBudget, RetryAfter};
use crate::store::{BackupPut, StoreError};

/// The one path of the backup resource.
pub const BACKUP_PATH: &str = "/v1/backup";
/// The response header carrying a backup's `seq` (decimal).
pub const SEQ_HEADER: &str = "umbra-backup-seq";
/// `PUT`s and `DELETE`s per account per minute (a burst of the whole minute).
pub const BACKUP_WRITES_PER_MINUTE: u32 = 10;
/// `GET`s per account per minute.
pub const BACKUP_READS_PER_MINUTE: u32 = 10;
/// Bytes of backup bodies the relay holds in memory at once, uploads and
/// downloads together (eight of the largest backups).
pub const BACKUP_MEMORY_BYTES: usize = 8 * MAX_BACKUP_BYTES;
/// Longest a store call that moves a whole backup (up to 16 MiB: the
/// compare-and-swap write, the read) may take; other store calls of these
/// routes have the commands' `REQUEST_DEADLINE` (1.5 s). Below SQLite's
/// busy timeout and PostgreSQL's statement timeout, so a held lock is
/// answered by this deadline's retryable `503`.
pub const BACKUP_STORE_DEADLINE: Duration = Duration::from_secs(4);
/// Pieces a download is streamed in.
const DOWNLOAD_PIECE_BYTES: usize = 64 * 1024;
/// How often idle rate-limit keys are forgotten.
const SHRINK_EVERY: Duration = Duration::from_secs(60);

/// Budgets of the backup routes, this node's own.
struct BackupGate {
    writes: KeyedBudget<AccountId>,
    reads: KeyedBudget<AccountId>,
    memory: Arc<Semaphore>,
    last_shrink: Mutex<Instant>,
}

impl BackupGate {
    fn new() -> Self {
        let per_minute = |n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            writes: KeyedBudget::with_clock(
                per_minute(BACKUP_WRITES_PER_MINUTE),
                DefaultClock::default(),
            ),
            reads: KeyedBudget::with_clock(
                per_minute(BACKUP_READS_PER_MINUTE),
                DefaultClock::default(),
            ),
            memory: Arc::new(Semaphore::new(BACKUP_MEMORY_BYTES)),
            last_shrink: Mutex::new(Instant::now()),
        }
    }

    /// Spends one unit of `account`'s write or read budget.
    fn check(&self, write: bool, account: AccountId) -> Result<(), Box<Response>> {
        {
            let mut last = self.last_shrink.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= SHRINK_EVERY {
                *last = Instant::now();
                self.writes.shrink();
                self.reads.shrink();
            }
        }
        let budget = if write { &self.writes } else { &self.reads };
        budget
            .check(&account)
            .map_err(|RetryAfter(secs)| Box::new(retry_later(StatusCode::TOO_MANY_REQUESTS, secs)))
    }

    /// Reserves `len` bytes of the memory budget, or `503`.
    fn reserve(&self, len: usize) -> Result<OwnedSemaphorePermit, Box<Response>> {
        let permits = u32::try_from(len).unwrap_or(u32::MAX);
        self.memory
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| Box::new(retry_later(StatusCode::SERVICE_UNAVAILABLE, 1)))
    }
}

#[derive(Clone)]
struct BackupState {
    app: AppState,
    gate: Arc<BackupGate>,
}

/// The backup routes, with their own budgets, for the relay's router.
pub fn routes(app: AppState) -> Router<AppState> {
    let state = BackupState {
        app,
        gate: Arc::new(BackupGate::new()),
    };
    Router::new()
        .route(BACKUP_PATH, put(upload).get(download).delete(remove))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn status(code: StatusCode, text: &'static str) -> Response {
    (code, text).into_response()
}

fn retry_later(code: StatusCode, secs: u32) -> Response {
    let text = if code == StatusCode::TOO_MANY_REQUESTS {
        "too many backup requests\n"
    } else {
        "busy with other backups\n"
    };
    (code, [(header::RETRY_AFTER, secs.to_string())], text).into_response()
}

fn seq_header(seq: u64) -> (HeaderName, HeaderValue) {
    (HeaderName::from_static(SEQ_HEADER), HeaderValue::from(seq))
}

fn internal(error: &StoreError, what: &'static str) -> Response {
    // The database could not be used: nothing was done, a retry may work.
    if error.is_unavailable() {
        tracing::warn!(%error, operation = what, "backup store operation: database unavailable");
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, STORE_RETRY_AFTER_SECS);
    }
    tracing::error!(%error, operation = what, "backup store operation failed");
    status(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// One store call, bounded by `deadline`: past it the call is dropped (its
/// transaction rolls back unless its commit was already under way, which a
/// retried `PUT` of the same bytes then meets as an idempotent repeat) and
/// the answer is `503` with `Retry-After: 1`.
async fn bounded<T>(
    deadline: Duration,
    what: &'static str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<Result<T, StoreError>, Response> {
    tokio::time::timeout(deadline, call).await.map_err(|_| {
        tracing::warn!(
            operation = what,
            "backup store operation: past its deadline"
        );
        retry_later(StatusCode::SERVICE_UNAVAILABLE, STORE_RETRY_AFTER_SECS)
    })
}

/// The account of an authenticated request within its budget (a write's,
/// or a read's), or the answer that refuses it (`401`, `429`).
async fn admit(
    app: &AppState,
    gate: &BackupGate,
    headers: &HeaderMap,
    write: bool,
) -> Result<AccountId, Response> {
    let account = authenticate(app, headers).await?;
    gate.check(write, account).map_err(|response| *response)?;
    Ok(account)
}

/// The account of the request's bearer token, or `401`.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<AccountId, Response> {
    let Some(token) = bearer_token(headers) else {
        return Err(status(StatusCode::UNAUTHORIZED, "bearer token required\n"));
    };
    let hash = TokenHash::of(&token);
    let lookup = state.store.lookup_token(&hash.0, unix_now());
    match bounded(state.limits.request_deadline, "lookup_token", lookup).await? {
        Ok(Some(address)) => Ok(address.account),
        Ok(None) => {
            state.metrics.auth_failed(AuthFailure::BlobToken);
            Err(status(
                StatusCode::UNAUTHORIZED,
                "token unknown or expired\n",
            ))
        }
        Err(e) => Err(internal(&e, "lookup_token")),
    }
}

/// The declared body length, if it can be a sealed backup: `411` without
/// one, `413` above 16 MiB, `400` for any other length than a bucket.
fn declared_length(headers: &HeaderMap) -> Result<usize, Box<Response>> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Err(Box::new(status(
            StatusCode::LENGTH_REQUIRED,
            "Content-Length required\n",
        )));
    };
    let Some(len) = value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) else {
        return Err(Box::new(status(
            StatusCode::BAD_REQUEST,
            "bad Content-Length\n",
        )));
    };
    if len > MAX_BACKUP_BYTES as u64 {
        return Err(Box::new(status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "backup exceeds 16 MiB\n",
        )));
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if !is_backup_bucket(len) {
        return Err(Box::new(status(
            StatusCode::BAD_REQUEST,
            "backup length is not a bucket size\n",
        )));
    }
    Ok(len)
}

/// Reads exactly `len` bytes of body within the blob pace, never holding
/// more than `len`.
async fn read_body(state: &AppState, body: Body, len: usize) -> Result<Vec<u8>, Response> {
    let pace = Pace::of(state);
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::with_capacity(len);
    let started = Instant::now();
    let mut last_piece = started;
    loop {
        let deadline = pace.deadline(started, last_piece, bytes.len() as u64);
        let piece = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(_) => {
                Metrics::inc(&state.metrics.body_timeouts);
                tracing::debug!("backup upload stalled or too slow; abandoned");
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
        if piece.len() > len - bytes.len() {
            return Err(status(
                StatusCode::BAD_REQUEST,
                "body longer than Content-Length\n",
            ));
        }
        bytes.extend_from_slice(&piece);
        last_piece = Instant::now();
    }
    if bytes.len() != len {
        return Err(status(
            StatusCode::BAD_REQUEST,
            "body shorter than Content-Length\n",
        ));
    }
    Ok(bytes)
}

/// `PUT /v1/backup`: `204` with the stored `seq`; `409` with the stored
/// `seq` when it is not older; `400`, `401`, `408`, `411`, `413`, `429`,
/// `503` as §11.13 says.
async fn upload(State(state): State<BackupState>, headers: HeaderMap, body: Body) -> Response {
    let BackupState { app, gate } = state;
    let account = match admit(&app, &gate, &headers, true).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let len = match declared_length(&headers) {
        Ok(len) => len,
        Err(response) => return *response,
    };
    let _held = match gate.reserve(len) {
        Ok(permit) => permit,
        Err(response) => return *response,
    };
    let sealed = match read_body(&app, body, len).await {
        Ok(sealed) => sealed,
        Err(response) => return response,
    };
    let seq = match BackupHeader::parse(&sealed) {
        Ok(header) => header.seq,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a sealed backup: {error}\n"),
            )
                .into_response()
        }
    };
    if i64::try_from(seq).is_err() {
        return status(StatusCode::BAD_REQUEST, "backup seq above 2^63 - 1\n");
    }
    let stored = app.store.put_backup(account, seq, &sealed, unix_now());
    let outcome = match bounded(BACKUP_STORE_DEADLINE, "put_backup", stored).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    match outcome {
        Ok(BackupPut::Stored | BackupPut::Repeated) => {
            (StatusCode::NO_CONTENT, [seq_header(seq)]).into_response()
        }
        Ok(BackupPut::Stale { stored_seq }) => (
            StatusCode::CONFLICT,
            [seq_header(stored_seq)],
            "a backup with this seq or a greater one is stored\n",
        )
            .into_response(),
        // Deleted between the token check and the write.
        Err(StoreError::UnknownAccount) => {
            status(StatusCode::UNAUTHORIZED, "token unknown or expired\n")
        }
        Err(e) => internal(&e, "put_backup"),
    }
}

/// `GET /v1/backup`: `200` with the bytes and their `seq`; `404` if none.
async fn download(State(state): State<BackupState>, headers: HeaderMap) -> Response {
    let BackupState { app, gate } = state;
    let account = match admit(&app, &gate, &headers, false).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let size = match bounded(
        app.limits.request_deadline,
        "backup_size",
        app.store.backup_size(account),
    )
    .await
    {
        Ok(size) => size,
        Err(response) => return response,
    };
    let len = match size {
        Ok(Some((_, len))) => usize::try_from(len).unwrap_or(usize::MAX),
        Ok(None) => return status(StatusCode::NOT_FOUND, "no backup\n"),
        Err(e) => return internal(&e, "backup_size"),
    };
    let held = match gate.reserve(len) {
        Ok(permit) => permit,
        Err(response) => return *response,
    };
    let stored = match bounded(
        BACKUP_STORE_DEADLINE,
        "get_backup",
        app.store.get_backup(account),
    )
    .await
    {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let stored = match stored {
        Ok(Some(stored)) => stored,
        Ok(None) => return status(StatusCode::NOT_FOUND, "no backup\n"),
        Err(e) => return internal(&e, "get_backup"),
    };
    let size = stored.bytes.len();
    let seq = stored.seq;
    // The memory reservation lasts until the last piece is handed on.
    let bytes = Bytes::from(stored.bytes);
    let pieces = futures_util::stream::unfold(
        (bytes, 0usize, Some(held)),
        |(bytes, at, held)| async move {
            if at >= bytes.len() {
                drop(held);
                return None;
            }
            let end = (at + DOWNLOAD_PIECE_BYTES).min(bytes.len());
            let piece = bytes.slice(at..end);
            Some((Ok::<Bytes, std::io::Error>(piece), (bytes, end, held)))
        },
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            seq_header(seq),
        ],
        Body::from_stream(pieces),
    )
        .into_response()
}

/// `DELETE /v1/backup`: `204` if a backup was deleted, `404` if none.
async fn remove(State(state): State<BackupState>, headers: HeaderMap) -> Response {
    let BackupState { app, gate } = state;
    let account = match admit(&app, &gate, &headers, true).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let deleted = match bounded(
        app.limits.request_deadline,
        "delete_backup",
        app.store.delete_backup(account),
    )
    .await
    {
        Ok(deleted) => deleted,
        Err(response) => return response,
    };
    match deleted {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => status(StatusCode::NOT_FOUND, "no backup\n"),
        Err(e) => internal(&e, "delete_backup"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(len: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_str(len).expect("header"),
        );
        headers
    }

    #[test]
    fn only_bucket_lengths_are_read() {
        let code = |headers: &HeaderMap| declared_length(headers).map_err(|r| r.status());
        assert_eq!(code(&HeaderMap::new()), Err(StatusCode::LENGTH_REQUIRED));
        assert_eq!(code(&with_length("16384")), Ok(16_384));
        assert_eq!(code(&with_length("16777216")), Ok(MAX_BACKUP_BYTES));
        assert_eq!(code(&with_length("16385")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(code(&with_length("8192")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(code(&with_length("0")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(code(&with_length("x")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            code(&with_length("33554432")),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(
            code(&with_length("99999999999999999999999")),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn the_memory_budget_refuses_past_its_bytes() {
        let gate = BackupGate::new();
        let held: Vec<_> = (0..8)
            .map(|_| gate.reserve(MAX_BACKUP_BYTES).expect("within the budget"))
            .collect();
        let refused = gate.reserve(MIN_BYTES).expect_err("the budget is spent");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(held);
        assert!(gate.reserve(MIN_BYTES).is_ok(), "released with the permits");
    }

    const MIN_BYTES: usize = umbra_wire::backup::MIN_BACKUP_BYTES;

    #[test]
    fn writes_are_limited_per_account() {
        let gate = BackupGate::new();
        let alice = AccountId::from_bytes([1; 16]);
        let bob = AccountId::from_bytes([2; 16]);
        for _ in 0..BACKUP_WRITES_PER_MINUTE {
            assert!(gate.check(true, alice).is_ok());
        }
        let refused = gate.check(true, alice).expect_err("over the budget");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key(header::RETRY_AFTER));
        assert!(gate.check(false, alice).is_ok(), "reads have their own");
        assert!(gate.check(true, bob).is_ok(), "another account has its own");
    }
}
