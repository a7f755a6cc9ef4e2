//! The relay's configuration: command-line flags, environment variables and
//! an optional TOML file, merged into one validated [`RelayConfig`].
//!
//! Precedence is flag/environment over file over built-in default, key by key.
//! This module only parses and validates; it must never open the store, bind a
//! socket or read a TLS key — those belong to the code that uses the values.
//! The database URL may carry a password, so [`RelayConfig`]'s `Debug` output
//! and [`RelayConfig::store_description`] redact it.
//!
//! Laid out by concept: [`settings`] (the raw keys from flags, environment
//! and file), [`limits`] (what the relay enforces, each default with its
//! reason), and here the merge and validation into [`RelayConfig`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use umbra_wire as wire;

use crate::trusted_proxy::TrustedProxies;

mod limits;
mod settings;
#[cfg(test)]
mod tests;

pub use limits::Limits;
use limits::DAY;
pub use settings::Settings;

/// Default listen address: loopback, so a relay started without flags never
/// accepts plain-text connections from the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Default data directory for the embedded SQLite store and the OPAQUE setup.
pub const DEFAULT_DATA_DIR: &str = "./umbra-relay-data";

/// Longest timeout or interval any `*_secs` setting may take: one year, far
/// beyond any useful value, and small enough that adding it to a clock
/// reading cannot overflow.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 60 * 60;

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
    /// Check the key-transparency history in the database (every head's
    /// signature, entry, log root, map root and consistency, PROTOCOL.md
    /// 16.9 item 7); exit 0 if it is honest, 1 naming the first epoch that
    /// is not.
    Audit,
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

/// The validated configuration the relay runs with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Data directory (SQLite database, OPAQUE server setup).
    pub data_dir: PathBuf,
    /// The OPAQUE server key file (`auth::key_file`).
    pub opaque_key_file: PathBuf,
    /// The key-transparency key file (`kt::key_file`).
    pub kt_key_file: PathBuf,
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
                // `Instant::now() + timeout` must not overflow (a huge
                // value meant as "never" would panic every connection).
                Some(n) if n > MAX_TIMEOUT_SECS => Err(ConfigError::Invalid {
                    key,
                    reason: format!("must be at most {MAX_TIMEOUT_SECS} seconds (one year)"),
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
            kt_proofs_per_minute: positive(
                "kt_proofs_per_minute",
                s.kt_proofs_per_minute,
                d.kt_proofs_per_minute,
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
            kt_epoch_interval: match s.kt_epoch_interval_ms {
                None => d.kt_epoch_interval,
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        key: "kt_epoch_interval_ms",
                        reason: "must be at least 1".into(),
                    })
                }
                Some(ms) => Duration::from_millis(ms),
            },
            max_connections: s.max_connections.unwrap_or(d.max_connections),
            max_connections_per_address: s
                .max_connections_per_address
                .unwrap_or(d.max_connections_per_address),
            trusted_proxies: match &s.trusted_proxies {
                None => d.trusted_proxies.clone(),
                Some(entries) => {
                    TrustedProxies::parse(entries).map_err(|error| ConfigError::Invalid {
                        key: "trusted_proxies",
                        reason: error.to_string(),
                    })?
                }
            },
            header_read_timeout: secs(
                "header_read_timeout_secs",
                s.header_read_timeout_secs,
                d.header_read_timeout,
            )?,
            request_deadline: match s.request_deadline_ms {
                None => d.request_deadline,
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        key: "request_deadline_ms",
                        reason: "must be at least 1".into(),
                    })
                }
                Some(ms) => Duration::from_millis(ms),
            },
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
            link_fetches_per_minute: positive(
                "link_fetches_per_minute",
                s.link_fetches_per_minute,
                d.link_fetches_per_minute,
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
        // Beside the OPAQUE key file by default: nodes given one shared
        // key directory share both files.
        let kt_key_file = s.kt_key_file.unwrap_or_else(|| {
            opaque_key_file
                .parent()
                .unwrap_or(&data_dir)
                .join(crate::kt::key_file::DEFAULT_FILE_NAME)
        });
        Ok(RelayConfig {
            listen,
            opaque_key_file,
            kt_key_file,
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
