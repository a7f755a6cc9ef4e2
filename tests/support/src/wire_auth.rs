//! OPAQUE registration and login over a [`WireClient`]: the message
//! sequence of `RegisterStart`/`RegisterFinish` and `LoginStart`/
//! `LoginFinish`, with the client's cryptography from [`crate::opaque_flow`].
//!
//! Two levels: `register`/`login`/`login_attempt` for suites that want an
//! account or a verdict, and `register_exchange`/`login_exchange` that hand
//! back the relay's raw answers (a refusal's `retry_after_secs`, the size
//! of a `CredentialResponse`) for suites that assert on them.
//!
//! Must never: run the key-stretching function on an async worker thread,
//! or report a login as done that the client could not finish itself.

use opaque_ke::CredentialResponse;
use umbra_wire::opaque_suite::UmbraOpaqueSuite;
use umbra_wire::{self as wire, AccountId, RelayFrame, Request, Response, SessionToken, Username};

use crate::opaque_flow::{decoy_finalization, OpaqueFailure, PendingLogin, PendingRegistration};
use crate::wire_client::{unexpected, WireClient, WireClientError};

impl From<OpaqueFailure> for WireClientError {
    fn from(failure: OpaqueFailure) -> WireClientError {
        WireClientError::Opaque(failure.0)
    }
}

/// What a login yields.
#[derive(Debug, Clone)]
pub struct LoginDone {
    /// The bearer token for `Authenticate`.
    pub token: SessionToken,
    /// The account logged into.
    pub account: AccountId,
    /// When the token expires, Unix seconds.
    pub expires_at: u64,
}

/// The relay's half of a login exchange, kept so a suite can compare the
/// shape of answers for known and unknown users.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The `login_id` from `LoginResponse`.
    pub login_id: u64,
    /// The raw opaque-ke `CredentialResponse` bytes.
    pub opaque_response: Vec<u8>,
    /// Length of the `RelayFrame` that carried them (re-encoded; decoding
    /// is canonical, so this is the length received).
    pub response_frame_len: usize,
    /// `Ok` with the login, or the failure (client-side OPAQUE failure or
    /// the relay's refusal of `LoginFinish`).
    pub outcome: Result<LoginDone, WireClientError>,
}

/// How a registration ended, as the relay answered it.
#[derive(Debug, Clone, PartialEq)]
pub enum RegisterExchange {
    /// The relay answered `RegisterStart` with this instead of
    /// `RegisterResponse` (a refusal, usually).
    Stopped(Response),
    /// The relay's answer to `RegisterFinish` (`RegisterDone` on success).
    Finished(Response),
}

/// How a login ended, as the relay answered it.
#[derive(Debug)]
pub enum LoginExchange {
    /// The relay answered `LoginStart` with this instead of
    /// `LoginResponse` (a refusal, usually).
    Stopped(Response),
    /// Both round trips happened.
    Finished {
        /// The `login_id` from `LoginResponse`.
        login_id: u64,
        /// The raw opaque-ke `CredentialResponse` bytes.
        opaque_response: Vec<u8>,
        /// Length of the `RelayFrame` that carried them (re-encoded;
        /// decoding is canonical, so this is the length received).
        response_frame_len: usize,
        /// Why the client could not finish (wrong password or unknown
        /// user); a decoy finalization was sent instead.
        client_failure: Option<OpaqueFailure>,
        /// The relay's answer to `LoginFinish`.
        verdict: Response,
    },
}

impl WireClient {
    /// OPAQUE registration of `username` with `password`; returns the new
    /// account id. A refusal (e.g. `UsernameTaken`) is `Err(Refused)`.
    pub async fn register(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<AccountId, WireClientError> {
        match self
            .register_exchange(username, password.as_bytes())
            .await?
        {
            RegisterExchange::Stopped(other) => Err(unexpected("RegisterResponse", other)),
            RegisterExchange::Finished(Response::RegisterDone { account }) => Ok(account),
            RegisterExchange::Finished(other) => Err(unexpected("RegisterDone", other)),
        }
    }

    /// A registration that returns the relay's last answer as it came.
    /// `Err` only if the exchange itself broke (socket, timeout, a client
    /// OPAQUE step on a malformed `RegisterResponse`).
    pub async fn register_exchange(
        &mut self,
        username: &str,
        password: &[u8],
    ) -> Result<RegisterExchange, WireClientError> {
        let username = Username::parse(username)?;
        let (pending, opaque_request) = PendingRegistration::start(password)?;
        let reply = self
            .request(Request::RegisterStart {
                username: username.clone(),
                opaque_request,
            })
            .await?;
        let opaque_response = match reply {
            Response::RegisterResponse { opaque_response } => opaque_response,
            other => return Ok(RegisterExchange::Stopped(other)),
        };
        let stretch = self.stretch;
        // Argon2 is deliberately slow: keep it off the async worker threads.
        let opaque_upload =
            tokio::task::spawn_blocking(move || pending.finish(&opaque_response, stretch))
                .await??;
        let verdict = self
            .request(Request::RegisterFinish {
                username,
                opaque_upload,
            })
            .await?;
        Ok(RegisterExchange::Finished(verdict))
    }

    /// OPAQUE login; returns the token and account. A wrong password or an
    /// unknown user is an error (client-side `Opaque`, or the relay's
    /// `Refused { AuthFailed }`).
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<LoginDone, WireClientError> {
        self.login_attempt(username, password).await?.outcome
    }

    /// A full login exchange that keeps the relay's `LoginResponse` for
    /// inspection. `Err` only if the exchange could not even start; the
    /// login's own success or failure is in [`LoginAttempt::outcome`].
    ///
    /// When the client-side OPAQUE step fails (as it must for a wrong
    /// password or an unknown user), a syntactically valid but wrong
    /// finalization is still sent, so the relay's verdict is observed too:
    /// it must answer `AuthFailed`, the same way in both cases.
    pub async fn login_attempt(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<LoginAttempt, WireClientError> {
        let (login_id, opaque_response, response_frame_len, client_failure, verdict) =
            match self.login_exchange(username, password.as_bytes()).await? {
                LoginExchange::Stopped(other) => return Err(unexpected("LoginResponse", other)),
                LoginExchange::Finished {
                    login_id,
                    opaque_response,
                    response_frame_len,
                    client_failure,
                    verdict,
                } => (
                    login_id,
                    opaque_response,
                    response_frame_len,
                    client_failure,
                    verdict,
                ),
            };
        let outcome = match (verdict, client_failure) {
            (
                Response::LoginDone {
                    token,
                    account,
                    expires_at,
                },
                None,
            ) => Ok(LoginDone {
                token,
                account,
                expires_at,
            }),
            (Response::LoginDone { .. }, Some(failure)) => Err(WireClientError::Opaque(format!(
                "relay accepted a finalization the client could not produce ({})",
                WireClientError::from(failure)
            ))),
            (Response::Error { code, message, .. }, _) => {
                Err(WireClientError::Refused { code, message })
            }
            (other, _) => Err(unexpected("LoginDone", other)),
        };
        Ok(LoginAttempt {
            login_id,
            opaque_response,
            response_frame_len,
            outcome,
        })
    }

    /// A login that returns the relay's answers as they came. `Err` only if
    /// the exchange itself broke (socket, timeout, a `CredentialResponse`
    /// that does not parse).
    pub async fn login_exchange(
        &mut self,
        username: &str,
        password: &[u8],
    ) -> Result<LoginExchange, WireClientError> {
        let username = Username::parse(username)?;
        let (pending, opaque_request) = PendingLogin::start(password)?;
        let request_id = self
            .send_request(Request::LoginStart {
                username,
                opaque_request,
            })
            .await?;
        let reply = self.reply_to(request_id).await?;
        let response_frame_len = wire::encode_relay(&RelayFrame::Response {
            request_id,
            response: reply.clone(),
        })
        .map_err(WireClientError::Encode)?
        .len();
        let (login_id, opaque_response) = match reply {
            Response::LoginResponse {
                login_id,
                opaque_response,
            } => (login_id, opaque_response),
            other => return Ok(LoginExchange::Stopped(other)),
        };
        // A response that does not even parse is the relay's fault, not a
        // failed login: no decoy for it.
        CredentialResponse::<UmbraOpaqueSuite>::deserialize(&opaque_response)
            .map_err(|e| WireClientError::Opaque(e.to_string()))?;
        let stretch = self.stretch;
        let response = opaque_response.clone();
        let finished =
            tokio::task::spawn_blocking(move || pending.finish(&response, stretch)).await?;
        let (finalization, client_failure) = match finished {
            Ok(bytes) => (bytes, None),
            // The client could not open the envelope. Send a well-formed
            // finalization anyway (a fresh client's, which cannot verify)
            // so the relay's answer is observed.
            Err(failure) => (decoy_finalization()?, Some(failure)),
        };
        let verdict = self
            .request(Request::LoginFinish {
                login_id,
                opaque_finalization: finalization,
            })
            .await?;
        Ok(LoginExchange::Finished {
            login_id,
            opaque_response,
            response_frame_len,
            client_failure,
            verdict,
        })
    }
}
