//! What the fault suites share: a population of accounts, senders and
//! recipients that keep a real `umbra-relay` under load while a suite breaks
//! it (SIGKILL, a PostgreSQL stopped under it), and the ledger that decides
//! afterwards whether anything acknowledged was lost.
//!
//! Senders behave like the client's outbox (PROTOCOL.md 12.4): one message
//! at a time, in order, each resent with the same bytes until it is
//! `Accepted`; a lost reply or an `Internal` is retried after a short
//! backoff. Recipients acknowledge in batches and reconnect when the relay
//! goes away. Envelopes are 420 random-looking bytes (the relay cannot tell
//! them from sealed ones) led by the message's id, so the ledger knows every
//! copy it sees. Accounts use the cheap key stretch; the relay never runs it.
//!
//! What the ledger requires ([`Ledger::verify`]): every `Accepted { seq }`
//! is delivered at that seq with the bytes sent; per recipient, seqs arrive
//! in increasing order on each connection and new seqs in increasing order
//! overall, so each sender's messages arrive in the order sent; a message is
//! stored under more than one seq only if some attempt's outcome was
//! unknown (a lost reply, or an `Internal` saying it may have been carried
//! out); and a message whose every attempt was refused with "not carried
//! out" is never delivered at all.
//!
//! Must never: let a worker run past the suite (they stop on the flag and
//! are awaited), wait without a deadline, or count a message as lost that
//! the relay never acknowledged.

#![allow(dead_code)] // each fault suite uses a different part

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use rand::RngCore;
use tokio::task::JoinHandle;
use umbra_e2e::wire_client::{Stretch, WireClient, WireClientError};
use umbra_protocol::wire::{
    Address, ErrorCode, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome, SessionToken,
};

/// Envelope size of the load (issue 11's figure for a short text message).
pub const ENVELOPE_BYTES: usize = 420;
/// Leading bytes of every load envelope.
const MAGIC: &[u8; 8] = b"umbrafl1";
/// Longest one request may take before the worker counts it as lost.
const REQUEST_BOUND: Duration = Duration::from_secs(20);
/// Pause before a worker tries again after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Recipients acknowledge once this many deliveries are pending.
const ACK_BATCH: usize = 16;
/// ... or when no push came for this long.
const ACK_IDLE: Duration = Duration::from_millis(50);

/// The id of a load message: which sender, its n-th message.
pub type MessageId = (usize, u64);

/// One signed-up account.
#[derive(Clone)]
pub struct Account {
    /// Its primary device.
    pub address: Address,
    /// A token valid across relay restarts (it lives in the store).
    pub token: SessionToken,
}

/// Registers and logs in `count` accounts named `{prefix}{i}`.
pub async fn sign_up(ws_url: &str, prefix: &str, count: usize) -> anyhow::Result<Vec<Account>> {
    let mut accounts = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("{prefix}{i}");
        let password = format!("pw-{name}-fault");
        let mut registering = WireClient::connect(ws_url)
            .await?
            .with_stretch(Stretch::Cheap);
        registering.register(&name, &password).await?;
        registering.close().await;
        let mut client = WireClient::connect(ws_url)
            .await?
            .with_stretch(Stretch::Cheap);
        let login = client.login(&name, &password).await?;
        let address = client.authenticate(&login.token).await?;
        client.close().await;
        accounts.push(Account {
            address,
            token: login.token,
        });
    }
    Ok(accounts)
}

/// Connects and authenticates, or says why not.
pub async fn connect(ws_url: &str, account: &Account) -> Result<WireClient, WireClientError> {
    let mut client = WireClient::connect(ws_url).await?;
    client.authenticate(&account.token).await?;
    Ok(client)
}

/// Everything one message went through.
#[derive(Debug, Default)]
struct Sent {
    recipient: usize,
    envelope: Vec<u8>,
    attempts: u32,
    /// Attempts after which the message may be stored: accepted, or an
    /// unknown outcome.
    maybe_stored: u32,
    accepted: Option<u64>,
}

/// One delivery as a recipient saw it.
#[derive(Debug, Clone)]
struct Delivery {
    seq: u64,
    connection: u64,
    id: Option<MessageId>,
    envelope: Vec<u8>,
}

/// What the load did and saw; shared by every worker.
#[derive(Debug, Default)]
pub struct Ledger {
    sent: HashMap<MessageId, Sent>,
    delivered: BTreeMap<usize, Vec<Delivery>>,
    /// Anything a worker could not explain (an unexpected reply).
    anomalies: Vec<String>,
}

/// Totals for the suite's log line.
#[derive(Debug, Default)]
pub struct Summary {
    /// Messages acknowledged `Accepted`.
    pub accepted: usize,
    /// Send attempts whose outcome was unknown.
    pub unknown_outcomes: u32,
    /// Send attempts refused as "not carried out".
    pub refused_attempts: u32,
    /// Deliveries in all (redeliveries included).
    pub deliveries: usize,
    /// Messages stored under more than one seq (allowed after an unknown outcome).
    pub duplicated: usize,
}

fn message_id(envelope: &[u8]) -> Option<MessageId> {
    if envelope.len() < 24 || &envelope[..8] != MAGIC {
        return None;
    }
    let sender = u64::from_be_bytes(envelope[8..16].try_into().ok()?);
    let n = u64::from_be_bytes(envelope[16..24].try_into().ok()?);
    Some((usize::try_from(sender).ok()?, n))
}

fn envelope_for(id: MessageId) -> Vec<u8> {
    let mut envelope = vec![0u8; ENVELOPE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut envelope);
    envelope[..8].copy_from_slice(MAGIC);
    envelope[8..16].copy_from_slice(&(id.0 as u64).to_be_bytes());
    envelope[16..24].copy_from_slice(&id.1.to_be_bytes());
    envelope
}

impl Ledger {
    fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
        ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accepted messages have not been seen at their seq yet.
    pub fn undelivered(ledger: &Mutex<Ledger>) -> usize {
        let l = Self::lock(ledger);
        let seen: BTreeSet<(usize, u64)> = l
            .delivered
            .iter()
            .flat_map(|(r, ds)| ds.iter().map(move |d| (*r, d.seq)))
            .collect();
        l.sent
            .values()
            .filter_map(|s| s.accepted.map(|seq| (s.recipient, seq)))
            .filter(|key| !seen.contains(key))
            .count()
    }

    /// Checks every rule of the module doc; `Err` names the first broken one.
    pub fn verify(ledger: &Mutex<Ledger>) -> anyhow::Result<Summary> {
        let l = Self::lock(ledger);
        ensure!(l.anomalies.is_empty(), "anomalies: {:?}", l.anomalies);
        let mut summary = Summary::default();
        // seqs each message was delivered under, per recipient
        let mut copies: HashMap<MessageId, BTreeSet<u64>> = HashMap::new();
        for (recipient, deliveries) in &l.delivered {
            let mut last_new = 0u64;
            let mut per_connection: HashMap<u64, u64> = HashMap::new();
            let mut seen: HashMap<u64, &Delivery> = HashMap::new();
            let mut last_from_sender: HashMap<usize, u64> = HashMap::new();
            for d in deliveries {
                summary.deliveries += 1;
                let last = per_connection.entry(d.connection).or_default();
                ensure!(
                    d.seq > *last,
                    "recipient {recipient}: seq {} pushed after {} on one connection",
                    d.seq,
                    *last
                );
                *last = d.seq;
                if let Some(before) = seen.get(&d.seq) {
                    ensure!(
                        before.envelope == d.envelope,
                        "recipient {recipient}: seq {} redelivered with other bytes",
                        d.seq
                    );
                    continue;
                }
                ensure!(
                    d.seq > last_new,
                    "recipient {recipient}: new seq {} arrived after seq {last_new}",
                    d.seq
                );
                last_new = d.seq;
                seen.insert(d.seq, d);
                let id =
                    d.id.with_context(|| format!("recipient {recipient}: a foreign envelope"))?;
                let sent = l
                    .sent
                    .get(&id)
                    .with_context(|| format!("delivered {id:?}, which was never sent"))?;
                ensure!(
                    sent.recipient == *recipient && sent.envelope == d.envelope,
                    "{id:?} delivered to {recipient} or with bytes other than sent"
                );
                let previous = last_from_sender.insert(id.0, id.1);
                ensure!(
                    previous.is_none_or(|p| p <= id.1),
                    "recipient {recipient}: sender {} message {} arrived after message {:?}",
                    id.0,
                    id.1,
                    previous
                );
                copies.entry(id).or_default().insert(d.seq);
            }
        }
        for (id, sent) in &l.sent {
            summary.unknown_outcomes += sent.maybe_stored - u32::from(sent.accepted.is_some());
            summary.refused_attempts += sent.attempts - sent.maybe_stored;
            let stored = copies.get(id).map_or(0, BTreeSet::len);
            if let Some(seq) = sent.accepted {
                summary.accepted += 1;
                ensure!(
                    copies.get(id).is_some_and(|c| c.contains(&seq)),
                    "LOST: {id:?} was Accepted {{ seq: {seq} }} and never delivered at that seq"
                );
            }
            ensure!(
                stored <= sent.maybe_stored as usize,
                "{id:?} is stored under {stored} seqs, but only {} attempts may have stored it \
                 ({} attempts in all; an Internal that said \"not carried out\" stored it)",
                sent.maybe_stored,
                sent.attempts
            );
            if stored > 1 {
                summary.duplicated += 1;
            }
        }
        ensure!(summary.accepted > 0, "the load got nothing accepted");
        Ok(summary)
    }
}

/// The running load: stop it with [`Load::stop_senders`] and
/// [`Load::stop_recipients`].
pub struct Load {
    /// What it did.
    pub ledger: Arc<Mutex<Ledger>>,
    senders_stop: Arc<AtomicBool>,
    recipients_stop: Arc<AtomicBool>,
    senders: Vec<JoinHandle<()>>,
    recipients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one task per sender and per recipient against `ws_url` (the
    /// relay may be restarted under them on the same address).
    pub fn start(ws_url: &str, senders: &[Account], recipients: &[Account]) -> Load {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let senders_stop = Arc::new(AtomicBool::new(false));
        let recipients_stop = Arc::new(AtomicBool::new(false));
        let targets: Vec<Address> = recipients.iter().map(|r| r.address).collect();
        let senders = senders
            .iter()
            .enumerate()
            .map(|(i, account)| {
                tokio::spawn(send_loop(
                    ws_url.to_owned(),
                    i,
                    account.clone(),
                    targets.clone(),
                    ledger.clone(),
                    senders_stop.clone(),
                ))
            })
            .collect();
        let recipients = recipients
            .iter()
            .enumerate()
            .map(|(i, account)| {
                tokio::spawn(receive_loop(
                    ws_url.to_owned(),
                    i,
                    account.clone(),
                    ledger.clone(),
                    recipients_stop.clone(),
                ))
            })
            .collect();
        Load {
            ledger,
            senders_stop,
            recipients_stop,
            senders,
            recipients,
        }
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> usize {
        Ledger::lock(&self.ledger)
            .sent
            .values()
            .filter(|s| s.accepted.is_some())
            .count()
    }

    /// Stops the senders after their current attempt and waits for them.
    pub async fn stop_senders(&mut self) {
        self.senders_stop.store(true, Ordering::SeqCst);
        for task in self.senders.drain(..) {
            let _ = task.await;
        }
    }

    /// Waits (at most `bound`) until every accepted message was seen, then
    /// stops the recipients.
    pub async fn drain_and_stop(&mut self, bound: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + bound;
        let mut left = Ledger::undelivered(&self.ledger);
        while left > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = Ledger::undelivered(&self.ledger);
        }
        self.recipients_stop.store(true, Ordering::SeqCst);
        for task in self.recipients.drain(..) {
            let _ = task.await;
        }
        if left > 0 {
            bail!("{left} accepted messages were not delivered within {bound:?}");
        }
        Ok(())
    }
}

/// One sender: like the outbox, one message at a time, each resent with the
/// same bytes until accepted.
async fn send_loop(
    ws_url: String,
    me: usize,
    account: Account,
    targets: Vec<Address>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut client: Option<WireClient> = None;
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = (me, n);
        let recipient = (me + n as usize) % targets.len();
        let envelope = {
            let mut l = Ledger::lock(&ledger);
            let sent = l.sent.entry(id).or_insert_with(|| Sent {
                recipient,
                envelope: envelope_for(id),
                ..Sent::default()
            });
            sent.envelope.clone()
        };
        if client.as_ref().is_none_or(WireClient::is_closed) {
            match tokio::time::timeout(REQUEST_BOUND, connect(&ws_url, &account)).await {
                Ok(Ok(c)) => client = Some(c),
                _ => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let request = Request::Send {
            messages: vec![OutgoingEnvelope {
                to: targets[recipient],
                envelope,
            }],
        };
        let reply = tokio::time::timeout(REQUEST_BOUND, c.request(request)).await;
        match record_attempt(&ledger, id, reply) {
            Next::Accepted => {
                n += 1;
                continue;
            }
            Next::Retry => {}
            Next::Reconnect => client = None,
            Next::Abort => return,
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    if let Some(mut c) = client {
        c.close().await;
    }
}

/// What a sender does after an attempt.
enum Next {
    Accepted,
    Retry,
    Reconnect,
    Abort,
}

/// Books one attempt of message `id` and says what comes next.
fn record_attempt(
    ledger: &Mutex<Ledger>,
    id: MessageId,
    reply: Result<Result<Response, WireClientError>, tokio::time::error::Elapsed>,
) -> Next {
    let mut l = Ledger::lock(ledger);
    let sent = l.sent.get_mut(&id).expect("entry made before the attempt");
    sent.attempts += 1;
    let anomaly = match reply {
        Ok(Ok(Response::SendResult { results })) => match results.as_slice() {
            [SendOutcome::Accepted { seq }] => {
                sent.maybe_stored += 1;
                sent.accepted = Some(*seq);
                return Next::Accepted;
            }
            other => format!("{id:?}: unexpected SendResult {other:?}"),
        },
        Ok(Ok(Response::Error {
            code: ErrorCode::Internal | ErrorCode::ShuttingDown,
            message,
            ..
        })) => {
            // The one phrase the relay uses when it cannot know (9.6).
            if message.contains("may have been carried out") {
                sent.maybe_stored += 1;
            }
            return Next::Retry;
        }
        Ok(Ok(other)) => format!("{id:?}: unexpected reply {other:?}"),
        // Lost with the connection (or no answer in time): unknown.
        Ok(Err(_)) | Err(_) => {
            sent.maybe_stored += 1;
            return Next::Reconnect;
        }
    };
    l.anomalies.push(anomaly);
    Next::Abort
}

/// One recipient: records every push, acknowledges in batches, reconnects.
async fn receive_loop(
    ws_url: String,
    me: usize,
    account: Account,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut connection = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let mut client = match tokio::time::timeout(REQUEST_BOUND, connect(&ws_url, &account)).await
        {
            Ok(Ok(c)) => c,
            _ => {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        connection += 1;
        let mut pending: Vec<u64> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let push = client.try_next_push(ACK_IDLE).await;
            let ack_now = match push {
                Ok(Some(RelayFrame::Deliver { seq, envelope, .. })) => {
                    let id = message_id(&envelope);
                    Ledger::lock(&ledger)
                        .delivered
                        .entry(me)
                        .or_default()
                        .push(Delivery {
                            seq,
                            connection,
                            id,
                            envelope,
                        });
                    pending.push(seq);
                    pending.len() >= ACK_BATCH
                }
                Ok(Some(_)) | Ok(None) => !pending.is_empty(),
                Err(_) => break,
            };
            if client.is_closed() {
                break;
            }
            if ack_now {
                let seqs = std::mem::take(&mut pending);
                // A lost ack only means a redelivery after reconnecting.
                match tokio::time::timeout(REQUEST_BOUND, client.request(Request::Ack { seqs }))
                    .await
                {
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        client.close().await;
    }
}

/// Whether the long form was asked for (`UMBRA_FAULT_LONG=1`).
pub fn long_form() -> bool {
    std::env::var("UMBRA_FAULT_LONG").is_ok_and(|v| v == "1" || v == "true")
}
