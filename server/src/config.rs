//! The relay's configuration: command-line flags, environment variables and
//! an optional TOML file, merged into one validated [`RelayConfig`].
//!
//! Precedence is flag/environment over file over built-in default, key by key.
//! This module only parses and validates; it must never open the store, bind a
//! socket or read a TLS key — those belong to the code that uses the values.
//! The database URL may carry a password, so [`RelayConfig`]'s `Debug` output
//! and [`RelayConfig::store_description`] redact it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use umbra_wire as wire;

use crate::store::StoreLimits;

/// Default listen address: loopback, so a relay started without flags never
/// accepts plain-text connections from the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Default data directory for the embedded SQLite store and the OPAQUE setup.
pub const DEFAULT_DATA_DIR: &str = "./umbra-relay-data";

/// Command line of `umbra-relay`.
#[derive(Debug, Parser)]
#[command(
    name = "umbra-relay",
    version,
    about = "umbra relay: stores and forwards ciphertext it cannot read"
)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; without a subcommand the relay serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `umbra-relay`.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the relay (the default).
    Serve,
}

/// Every setting that can come from a flag, an environment variable or the
/// TOML file. `None` means "not given here"; [`RelayConfig::resolve`] fills
/// defaults.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML file with the same keys as the flags (snake_case).
    #[arg(long, global = true, env = "UMBRA_RELAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7878].
    #[arg(long, env = "UMBRA_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite database and the OPAQUE server setup
    /// [default: ./umbra-relay-data].
    #[arg(long, global = true, env = "UMBRA_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Secret file holding the OPAQUE server setup (OPRF seed); created 0600 on
    /// first start, never stored in the database. Back it up with the
    /// database; every node sharing a database needs the same file
    /// [default: DATA_DIR/opaque-server-key].
    #[arg(long, global = true, env = "UMBRA_RELAY_OPAQUE_KEY_FILE")]
    pub opaque_key_file: Option<PathBuf>,
    /// postgres://... to use PostgreSQL instead of embedded SQLite.
    #[arg(
        long,
        global = true,
        env = "UMBRA_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// PEM certificate chain; enables TLS together with --tls-key.
    #[arg(long, env = "UMBRA_RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "UMBRA_RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// tracing filter (e.g. info, umbra_relay=debug); RUST_LOG wins when set
    /// [default: info].
    #[arg(long, global = true, env = "UMBRA_RELAY_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Largest sealed envelope accepted in a Send, in bytes [default: 98304].
    #[arg(long)]
    pub max_envelope_bytes: Option<usize>,
    /// Largest WebSocket message accepted, in bytes [default: 262144].
    #[arg(long)]
    pub max_frame_bytes: Option<usize>,
    /// Most undelivered messages kept per recipient device [default: 10000].
    #[arg(long)]
    pub max_queue_len: Option<u64>,
    /// Days an undelivered message is kept before it is purged [default: 30].
    #[arg(long)]
    pub message_ttl_days: Option<u32>,
    /// Largest blob accepted by POST /v1/blobs, in bytes [default: 104857600].
    #[arg(long)]
    pub blob_max_bytes: Option<u64>,
    /// Days a blob is kept [default: 30].
    #[arg(long)]
    pub blob_ttl_days: Option<u32>,
    /// Most blobs one account may hold at once [default: 256].
    #[arg(long)]
    pub max_blobs_per_account: Option<u64>,
    /// Most blob bytes one account may hold at once [default: 268435456].
    #[arg(long)]
    pub max_blob_bytes_per_account: Option<u64>,
    /// Envelope bytes one sender account may have queued per hour, all
    /// recipients together; 0 turns the budget off [default: 67108864].
    #[arg(long)]
    pub sender_bytes_per_hour: Option<u64>,
    /// Days a released username (rename, deletion) stays unavailable to
    /// everyone; 0 turns the quarantine off [default: 30].
    #[arg(long)]
    pub name_quarantine_days: Option<u32>,
    /// Days a session token stays valid [default: 30].
    #[arg(long)]
    pub token_ttl_days: Option<u32>,
    /// LoginStart and RegisterStart requests allowed per source address (IPv4
    /// address or IPv6 /64) per minute [default: 30].
    #[arg(long)]
    pub auth_per_ip_per_minute: Option<u32>,
    /// LoginStart requests allowed per username from one source address per
    /// minute [default: 10].
    #[arg(long)]
    pub auth_per_username_per_minute: Option<u32>,
    /// LoginStart requests allowed per username from all addresses together per
    /// minute: slows guessing spread over many addresses [default: 120].
    #[arg(long)]
    pub logins_per_username_per_minute: Option<u32>,
    /// Prekey bundle fetches allowed per requesting account per minute [default: 60].
    #[arg(long)]
    pub bundle_fetches_per_minute: Option<u32>,
    /// ResolveUsername requests allowed per requesting account per minute [default: 60].
    #[arg(long)]
    pub username_resolves_per_minute: Option<u32>,
    /// Most one-time prekeys stored per device [default: 1000].
    #[arg(long)]
    pub max_prekeys_per_device: Option<u32>,
    /// When a device's one-time prekey count falls below this, it is told PreKeysLow
    /// [default: 20].
    #[arg(long)]
    pub prekey_low_water: Option<u32>,
    /// Seconds without any frame from a client before its connection is closed
    /// [default: 120].
    #[arg(long)]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds between WebSocket pings the relay sends [default: 30].
    #[arg(long)]
    pub ping_interval_secs: Option<u64>,
    /// Seconds a new WebSocket may take to authenticate (login included) before it is
    /// closed with Closing{NotAuthenticated} [default: 30].
    #[arg(long)]
    pub auth_timeout_secs: Option<u64>,
    /// Seconds a connection's writes may make no progress (a client that stopped
    /// reading) before it is closed [default: 20].
    #[arg(long)]
    pub write_stall_timeout_secs: Option<u64>,
    /// Seconds between purges of expired messages, tokens and blobs [default: 600].
    #[arg(long)]
    pub expiry_interval_secs: Option<u64>,
    /// Most TCP connections open at once, HTTP and WebSocket together; further
    /// ones are answered 503 [default: 10000].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one IPv4 address or IPv6 /64; 0 turns
    /// the cap off (behind a proxy) [default: 64].
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a client has to send complete request headers, from connecting
    /// and between requests on a kept-alive connection [default: 10].
    #[arg(long)]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a blob upload may go without receiving a byte [default: 30].
    #[arg(long)]
    pub blob_idle_timeout_secs: Option<u64>,
    /// Slowest average blob upload rate accepted, in bytes per second, after
    /// the first blob_idle_timeout_secs [default: 16384].
    #[arg(long)]
    pub blob_min_bytes_per_sec: Option<u64>,
    /// Ephemeral frames (typing notices) allowed per sending account per minute
    /// [default: 120].
    #[arg(long)]
    pub ephemeral_per_minute: Option<u32>,
    /// WebSocket read and write buffer size per connection, in bytes [default: 1024].
    #[arg(long)]
    pub websocket_buffer_bytes: Option<usize>,
}

impl Settings {
    /// Fills every key not given here from `fallback` (the file).
    fn or(self, fallback: Settings) -> Settings {
        Settings {
            config: self.config,
            listen: self.listen.or(fallback.listen),
            data_dir: self.data_dir.or(fallback.data_dir),
            opaque_key_file: self.opaque_key_file.or(fallback.opaque_key_file),
            database_url: self.database_url.or(fallback.database_url),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            log_level: self.log_level.or(fallback.log_level),
            max_envelope_bytes: self.max_envelope_bytes.or(fallback.max_envelope_bytes),
            max_frame_bytes: self.max_frame_bytes.or(fallback.max_frame_bytes),
            max_queue_len: self.max_queue_len.or(fallback.max_queue_len),
            message_ttl_days: self.message_ttl_days.or(fallback.message_ttl_days),
            blob_max_bytes: self.blob_max_bytes.or(fallback.blob_max_bytes),
            blob_ttl_days: self.blob_ttl_days.or(fallback.blob_ttl_days),
            max_blobs_per_account: self
                .max_blobs_per_account
                .or(fallback.max_blobs_per_account),
            max_blob_bytes_per_account: self
                .max_blob_bytes_per_account
                .or(fallback.max_blob_bytes_per_account),
            sender_bytes_per_hour: self
                .sender_bytes_per_hour
                .or(fallback.sender_bytes_per_hour),
            name_quarantine_days: self.name_quarantine_days.or(fallback.name_quarantine_days),
            token_ttl_days: self.token_ttl_days.or(fallback.token_ttl_days),
            auth_per_ip_per_minute: self
                .auth_per_ip_per_minute
                .or(fallback.auth_per_ip_per_minute),
            auth_per_username_per_minute: self
                .auth_per_username_per_minute
                .or(fallback.auth_per_username_per_minute),
            logins_per_username_per_minute: self
                .logins_per_username_per_minute
                .or(fallback.logins_per_username_per_minute),
            bundle_fetches_per_minute: self
                .bundle_fetches_per_minute
                .or(fallback.bundle_fetches_per_minute),
            username_resolves_per_minute: self
                .username_resolves_per_minute
                .or(fallback.username_resolves_per_minute),
            max_prekeys_per_device: self
                .max_prekeys_per_device
                .or(fallback.max_prekeys_per_device),
            prekey_low_water: self.prekey_low_water.or(fallback.prekey_low_water),
            idle_timeout_secs: self.idle_timeout_secs.or(fallback.idle_timeout_secs),
            ping_interval_secs: self.ping_interval_secs.or(fallback.ping_interval_secs),
            auth_timeout_secs: self.auth_timeout_secs.or(fallback.auth_timeout_secs),
            write_stall_timeout_secs: self
                .write_stall_timeout_secs
                .or(fallback.write_stall_timeout_secs),
            expiry_interval_secs: self.expiry_interval_secs.or(fallback.expiry_interval_secs),
            max_connections: self.max_connections.or(fallback.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .or(fallback.max_connections_per_address),
            header_read_timeout_secs: self
                .header_read_timeout_secs
                .or(fallback.header_read_timeout_secs),
            blob_idle_timeout_secs: self
                .blob_idle_timeout_secs
                .or(fallback.blob_idle_timeout_secs),
            blob_min_bytes_per_sec: self
                .blob_min_bytes_per_sec
                .or(fallback.blob_min_bytes_per_sec),
            ephemeral_per_minute: self.ephemeral_per_minute.or(fallback.ephemeral_per_minute),
            websocket_buffer_bytes: self
                .websocket_buffer_bytes
                .or(fallback.websocket_buffer_bytes),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrongly typed value.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        source: toml::de::Error,
    },
    /// A value is outside what the relay can honour.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// The setting's name as in the TOML file.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The database URL has a scheme the relay does not support.
    #[error("unsupported database URL scheme (expected postgres:// or postgresql:// or sqlite:)")]
    UnsupportedDatabase,
}

/// Where the relay keeps its state.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// Embedded SQLite database in this data directory.
    Sqlite(PathBuf),
    /// SQLite at an explicit `sqlite:` URL.
    SqliteUrl(String),
    /// PostgreSQL at this URL (may contain a password: never print it).
    Postgres(String),
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreLocation::SqliteUrl(url) => f.debug_tuple("SqliteUrl").field(url).finish(),
            StoreLocation::Postgres(url) => {
                f.debug_tuple("Postgres").field(&redact_url(url)).finish()
            }
        }
    }
}

/// A TLS certificate and key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The limits the relay enforces. Defaults follow DESIGN.md ("what Signal's
/// server taught the field").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope in a Send.
    pub max_envelope_bytes: usize,
    /// Largest WebSocket message.
    pub max_frame_bytes: usize,
    /// Most queued messages per recipient device.
    pub max_queue_len: u64,
    /// Lifetime of an undelivered message.
    pub message_ttl: Duration,
    /// Largest blob.
    pub blob_max_bytes: u64,
    /// Lifetime of a blob.
    pub blob_ttl: Duration,
    /// Most blobs per uploading account (the store enforces it).
    pub max_blobs_per_account: u64,
    /// Most blob bytes per uploading account (the store enforces it).
    pub max_blob_bytes_per_account: u64,
    /// Queued envelope bytes per sender account per hour; 0: no budget.
    pub sender_bytes_per_hour: u64,
    /// Days a released username is quarantined; 0: no quarantine.
    pub name_quarantine_days: u32,
    /// Lifetime of a session token.
    pub token_ttl: Duration,
    /// LoginStart + RegisterStart per source address per minute.
    pub auth_per_ip_per_minute: u32,
    /// LoginStart per (username, source address) per minute.
    pub auth_per_username_per_minute: u32,
    /// LoginStart per username from all sources per minute. Twelve times the
    /// per-source budget, so locking an owner out takes more than a dozen
    /// sources while a distributed guesser still gets at most this many
    /// guesses a minute (THREAT_MODEL.md).
    pub logins_per_username_per_minute: u32,
    /// Bundle fetches per requesting account per minute.
    pub bundle_fetches_per_minute: u32,
    /// Username resolutions per requesting account per minute.
    pub username_resolves_per_minute: u32,
    /// Most one-time prekeys per device.
    pub max_prekeys_per_device: u32,
    /// PreKeysLow threshold.
    pub prekey_low_water: u32,
    /// Close a connection after this long without a frame from the client.
    pub idle_timeout: Duration,
    /// Send a WebSocket ping this often.
    pub ping_interval: Duration,
    /// Close a connection not authenticated this long after it opened.
    pub auth_timeout: Duration,
    /// Close a connection whose writes made no progress for this long.
    pub write_stall_timeout: Duration,
    /// Purge expired rows this often.
    pub expiry_interval: Duration,
    /// TCP connections open at once, relay-wide.
    pub max_connections: usize,
    /// TCP connections open at once per IPv4 address or IPv6 /64; 0 = no cap.
    pub max_connections_per_address: usize,
    /// Deadline for a request's headers (slowloris).
    pub header_read_timeout: Duration,
    /// Longest gap between bytes of a blob upload.
    pub blob_idle_timeout: Duration,
    /// Slowest average blob upload rate (bytes/s) once the idle timeout has passed.
    pub blob_min_bytes_per_sec: u64,
    /// Ephemeral frames per sending account per minute.
    pub ephemeral_per_minute: u32,
    /// tungstenite read/write buffer per WebSocket.
    pub websocket_buffer_bytes: usize,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_bytes: wire::MAX_ENVELOPE_BYTES,
            max_frame_bytes: wire::MAX_FRAME_BYTES,
            max_queue_len: 10_000,
            message_ttl: 30 * DAY,
            blob_max_bytes: 100 * 1024 * 1024,
            blob_ttl: 30 * DAY,
            // The store's defaults, where their reasons are written.
            max_blobs_per_account: StoreLimits::default().max_blobs_per_account,
            max_blob_bytes_per_account: StoreLimits::default().max_blob_bytes_per_account,
            sender_bytes_per_hour: StoreLimits::default().sender_bytes_per_window,
            name_quarantine_days: (StoreLimits::default().name_quarantine_secs / DAY.as_secs())
                as u32,
            token_ttl: 30 * DAY,
            auth_per_ip_per_minute: 30,
            auth_per_username_per_minute: 10,
            logins_per_username_per_minute: 120,
            bundle_fetches_per_minute: 60,
            username_resolves_per_minute: 60,
            max_prekeys_per_device: 1_000,
            // The clients' own top-up threshold, so the push and the
            // client's hourly check agree on what "low" means.
            prekey_low_water: umbra_wire::prekeys::ONE_TIME_PREKEY_LOW_WATER as u32,
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            // Connect, register, log in and authenticate take two client-side
            // Argon2id evaluations and a few round trips: seconds. 30 s leaves
            // room for a slow phone while a connection that only answers
            // pings cannot hold a slot for longer.
            auth_timeout: Duration::from_secs(30),
            // The largest frame the relay sends (a delivery, about 96 KiB)
            // must get through a slow mobile link (12 s at 64 kbit/s); a
            // client whose socket takes nothing for longer has stopped
            // reading and only pins buffers.
            write_stall_timeout: Duration::from_secs(20),
            expiry_interval: Duration::from_secs(10 * 60),
            // At about 12 KiB per idle WebSocket (docs/BENCHMARKS.md) this
            // is ~120 MiB; raise it together with the descriptor limit.
            max_connections: 10_000,
            // One person needs one WebSocket plus a blob transfer or two;
            // 64 leaves room for a household or office behind one NAT while
            // one host cannot take more than 64 of the 10 000 slots.
            max_connections_per_address: 64,
            // A real client sends its request head in one packet; 10 s
            // covers a slow mobile link without letting a slowloris client
            // hold a descriptor for long.
            header_read_timeout: Duration::from_secs(10),
            // A body gap longer than this is a stalled or abandoned upload.
            blob_idle_timeout: Duration::from_secs(30),
            // 16 KiB/s (128 kbit/s, below a weak 3G uplink): a 100 MiB blob
            // must finish within about 1 h 47 min, so a trickling upload
            // cannot hold its connection and partial blob for a day.
            blob_min_bytes_per_sec: 16 * 1024,
            // Typing notices go out at most a few a second per conversation
            // while someone types; 120 a minute (a 120-frame burst) covers
            // that and bounds what one account can make the relay forward.
            ephemeral_per_minute: 120,
            // tungstenite's default is 128 KiB each, allocated per
            // connection. Frames larger than the buffer are still read (the
            // buffer grows for that frame), in reads of this size: a
            // maximal 256 KiB frame takes 256 reads, a typical one or two.
            // 1 KiB keeps an idle connection under 12 KiB (BENCHMARKS.md,
            // "Relay memory per connection": 4 KiB measured 14.3 KiB).
            websocket_buffer_bytes: 1024,
        }
    }
}

/// The validated configuration the relay runs with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Data directory (SQLite database, OPAQUE server setup).
    pub data_dir: PathBuf,
    /// The OPAQUE server key file (`auth::key_file`).
    pub opaque_key_file: PathBuf,
    /// Which store.
    pub store: StoreLocation,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// tracing filter directive.
    pub log_level: String,
    /// Enforced limits.
    pub limits: Limits,
}

impl RelayConfig {
    /// Merges flags/environment (`cli`) over the TOML file they name (if any)
    /// over defaults, and validates the result.
    pub fn load(cli: Settings) -> Result<RelayConfig, ConfigError> {
        let file = match &cli.config {
            Some(path) => Self::read_file(path)?,
            None => Settings::default(),
        };
        Self::resolve(cli.or(file))
    }

    /// Parses a TOML configuration file.
    pub fn read_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses TOML text with the same keys as the flags.
    pub fn parse_toml(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(text)
    }

    /// Fills defaults and validates.
    pub fn resolve(s: Settings) -> Result<RelayConfig, ConfigError> {
        let d = Limits::default();
        let days = |key: &'static str,
                    v: Option<u32>,
                    default: Duration|
         -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(0) => Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1 day".into(),
                }),
                Some(n) => Ok(DAY * n),
            }
        };
        let secs = |key: &'static str,
                    v: Option<u64>,
                    default: Duration|
         -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(0) => Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1 second".into(),
                }),
                Some(n) => Ok(Duration::from_secs(n)),
            }
        };
        let positive =
            |key: &'static str, v: Option<u32>, default: u32| -> Result<u32, ConfigError> {
                match v {
                    None => Ok(default),
                    Some(0) => Err(ConfigError::Invalid {
                        key,
                        reason: "must be at least 1".into(),
                    }),
                    Some(n) => Ok(n),
                }
            };
        let limits = Limits {
            max_envelope_bytes: s.max_envelope_bytes.unwrap_or(d.max_envelope_bytes),
            max_frame_bytes: s.max_frame_bytes.unwrap_or(d.max_frame_bytes),
            max_queue_len: s.max_queue_len.unwrap_or(d.max_queue_len),
            message_ttl: days("message_ttl_days", s.message_ttl_days, d.message_ttl)?,
            blob_max_bytes: s.blob_max_bytes.unwrap_or(d.blob_max_bytes),
            blob_ttl: days("blob_ttl_days", s.blob_ttl_days, d.blob_ttl)?,
            max_blobs_per_account: s.max_blobs_per_account.unwrap_or(d.max_blobs_per_account),
            max_blob_bytes_per_account: s
                .max_blob_bytes_per_account
                .unwrap_or(d.max_blob_bytes_per_account),
            sender_bytes_per_hour: s.sender_bytes_per_hour.unwrap_or(d.sender_bytes_per_hour),
            name_quarantine_days: s.name_quarantine_days.unwrap_or(d.name_quarantine_days),
            token_ttl: days("token_ttl_days", s.token_ttl_days, d.token_ttl)?,
            auth_per_ip_per_minute: positive(
                "auth_per_ip_per_minute",
                s.auth_per_ip_per_minute,
                d.auth_per_ip_per_minute,
            )?,
            auth_per_username_per_minute: positive(
                "auth_per_username_per_minute",
                s.auth_per_username_per_minute,
                d.auth_per_username_per_minute,
            )?,
            logins_per_username_per_minute: positive(
                "logins_per_username_per_minute",
                s.logins_per_username_per_minute,
                d.logins_per_username_per_minute,
            )?,
            bundle_fetches_per_minute: positive(
                "bundle_fetches_per_minute",
                s.bundle_fetches_per_minute,
                d.bundle_fetches_per_minute,
            )?,
            username_resolves_per_minute: positive(
                "username_resolves_per_minute",
                s.username_resolves_per_minute,
                d.username_resolves_per_minute,
            )?,
            max_prekeys_per_device: positive(
                "max_prekeys_per_device",
                s.max_prekeys_per_device,
                d.max_prekeys_per_device,
            )?,
            prekey_low_water: s.prekey_low_water.unwrap_or(d.prekey_low_water),
            idle_timeout: secs("idle_timeout_secs", s.idle_timeout_secs, d.idle_timeout)?,
            ping_interval: secs("ping_interval_secs", s.ping_interval_secs, d.ping_interval)?,
            auth_timeout: secs("auth_timeout_secs", s.auth_timeout_secs, d.auth_timeout)?,
            write_stall_timeout: secs(
                "write_stall_timeout_secs",
                s.write_stall_timeout_secs,
                d.write_stall_timeout,
            )?,
            expiry_interval: secs(
                "expiry_interval_secs",
                s.expiry_interval_secs,
                d.expiry_interval,
            )?,
            max_connections: s.max_connections.unwrap_or(d.max_connections),
            max_connections_per_address: s
                .max_connections_per_address
                .unwrap_or(d.max_connections_per_address),
            header_read_timeout: secs(
                "header_read_timeout_secs",
                s.header_read_timeout_secs,
                d.header_read_timeout,
            )?,
            blob_idle_timeout: secs(
                "blob_idle_timeout_secs",
                s.blob_idle_timeout_secs,
                d.blob_idle_timeout,
            )?,
            blob_min_bytes_per_sec: s.blob_min_bytes_per_sec.unwrap_or(d.blob_min_bytes_per_sec),
            ephemeral_per_minute: positive(
                "ephemeral_per_minute",
                s.ephemeral_per_minute,
                d.ephemeral_per_minute,
            )?,
            websocket_buffer_bytes: s.websocket_buffer_bytes.unwrap_or(d.websocket_buffer_bytes),
        };
        if limits.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if limits.websocket_buffer_bytes < 256 {
            return Err(ConfigError::Invalid {
                key: "websocket_buffer_bytes",
                reason: "must be at least 256".into(),
            });
        }
        if limits.header_read_timeout > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid {
                key: "header_read_timeout_secs",
                reason: "must be at most 3600, or slow clients hold connections that long".into(),
            });
        }
        // The wire limits are protocol constants: a relay may be stricter,
        // never looser, or it would accept what conforming peers refuse.
        if limits.max_envelope_bytes > wire::MAX_ENVELOPE_BYTES {
            return Err(ConfigError::Invalid {
                key: "max_envelope_bytes",
                reason: format!(
                    "must not exceed the protocol limit {}",
                    wire::MAX_ENVELOPE_BYTES
                ),
            });
        }
        if limits.max_frame_bytes > wire::MAX_FRAME_BYTES {
            return Err(ConfigError::Invalid {
                key: "max_frame_bytes",
                reason: format!(
                    "must not exceed the protocol limit {}",
                    wire::MAX_FRAME_BYTES
                ),
            });
        }
        if limits.max_envelope_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "max_envelope_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if limits.max_frame_bytes <= limits.max_envelope_bytes {
            return Err(ConfigError::Invalid {
                key: "max_frame_bytes",
                reason: format!(
                    "must exceed max_envelope_bytes ({}) so a maximal envelope fits in a frame",
                    limits.max_envelope_bytes
                ),
            });
        }
        if limits.max_queue_len == 0 {
            return Err(ConfigError::Invalid {
                key: "max_queue_len",
                reason: "must be at least 1".into(),
            });
        }
        if limits.blob_max_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "blob_max_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if limits.prekey_low_water > limits.max_prekeys_per_device {
            return Err(ConfigError::Invalid {
                key: "prekey_low_water",
                reason: "must not exceed max_prekeys_per_device".into(),
            });
        }
        if limits.ping_interval >= limits.idle_timeout {
            return Err(ConfigError::Invalid {
                key: "ping_interval_secs",
                reason: "must be shorter than idle_timeout_secs, or idle clients are cut off before they are pinged".into(),
            });
        }

        let data_dir = s
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = match s.database_url {
            None => StoreLocation::Sqlite(data_dir.clone()),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreLocation::Postgres(url)
            }
            Some(url) if url.starts_with("sqlite:") => StoreLocation::SqliteUrl(url),
            Some(_) => return Err(ConfigError::UnsupportedDatabase),
        };
        let tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    key: "tls_key",
                    reason: "tls_cert is set but tls_key is not".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "tls_cert",
                    reason: "tls_key is set but tls_cert is not".into(),
                })
            }
        };
        let listen = match s.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().map_err(|_| ConfigError::Invalid {
                key: "listen",
                reason: "bad built-in default".into(),
            })?,
        };
        let opaque_key_file = s
            .opaque_key_file
            .unwrap_or_else(|| data_dir.join(crate::auth::key_file::DEFAULT_FILE_NAME));
        Ok(RelayConfig {
            listen,
            opaque_key_file,
            data_dir,
            store,
            tls,
            log_level: s.log_level.unwrap_or_else(|| "info".to_string()),
            limits,
        })
    }

    /// A human description of the store without credentials, for the start line.
    pub fn store_description(&self) -> String {
        match &self.store {
            StoreLocation::Sqlite(dir) => format!("sqlite {}", dir.display()),
            StoreLocation::SqliteUrl(url) => format!("sqlite {url}"),
            StoreLocation::Postgres(url) => format!("postgres {}", redact_url(url)),
        }
    }

    /// The URL to hand to the store, `None` for embedded SQLite in the data directory.
    pub fn database_url(&self) -> Option<&str> {
        match &self.store {
            StoreLocation::Sqlite(_) => None,
            StoreLocation::SqliteUrl(url) | StoreLocation::Postgres(url) => Some(url),
        }
    }

    /// Whether the listener is reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}:***@{host}")
        }
        None => authority.to_string(),
    };
    // Query strings can carry `password=`; drop them entirely.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["umbra-relay"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("arguments parse")
    }

    /// `--help` states each default by hand (the flags are `Option`s so a
    /// file can fill them); this keeps the text and the real defaults equal.
    #[test]
    fn help_states_the_real_defaults() {
        use clap::CommandFactory as _;
        let help = Cli::command().render_long_help().to_string();
        let d = Limits::default();
        let secs = |t: Duration| t.as_secs().to_string();
        let days = |t: Duration| (t.as_secs() / 86_400).to_string();
        let expected = [
            ("--listen", DEFAULT_LISTEN.to_string()),
            ("--data-dir", DEFAULT_DATA_DIR.to_string()),
            ("--log-level", "info".to_string()),
            ("--max-envelope-bytes", d.max_envelope_bytes.to_string()),
            ("--max-frame-bytes", d.max_frame_bytes.to_string()),
            ("--max-queue-len", d.max_queue_len.to_string()),
            ("--message-ttl-days", days(d.message_ttl)),
            ("--blob-max-bytes", d.blob_max_bytes.to_string()),
            ("--blob-ttl-days", days(d.blob_ttl)),
            (
                "--max-blobs-per-account",
                d.max_blobs_per_account.to_string(),
            ),
            (
                "--max-blob-bytes-per-account",
                d.max_blob_bytes_per_account.to_string(),
            ),
            (
                "--sender-bytes-per-hour",
                d.sender_bytes_per_hour.to_string(),
            ),
            ("--name-quarantine-days", d.name_quarantine_days.to_string()),
            ("--token-ttl-days", days(d.token_ttl)),
            (
                "--auth-per-ip-per-minute",
                d.auth_per_ip_per_minute.to_string(),
            ),
            (
                "--auth-per-username-per-minute",
                d.auth_per_username_per_minute.to_string(),
            ),
            (
                "--logins-per-username-per-minute",
                d.logins_per_username_per_minute.to_string(),
            ),
            (
                "--bundle-fetches-per-minute",
                d.bundle_fetches_per_minute.to_string(),
            ),
            (
                "--username-resolves-per-minute",
                d.username_resolves_per_minute.to_string(),
            ),
            (
                "--max-prekeys-per-device",
                d.max_prekeys_per_device.to_string(),
            ),
            ("--prekey-low-water", d.prekey_low_water.to_string()),
            ("--idle-timeout-secs", secs(d.idle_timeout)),
            ("--ping-interval-secs", secs(d.ping_interval)),
            ("--auth-timeout-secs", secs(d.auth_timeout)),
            ("--write-stall-timeout-secs", secs(d.write_stall_timeout)),
            ("--expiry-interval-secs", secs(d.expiry_interval)),
            ("--max-connections", d.max_connections.to_string()),
            (
                "--max-connections-per-address",
                d.max_connections_per_address.to_string(),
            ),
            ("--header-read-timeout-secs", secs(d.header_read_timeout)),
            ("--blob-idle-timeout-secs", secs(d.blob_idle_timeout)),
            (
                "--blob-min-bytes-per-sec",
                d.blob_min_bytes_per_sec.to_string(),
            ),
            ("--ephemeral-per-minute", d.ephemeral_per_minute.to_string()),
            (
                "--websocket-buffer-bytes",
                d.websocket_buffer_bytes.to_string(),
            ),
        ];
        for (flag, value) in expected {
            // The flag's block: its line and the description lines under
            // it, up to the next flag.
            let mut lines = help
                .lines()
                .skip_while(|l| !l.contains(&format!("{flag} <")));
            let first = lines
                .next()
                .unwrap_or_else(|| panic!("{flag} not in --help"));
            let block: Vec<&str> = std::iter::once(first)
                .chain(lines.take_while(|l| !l.trim_start().starts_with('-')))
                .collect();
            let block = block.join("\n");
            assert!(
                block.contains(&format!("[default: {value}]")),
                "{flag}: --help does not say [default: {value}]: {block:?}"
            );
        }
    }

    #[test]
    fn defaults_are_loopback_sqlite_thirty_days() {
        let cfg = RelayConfig::resolve(Settings::default()).expect("defaults are valid");
        assert_eq!(
            cfg.listen,
            "127.0.0.1:7878".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            cfg.store,
            StoreLocation::Sqlite(PathBuf::from(DEFAULT_DATA_DIR))
        );
        assert_eq!(cfg.limits.message_ttl, Duration::from_secs(30 * 86_400));
        assert!(cfg.tls.is_none());
        assert!(cfg.is_loopback());
    }

    #[test]
    fn flags_parse_and_migrate_subcommand() {
        let cli = parse(&[
            "--listen",
            "0.0.0.0:9000",
            "--data-dir",
            "/tmp/x",
            "--message-ttl-days",
            "7",
            "migrate",
        ]);
        assert_eq!(cli.command, Some(Command::Migrate));
        let cfg = RelayConfig::resolve(cli.settings).expect("valid");
        assert_eq!(cfg.listen.port(), 9000);
        assert!(!cfg.is_loopback());
        assert_eq!(cfg.limits.message_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(cfg.store, StoreLocation::Sqlite(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn store_flags_also_work_after_the_subcommand() {
        let cli = parse(&["migrate", "--data-dir", "/tmp/y"]);
        assert_eq!(cli.command, Some(Command::Migrate));
        let cfg = RelayConfig::resolve(cli.settings).expect("valid");
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/y"));
    }

    #[test]
    fn tls_flags_must_come_together() {
        let argv = ["umbra-relay", "--tls-cert", "c.pem"];
        assert!(Cli::try_parse_from(argv).is_err());
        let cli = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        let cfg = RelayConfig::resolve(cli.settings).expect("valid");
        assert_eq!(
            cfg.tls,
            Some(TlsFiles {
                cert: PathBuf::from("c.pem"),
                key: PathBuf::from("k.pem")
            })
        );
    }

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let file = RelayConfig::parse_toml(
            "listen = \"127.0.0.1:1234\"\nmax_queue_len = 55\ntoken_ttl_days = 3\n\
             database_url = \"postgres://u:pw@db/umbra\"\n",
        )
        .expect("valid toml");
        let cli = parse(&["--max-queue-len", "77"]).settings;
        let cfg = RelayConfig::resolve(cli.or(file)).expect("valid");
        assert_eq!(cfg.listen.port(), 1234);
        assert_eq!(cfg.limits.max_queue_len, 77, "the flag wins over the file");
        assert_eq!(cfg.limits.token_ttl, Duration::from_secs(3 * 86_400));
        assert_eq!(
            cfg.store,
            StoreLocation::Postgres("postgres://u:pw@db/umbra".into())
        );
        assert_eq!(
            cfg.store_description(),
            "postgres postgres://u:***@db/umbra"
        );
        assert!(
            !format!("{cfg:?}").contains("pw"),
            "Debug must not show the password"
        );
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_rejected() {
        assert!(RelayConfig::parse_toml("listen_addr = \"x\"").is_err());
        assert!(RelayConfig::parse_toml("max_queue_len = \"many\"").is_err());
        let zero_ttl = Settings {
            message_ttl_days: Some(0),
            ..Settings::default()
        };
        assert!(matches!(
            RelayConfig::resolve(zero_ttl),
            Err(ConfigError::Invalid {
                key: "message_ttl_days",
                ..
            })
        ));
        let frame_too_small = Settings {
            max_frame_bytes: Some(1024),
            ..Settings::default()
        };
        assert!(matches!(
            RelayConfig::resolve(frame_too_small),
            Err(ConfigError::Invalid {
                key: "max_frame_bytes",
                ..
            })
        ));
        let too_big = Settings {
            max_envelope_bytes: Some(wire::MAX_ENVELOPE_BYTES + 1),
            ..Settings::default()
        };
        assert!(matches!(
            RelayConfig::resolve(too_big),
            Err(ConfigError::Invalid {
                key: "max_envelope_bytes",
                ..
            })
        ));
        let mysql = Settings {
            database_url: Some("mysql://x".into()),
            ..Settings::default()
        };
        assert!(matches!(
            RelayConfig::resolve(mysql),
            Err(ConfigError::UnsupportedDatabase)
        ));
    }

    const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/umbra-relay.example.toml");

    /// The relay's push threshold and the clients' own top-up threshold are
    /// one number by default (PROTOCOL.md 11.8, 12.6).
    #[test]
    fn default_low_water_is_the_clients_top_up_threshold() {
        assert_eq!(
            Limits::default().prekey_low_water as usize,
            umbra_wire::prekeys::ONE_TIME_PREKEY_LOW_WATER
        );
    }

    #[test]
    fn example_config_parses_and_matches_the_defaults() {
        let cli = parse(&["--config", EXAMPLE_CONFIG]).settings;
        let example = RelayConfig::load(cli).expect("the shipped example config loads");
        let defaults = RelayConfig::resolve(Settings::default()).expect("defaults are valid");
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.data_dir, defaults.data_dir);
        assert_eq!(example.store, defaults.store);
        assert_eq!(example.tls, defaults.tls);
        assert_eq!(example.log_level, defaults.log_level);
        assert_eq!(
            example.limits, defaults.limits,
            "every value in the example is the built-in default"
        );
    }

    #[test]
    fn example_config_names_every_key_and_its_commented_examples_are_valid() {
        use clap::CommandFactory;
        let text = std::fs::read_to_string(EXAMPLE_CONFIG).expect("example config is readable");
        let command = Cli::command();
        let keys: Vec<String> = command
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| !matches!(id.as_str(), "config" | "help" | "version"))
            .collect();
        assert!(keys.len() > 20, "clap lists the settings: {keys:?}");
        for key in &keys {
            let listed = text.lines().any(|line| {
                let line = line.trim_start_matches("# ");
                line.starts_with(&format!("{key} = "))
            });
            assert!(listed, "umbra-relay.example.toml does not mention `{key}`");
        }
        // Uncommenting every commented-out key must still give a valid file.
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(&format!("{k} = "))) => rest,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let settings = RelayConfig::parse_toml(&uncommented).expect("uncommented example parses");
        assert!(settings.database_url.is_some() && settings.tls_cert.is_some());
        let cfg = RelayConfig::resolve(settings).expect("uncommented example is valid");
        assert!(matches!(cfg.store, StoreLocation::Postgres(_)));
        assert!(cfg.tls.is_some());
    }

    #[test]
    fn redaction_hides_password_and_query() {
        assert_eq!(
            redact_url("postgres://a:b@h:5432/d?password=z"),
            "postgres://a:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
    }
}
