//! Where one connection stands in authentication: a typed state machine
//! (`Fresh → Registering | LoggingIn → LoggedIn → … → Authenticated`) in
//! the style of
//! rustls's handshake states, where every transition consumes the state it
//! leaves.
//!
//! The half-finished OPAQUE exchange lives here, on the connection, and
//! nowhere else: at most one per connection, dropped with it. Nothing
//! relay-wide grows with the number of started exchanges, so a flood of
//! `LoginStart`s can cost its sender connections (which the connection caps
//! bound) but never another client's login.
//!
//! Must never: leave `Authenticated` through a pre-authentication request,
//! let a finish complete an exchange it did not start, keep an exchange past
//! [`EXCHANGE_TIMEOUT`], or print the OPAQUE login state or a username in
//! `Debug`.

use std::fmt;
use std::time::{Duration, Instant};

use umbra_wire::{AccountId, Address, Username};

use super::opaque::LoginState;
use super::tokens::TokenHash;
use crate::metrics::LoginAttempt;
use crate::store::{AccountRecord, PasswordFile};

/// How long a started login or registration may wait for its finish
/// message. OPAQUE gives the server no message on a failed client-side
/// finish, so an exchange must age out; 60 s is far more than one
/// client-side Argon2id evaluation and one round trip take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A registration between `RegisterStart` and `RegisterFinish`.
pub struct Registering {
    /// The name asked for; the finish must repeat it.
    pub username: Username,
    /// The account id fixed at the start (it is the OPAQUE credential id).
    pub account: AccountId,
    started: Instant,
}

impl Registering {
    /// A registration started at `now`.
    pub fn new(username: Username, account: AccountId, now: Instant) -> Self {
        Registering {
            username,
            account,
            started: now,
        }
    }
}

/// A login between `LoginStart` and `LoginFinish`.
pub struct LoggingIn {
    /// The id the relay chose and sent in `LoginResponse`.
    pub login_id: u64,
    /// OPAQUE's server state for the finish.
    pub state: LoginState,
    /// The account and the record the proof is checked against; `None` for
    /// an unknown username (fake record): the finish always fails. The
    /// finish issues a token only if this record is still the account's (a
    /// password change meanwhile ends the login: PROTOCOL.md 11.3).
    pub record: Option<AccountRecord>,
    /// Counts the login as a failed authentication unless it succeeds; so a
    /// login replaced, timed out or dropped with its connection counts too.
    pub attempt: LoginAttempt,
    started: Instant,
}

impl LoggingIn {
    /// A login started at `now`.
    pub fn new(
        login_id: u64,
        state: LoginState,
        record: Option<AccountRecord>,
        attempt: LoginAttempt,
        now: Instant,
    ) -> Self {
        LoggingIn {
            login_id,
            state,
            record,
            attempt,
            started: now,
        }
    }
}

/// A password login this connection completed (`LoginDone` answered) and
/// has not used since: what `LoginEnrol` turns into a new device
/// (PROTOCOL.md 15.6). Only on this connection, only once, only within
/// [`EXCHANGE_TIMEOUT`] of the `LoginDone`.
pub struct LoggedIn {
    /// The account the password proved.
    pub account: AccountId,
    /// The record the proof was checked against: an enrolment after a
    /// password change (record replaced) enrols nothing.
    pub proven: PasswordFile,
    /// The login's token (hash), which an enrolment revokes in favour of
    /// the new device's.
    pub token: TokenHash,
    done: Instant,
}

impl LoggedIn {
    /// A login that finished at `now`.
    pub fn new(account: AccountId, proven: PasswordFile, token: TokenHash, now: Instant) -> Self {
        LoggedIn {
            account,
            proven,
            token,
            done: now,
        }
    }
}

/// What an authenticated connection acts as.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    /// The device.
    pub address: Address,
    /// The token it presented (hash), for `Logout` and re-checks.
    pub token: TokenHash,
    /// When that token expires (Unix seconds): the connection closes then.
    pub expires_at: u64,
}

/// Where a connection stands in authentication.
#[derive(Default)]
pub enum AuthPhase {
    /// Nothing started (or the last exchange ended).
    #[default]
    Fresh,
    /// `RegisterStart` answered; waiting for `RegisterFinish`.
    Registering(Registering),
    /// `LoginStart` answered; waiting for `LoginFinish`.
    LoggingIn(LoggingIn),
    /// `LoginDone` answered; a `LoginEnrol` may follow.
    LoggedIn(LoggedIn),
    /// `Authenticate` succeeded. Final: only closing the connection ends it.
    Authenticated(Authenticated),
}

impl fmt::Debug for AuthPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: the login state and the username stay out of logs.
        f.write_str(match self {
            AuthPhase::Fresh => "Fresh",
            AuthPhase::Registering(_) => "Registering",
            AuthPhase::LoggingIn(_) => "LoggingIn",
            AuthPhase::LoggedIn(_) => "LoggedIn",
            AuthPhase::Authenticated(_) => "Authenticated",
        })
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    /// A pre-authentication request on an authenticated connection.
    #[error("connection is already authenticated")]
    AlreadyAuthenticated,
    /// A finish that matches no exchange in progress (none, another kind,
    /// another id or username, or timed out).
    #[error("no matching exchange in progress")]
    UnknownExchange,
}

impl AuthPhase {
    /// The identity, once authenticated.
    pub fn authenticated(&self) -> Option<&Authenticated> {
        match self {
            AuthPhase::Authenticated(me) => Some(me),
            _ => None,
        }
    }

    /// `RegisterStart` answered: any exchange in progress is dropped (one
    /// at a time per connection; the newest wins).
    pub fn begin_registration(self, pending: Registering) -> (AuthPhase, Result<(), PhaseError>) {
        self.begin(AuthPhase::Registering(pending))
    }

    /// `LoginStart` answered: any exchange in progress is dropped, so a
    /// `LoginFinish` for the previous `login_id` gets `UnknownExchange`.
    pub fn begin_login(self, pending: LoggingIn) -> (AuthPhase, Result<(), PhaseError>) {
        self.begin(AuthPhase::LoggingIn(pending))
    }

    fn begin(self, next: AuthPhase) -> (AuthPhase, Result<(), PhaseError>) {
        match self {
            AuthPhase::Authenticated(_) => (self, Err(PhaseError::AlreadyAuthenticated)),
            _ => (next, Ok(())),
        }
    }

    /// `RegisterFinish`: hands back the registration if it is for
    /// `username` and in time. The exchange ends either way (`Fresh`): a
    /// wrong finish does not leave a start open for another try.
    pub fn finish_registration(
        self,
        username: &Username,
        now: Instant,
    ) -> (AuthPhase, Result<Registering, PhaseError>) {
        match self {
            AuthPhase::Authenticated(_) => (self, Err(PhaseError::AlreadyAuthenticated)),
            AuthPhase::Registering(reg)
                if reg.username == *username && in_time(reg.started, now) =>
            {
                (AuthPhase::Fresh, Ok(reg))
            }
            _ => (AuthPhase::Fresh, Err(PhaseError::UnknownExchange)),
        }
    }

    /// `LoginFinish`: hands back the login if `login_id` is the current one
    /// and in time. The exchange ends either way (`Fresh`).
    pub fn finish_login(
        self,
        login_id: u64,
        now: Instant,
    ) -> (AuthPhase, Result<LoggingIn, PhaseError>) {
        match self {
            AuthPhase::Authenticated(_) => (self, Err(PhaseError::AlreadyAuthenticated)),
            AuthPhase::LoggingIn(login)
                if login.login_id == login_id && in_time(login.started, now) =>
            {
                (AuthPhase::Fresh, Ok(login))
            }
            _ => (AuthPhase::Fresh, Err(PhaseError::UnknownExchange)),
        }
    }

    /// `LoginDone` sent: the login stays on the connection for one
    /// `LoginEnrol`. Any other start, `Authenticate` or finish drops it.
    pub fn logged_in(self, done: LoggedIn) -> (AuthPhase, Result<(), PhaseError>) {
        self.begin(AuthPhase::LoggedIn(done))
    }

    /// `LoginEnrol`: hands back the completed login if it is in time. It
    /// ends either way (`Fresh`): one login enrols at most one device.
    pub fn take_login(self, now: Instant) -> (AuthPhase, Result<LoggedIn, PhaseError>) {
        match self {
            AuthPhase::Authenticated(_) => (self, Err(PhaseError::AlreadyAuthenticated)),
            AuthPhase::LoggedIn(done) if in_time(done.done, now) => (AuthPhase::Fresh, Ok(done)),
            _ => (AuthPhase::Fresh, Err(PhaseError::UnknownExchange)),
        }
    }

    /// `Authenticate` succeeded: any exchange in progress is dropped.
    pub fn authenticate(self, me: Authenticated) -> (AuthPhase, Result<(), PhaseError>) {
        self.begin(AuthPhase::Authenticated(me))
    }
}

fn in_time(started: Instant, now: Instant) -> bool {
    now.saturating_duration_since(started) <= EXCHANGE_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::opaque::OpaqueServer;
    use crate::metrics::Metrics;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use umbra_test_support::opaque_flow::PendingLogin;
    use umbra_wire::SessionToken;

    fn name(s: &str) -> Username {
        Username::parse(s).expect("valid username")
    }

    fn login(id: u64, now: Instant) -> LoggingIn {
        let mut rng = ChaCha20Rng::seed_from_u64(id);
        let server = OpaqueServer::generate(&mut rng);
        let (_client, ke1) = PendingLogin::start(b"pw").expect("start");
        let (_, state) = server
            .login_start(&mut rng, None, &ke1, b"unknown")
            .expect("fake record login");
        LoggingIn::new(
            id,
            state,
            None,
            LoginAttempt::start(&Metrics::default()),
            now,
        )
    }

    fn authenticated() -> Authenticated {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        Authenticated {
            address: Address::primary(AccountId::random(&mut rng)),
            token: TokenHash::of(&SessionToken::random(&mut rng)),
            expires_at: u64::MAX,
        }
    }

    #[test]
    fn a_new_login_start_replaces_the_previous_one() {
        let now = Instant::now();
        let (phase, ok) = AuthPhase::Fresh.begin_login(login(1, now));
        ok.expect("fresh may log in");
        let (phase, ok) = phase.begin_login(login(2, now));
        ok.expect("a second start replaces the first");
        let (phase, old) = phase.finish_login(1, now);
        assert_eq!(old.err(), Some(PhaseError::UnknownExchange));
        assert!(
            matches!(phase, AuthPhase::Fresh),
            "a wrong finish ends the exchange"
        );
    }

    #[test]
    fn finish_matches_id_kind_username_and_time() {
        let now = Instant::now();
        let (phase, _) = AuthPhase::Fresh.begin_login(login(7, now));
        let (phase, done) = phase.finish_login(7, now + EXCHANGE_TIMEOUT);
        assert_eq!(done.expect("in time").login_id, 7);
        assert!(matches!(phase, AuthPhase::Fresh));

        let (phase, _) = AuthPhase::Fresh.begin_login(login(8, now));
        let (_, late) = phase.finish_login(8, now + EXCHANGE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(late.err(), Some(PhaseError::UnknownExchange), "timed out");

        let reg = Registering::new(
            name("alice"),
            AccountId::random(&mut rand::rngs::OsRng),
            now,
        );
        let (phase, _) = AuthPhase::Fresh.begin_registration(reg);
        let (phase, wrong) = phase.finish_login(1, now);
        assert_eq!(wrong.err(), Some(PhaseError::UnknownExchange), "wrong kind");
        let (_, gone) = phase.finish_registration(&name("alice"), now);
        assert_eq!(
            gone.err(),
            Some(PhaseError::UnknownExchange),
            "ended by the wrong finish"
        );

        let reg = Registering::new(
            name("alice"),
            AccountId::random(&mut rand::rngs::OsRng),
            now,
        );
        let (phase, _) = AuthPhase::Fresh.begin_registration(reg);
        let (_, other) = phase.finish_registration(&name("bob"), now);
        assert_eq!(other.err(), Some(PhaseError::UnknownExchange), "other name");
    }

    #[test]
    fn a_completed_login_enrols_once_and_in_time() {
        let now = Instant::now();
        let done = || {
            LoggedIn::new(
                AccountId::random(&mut ChaCha20Rng::seed_from_u64(12)),
                PasswordFile::new(vec![1; 8]),
                TokenHash::of(&SessionToken::random(&mut ChaCha20Rng::seed_from_u64(13))),
                now,
            )
        };
        let (phase, ok) = AuthPhase::Fresh.logged_in(done());
        ok.expect("fresh may hold a login");
        let (phase, taken) = phase.take_login(now + EXCHANGE_TIMEOUT);
        assert!(taken.is_ok(), "in time");
        let (_, again) = phase.take_login(now);
        assert_eq!(again.err(), Some(PhaseError::UnknownExchange), "only once");

        let (phase, _) = AuthPhase::Fresh.logged_in(done());
        let (_, late) = phase.take_login(now + EXCHANGE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(late.err(), Some(PhaseError::UnknownExchange), "too late");

        let (phase, _) = AuthPhase::Fresh.logged_in(done());
        let (phase, _) = phase.begin_login(login(5, now));
        let (_, replaced) = phase.take_login(now);
        assert_eq!(
            replaced.err(),
            Some(PhaseError::UnknownExchange),
            "a new start drops the completed login"
        );

        let (_, none) = AuthPhase::Fresh.take_login(now);
        assert_eq!(none.err(), Some(PhaseError::UnknownExchange), "no login");
    }

    #[test]
    fn authenticated_is_final_for_every_pre_authentication_step() {
        let now = Instant::now();
        let me = authenticated();
        let (phase, ok) = AuthPhase::Fresh.begin_login(login(3, now));
        ok.expect("start");
        let (phase, ok) = phase.authenticate(me);
        ok.expect("authenticate drops the login");
        let (phase, r) = phase.begin_login(login(4, now));
        assert_eq!(r, Err(PhaseError::AlreadyAuthenticated));
        let reg = Registering::new(
            name("carol"),
            AccountId::random(&mut rand::rngs::OsRng),
            now,
        );
        let (phase, r) = phase.begin_registration(reg);
        assert_eq!(r, Err(PhaseError::AlreadyAuthenticated));
        let (phase, r) = phase.finish_login(4, now);
        assert_eq!(r.err(), Some(PhaseError::AlreadyAuthenticated));
        let (phase, r) = phase.finish_registration(&name("carol"), now);
        assert_eq!(r.err(), Some(PhaseError::AlreadyAuthenticated));
        let (phase, r) = phase.authenticate(authenticated());
        assert_eq!(r, Err(PhaseError::AlreadyAuthenticated));
        let kept = phase.authenticated().expect("still authenticated");
        assert_eq!(kept.address, me.address, "the first identity is kept");
        assert_eq!(format!("{phase:?}"), "Authenticated");
    }
}
