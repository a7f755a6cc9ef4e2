//! Every tunable of the load generator, with its reason.
//!
//! Must never: hold a value that changes what is measured without the
//! report saying so (the load itself is on the command line).

use std::time::Duration;

/// Bytes at the start of every envelope holding its (scheduled) send time,
/// nanoseconds since the run's base instant, little-endian: the recipient
/// computes send-to-delivery latency from it. The rest is zeros; the relay
/// treats envelopes as opaque bytes either way.
pub const STAMP_BYTES: usize = 8;

/// Relay flags that lift the per-source budgets a benchmark trips from one
/// address: registrations and logins of every account come from 127.0.0.1,
/// and all connections share it. Each is a production protection, so the
/// report names them; nothing else is changed from the defaults.
pub const RELAY_BENCH_FLAGS: &[&str] = &[
    "--max-connections-per-address",
    "0",
    "--auth-per-ip-per-minute",
    "100000000",
    "--auth-per-username-per-minute",
    "100000000",
    "--logins-per-username-per-minute",
    "100000000",
    "--log-level",
    "warn",
];

/// How long a node may take to print its listening line (PostgreSQL
/// migrations on a busy machine take a few seconds).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Deadline of every request outside the measured phases (registration,
/// login, authentication).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Accounts registered at once: registration is setup, not measured; more
/// in flight only queue on the relay's single writer.
pub const REGISTER_CONCURRENCY: usize = 8;

/// After the measured window, how long tasks get to notice the end before
/// they are aborted (a closed-loop sender waiting on a wedged reply).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Significant figures of the latency histograms (HdrHistogram): 3 keeps
/// every percentile within 0.1 %.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// The password of every generated account: the relay only ever sees
/// OPAQUE messages derived from it, and the accounts live only as long as
/// the run's temporary data directory or database.
pub const PASSWORD: &str = "loadgen correct horse battery staple";

/// Outstanding frames per connection of the bare forwarder's writer, the
/// relay's `OUTBOX_CAPACITY` (server/src/connection/outbox.rs).
pub const BARE_OUTBOX: usize = 16;

/// The relay's default `websocket_buffer_bytes`, which the bare forwarder
/// uses too (same WebSocket settings).
pub const BARE_WS_BUFFER: usize = 1024;
