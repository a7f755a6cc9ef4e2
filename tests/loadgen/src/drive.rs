//! One measured phase: senders and recipients on their own connections,
//! closed loop (each sender waits for its `SendResult`) or open loop (sends
//! on a fixed schedule whatever the replies, latency counted from the
//! scheduled time so a stalled relay cannot hide its queueing), recipients
//! acknowledging in batches.
//!
//! Counted only inside the measured window (after the warm-up): accepted
//! and rejected envelopes, failed requests, deliveries, the send-to-ack and
//! send-to-delivery latencies, and the CPU time of the processes under load
//! (and of this generator, so a reader sees what share it took).
//!
//! Must never: count a delivery stamped before this phase began (an
//! earlier phase's leftovers redelivered on reconnect) in its latency, or
//! record anything outside the window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use umbra_wire::{
    self as wire, Address, ClientFrame, OutgoingEnvelope, RelayFrame, Request, Response,
    SendOutcome,
};

use crate::consts::{HISTOGRAM_SIGFIG, STAMP_BYTES, STOP_GRACE};
use crate::nodes::Nodes;
use crate::procfs;
use crate::report::PhaseReport;
use crate::setup::{authed_socket, Ws};

/// How senders pace themselves.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// One request in flight per sender.
    Closed,
    /// `rate` envelopes per second over all senders, on a fixed schedule.
    Open {
        /// Envelopes per second.
        rate: f64,
    },
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Closed => write!(f, "closed loop"),
            Mode::Open { rate } => write!(f, "open loop at {rate:.0}/s"),
        }
    }
}

/// The load of one phase.
#[derive(Debug, Clone)]
pub struct DriveConfig {
    /// Sending connections.
    pub senders: usize,
    /// Receiving connections.
    pub recipients: usize,
    /// Bytes per envelope.
    pub envelope_bytes: usize,
    /// Envelopes per Send.
    pub per_send: usize,
    /// Load before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Pacing.
    pub mode: Mode,
    /// Deliveries per Ack.
    pub ack_batch: usize,
    /// Ack what is pending after this long without a delivery.
    pub ack_idle: Duration,
}

/// The instant every stamp counts from (one process: senders and
/// recipients share the clock).
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn stamp_of(at: Instant) -> u64 {
    u64::try_from(at.duration_since(base()).as_nanos()).unwrap_or(u64::MAX)
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A latency histogram in microseconds, 1 µs to one hour.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Shared counters and the window flags.
#[derive(Default)]
struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    accepted: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
}

impl Shared {
    fn count(&self, counter: &AtomicU64, n: u64) {
        if self.measuring.load(Ordering::Relaxed) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn outcomes(&self, response: &Response) {
        match response {
            Response::SendResult { results } => {
                let ok = results
                    .iter()
                    .filter(|r| matches!(r, SendOutcome::Accepted { .. }))
                    .count() as u64;
                self.count(&self.accepted, ok);
                self.count(&self.rejected, results.len() as u64 - ok);
            }
            _ => self.count(&self.errors, 1),
        }
    }
}

/// CPU and memory of the processes under load, from the window's start.
pub struct Sampler {
    pids: Vec<u32>,
    started: Instant,
    cpu: Vec<Duration>,
    own_cpu: Duration,
    load_start: f64,
}

/// What a [`Sampler`] saw over the window.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Wall time of the window.
    pub elapsed: Duration,
    /// CPU time of the processes under load (summed over nodes).
    pub target_cpu: Duration,
    /// CPU time of this generator.
    pub own_cpu: Duration,
    /// Resident memory at the end, and peak, summed over nodes (KiB).
    pub rss_kib: (u64, u64),
    /// 1-minute load average at the start and at the end.
    pub load: (f64, f64),
}

impl Sampler {
    /// Starts the window now.
    pub fn start(pids: &[u32]) -> Sampler {
        Sampler {
            pids: pids.to_vec(),
            started: Instant::now(),
            cpu: pids.iter().map(|p| procfs::cpu_time(Some(*p))).collect(),
            own_cpu: procfs::cpu_time(None),
            load_start: procfs::load_average(),
        }
    }

    /// Ends the window now.
    pub fn finish(self) -> Sample {
        let elapsed = self.started.elapsed();
        let target_cpu = self
            .pids
            .iter()
            .zip(&self.cpu)
            .map(|(p, before)| procfs::cpu_time(Some(*p)).saturating_sub(*before))
            .sum();
        let rss_kib = self
            .pids
            .iter()
            .map(|p| procfs::rss_kib(*p))
            .fold((0, 0), |(rss, hwm), (r, h)| (rss + r, hwm + h));
        Sample {
            elapsed,
            target_cpu,
            own_cpu: procfs::cpu_time(None).saturating_sub(self.own_cpu),
            rss_kib,
            load: (self.load_start, procfs::load_average()),
        }
    }
}

/// Runs one phase on fresh connections to `nodes`.
pub async fn phase(nodes: &Nodes, load: &DriveConfig) -> anyhow::Result<PhaseReport> {
    let shared = Arc::new(Shared::default());
    let phase_start = stamp_of(Instant::now());
    let addresses: Arc<Vec<Address>> =
        Arc::new(nodes.recipients.iter().map(|r| r.address).collect());

    let mut receivers = Vec::new();
    for (j, who) in nodes.recipients.iter().enumerate() {
        let ws = authed_socket(nodes.url_for(j), who).await?;
        let (shared, load) = (shared.clone(), load.clone());
        receivers.push(tokio::spawn(receive(ws, shared, load, phase_start)));
    }
    let mut senders = Vec::new();
    for (i, who) in nodes.senders.iter().enumerate() {
        let ws = authed_socket(nodes.url_for(i), who).await?;
        let plan = SendPlan {
            index: i,
            to: addresses.clone(),
            load: load.clone(),
        };
        let shared = shared.clone();
        senders.push(match load.mode {
            Mode::Closed => tokio::spawn(send_closed(ws, shared, plan)),
            Mode::Open { rate } => tokio::spawn(send_open(ws, shared, plan, rate)),
        });
    }

    tokio::time::sleep(load.warmup).await;
    nodes.instrument(true);
    let sampler = Sampler::start(&nodes.pids());
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(load.duration).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let sample = sampler.finish();
    nodes.instrument(false);
    shared.stop.store(true, Ordering::Relaxed);

    let mut ack = histogram();
    let mut delivery = histogram();
    for (tasks, into) in [(senders, &mut ack), (receivers, &mut delivery)] {
        for task in tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout(STOP_GRACE, task).await {
                Ok(Ok(hist)) => {
                    let _ = into.add(&hist);
                }
                Ok(Err(_)) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => abort.abort(),
            }
        }
    }
    Ok(PhaseReport::messages(
        shared.accepted.load(Ordering::Relaxed),
        shared.rejected.load(Ordering::Relaxed),
        shared.errors.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
        ack,
        delivery,
        sample,
    ))
}

/// What one sender sends.
struct SendPlan {
    index: usize,
    to: Arc<Vec<Address>>,
    load: DriveConfig,
}

impl SendPlan {
    /// The `k`-th Send: `per_send` stamped envelopes to consecutive
    /// recipients, starting where this sender's rotation stands.
    fn frame(&self, request_id: u64, k: u64, at: Instant) -> Message {
        let mut envelope = vec![0u8; self.load.envelope_bytes];
        envelope[..STAMP_BYTES].copy_from_slice(&stamp_of(at).to_le_bytes());
        let first = self.index as u64 + k * self.load.per_send as u64;
        let messages = (0..self.load.per_send as u64)
            .map(|n| OutgoingEnvelope {
                to: self.to[((first + n) % self.to.len() as u64) as usize],
                envelope: envelope.clone(),
            })
            .collect();
        let bytes = wire::encode_client(&ClientFrame {
            request_id,
            request: Request::Send { messages },
        })
        .expect("a Send within the wire limits encodes");
        Message::Binary(bytes.into())
    }
}

/// The reply to `request_id`, skipping pushes; `None` if the socket ended.
async fn reply(ws: &mut Ws, request_id: u64) -> Option<Response> {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Binary(bytes) = message else {
            continue;
        };
        if let Ok(RelayFrame::Response {
            request_id: id,
            response,
        }) = wire::decode_relay(&bytes)
        {
            if id == request_id {
                return Some(response);
            }
        }
    }
    None
}

async fn send_closed(mut ws: Ws, shared: Arc<Shared>, plan: SendPlan) -> Histogram<u64> {
    let mut hist = histogram();
    let mut k = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let request_id = k + 2;
        let sent = Instant::now();
        if ws.send(plan.frame(request_id, k, sent)).await.is_err() {
            shared.count(&shared.errors, 1);
            break;
        }
        let Some(response) = reply(&mut ws, request_id).await else {
            shared.count(&shared.errors, 1);
            break;
        };
        if shared.measuring.load(Ordering::Relaxed) {
            let _ = hist.record(micros(sent.elapsed()));
        }
        shared.outcomes(&response);
        k += 1;
    }
    let _ = ws.close(None).await;
    hist
}

async fn send_open(ws: Ws, shared: Arc<Shared>, plan: SendPlan, rate: f64) -> Histogram<u64> {
    let (mut sink, mut stream) = ws.split();
    let sends_per_sec = rate / plan.load.per_send as f64 / plan.load.senders as f64;
    let interval = Duration::from_secs_f64(1.0 / sends_per_sec.max(1e-3));
    // Senders start spread over one interval, not all at once.
    let offset = interval.mul_f64(plan.index as f64 / plan.load.senders as f64);
    let (scheduled_tx, mut scheduled) = mpsc::unbounded_channel::<Instant>();
    let writer_shared = shared.clone();
    let writer = tokio::spawn(async move {
        let mut next = Instant::now() + offset;
        let mut k = 0u64;
        while !writer_shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep_until(next.into()).await;
            let _ = scheduled_tx.send(next);
            if sink.send(plan.frame(k + 2, k, next)).await.is_err() {
                writer_shared.count(&writer_shared.errors, 1);
                break;
            }
            k += 1;
            next += interval;
        }
        let _ = sink.close().await;
    });
    let mut hist = histogram();
    loop {
        let next = tokio::time::timeout(Duration::from_millis(250), stream.next()).await;
        let message = match next {
            Err(_) if shared.stop.load(Ordering::Relaxed) => break,
            Err(_) => continue,
            Ok(Some(Ok(message))) => message,
            Ok(_) => break,
        };
        let Message::Binary(bytes) = message else {
            continue;
        };
        if let Ok(RelayFrame::Response { response, .. }) = wire::decode_relay(&bytes) {
            // Replies come in request order on one connection.
            if let Ok(at) = scheduled.try_recv() {
                if shared.measuring.load(Ordering::Relaxed) {
                    let _ = hist.record(micros(at.elapsed()));
                }
            }
            shared.outcomes(&response);
        }
    }
    writer.abort();
    hist
}

async fn receive(
    mut ws: Ws,
    shared: Arc<Shared>,
    load: DriveConfig,
    phase_start: u64,
) -> Histogram<u64> {
    let mut hist = histogram();
    let mut pending: Vec<u64> = Vec::with_capacity(load.ack_batch);
    let mut request_id = 2u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let idle = if pending.is_empty() {
            Duration::from_millis(250)
        } else {
            load.ack_idle
        };
        let message = match tokio::time::timeout(idle, ws.next()).await {
            Err(_) => None,
            Ok(Some(Ok(message))) => Some(message),
            Ok(_) => break,
        };
        let idle_now = message.is_none();
        if let Some(Message::Binary(bytes)) = message {
            match wire::decode_relay(&bytes) {
                Ok(RelayFrame::Deliver { seq, envelope, .. }) => {
                    let now = stamp_of(Instant::now());
                    let mut stamp = [0u8; STAMP_BYTES];
                    if let Some(head) = envelope.get(..STAMP_BYTES) {
                        stamp.copy_from_slice(head);
                    }
                    let sent = u64::from_le_bytes(stamp);
                    if shared.measuring.load(Ordering::Relaxed) && sent >= phase_start {
                        let _ = hist.record((now.saturating_sub(sent) / 1000).max(1));
                    }
                    shared.count(&shared.delivered, 1);
                    pending.push(seq);
                }
                Ok(RelayFrame::Response {
                    response: Response::Error { .. },
                    ..
                }) => shared.count(&shared.errors, 1),
                Ok(_) => {}
                Err(_) => shared.count(&shared.errors, 1),
            }
        }
        if !pending.is_empty() && (pending.len() >= load.ack_batch || idle_now) {
            let seqs = std::mem::take(&mut pending);
            let frame = wire::encode_client(&ClientFrame {
                request_id,
                request: Request::Ack { seqs },
            })
            .expect("an Ack within the wire limits encodes");
            request_id += 1;
            if ws.send(Message::Binary(frame.into())).await.is_err() {
                shared.count(&shared.errors, 1);
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    hist
}
