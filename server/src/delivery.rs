//! One connection's delivery loop: when woken, read the device's queue from
//! the store after the last pushed sequence number, in small pages, and push
//! `Deliver` frames in order; after the first full drain say `QueueEmpty`.
//! A message the group committer handed over (`hub::Handed`) whose seq is
//! the next one is pushed without reading the store; any gap means a read.
//!
//! The loop holds at most one page in memory and pushes through the
//! connection's bounded outbox, so a slow reader only slows itself and an
//! idle connection holds nothing. Messages stay in the store until the
//! client acks them; a new connection starts from sequence 0 again, which is
//! what makes delivery at-least-once.
//!
//! Must never: skip or reorder a sequence number, delete anything (only an
//! Ack deletes), or hold a store transaction while pushing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use tokio::sync::{mpsc, Notify};
use umbra_wire::{encode_relay, Address, RelayFrame};

use crate::app::AppState;
use crate::auth::tokens::unix_now;
use crate::hub::Handed;

/// Messages fetched per store read; with 96 KiB envelopes this bounds the
/// loop's own buffer to under 1 MiB.
pub const PAGE_SIZE: u32 = 8;
/// Wait before retrying after a store error.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(1);

/// Runs until the outbox closes (the connection ended) or the task is aborted.
pub async fn run(
    state: AppState,
    address: Address,
    wake: Arc<Notify>,
    mut handed: mpsc::Receiver<Handed>,
    outbox: mpsc::Sender<Message>,
) {
    let mut loop_state = Delivery {
        state,
        address,
        outbox,
        last_pushed: 0,
    };
    let mut announced_empty = false;
    loop {
        tokio::select! {
            // The first drain (registration wakes us) comes before any
            // hand-off, so `QueueEmpty` follows the stored backlog.
            biased;
            () = wake.notified() => {}
            Some(message) = handed.recv(), if announced_empty => {
                if message.seq <= loop_state.last_pushed {
                    // Already pushed from the store.
                    continue;
                }
                if message.seq == loop_state.last_pushed + 1 {
                    let pushed = loop_state
                        .push(message.seq, message.envelope, message.received_at_ms)
                        .await;
                    if pushed.is_err() {
                        return;
                    }
                    continue;
                }
                // A gap (a hand-off that did not fit, or the first message
                // after connecting): the store has everything committed.
            }
        }
        if loop_state.drain().await.is_err() {
            return;
        }
        if !announced_empty {
            announced_empty = true;
            let Ok(bytes) = encode_relay(&RelayFrame::QueueEmpty) else {
                return;
            };
            if loop_state
                .outbox
                .send(Message::Binary(bytes.into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The connection ended.
struct Gone;

struct Delivery {
    state: AppState,
    address: Address,
    outbox: mpsc::Sender<Message>,
    last_pushed: u64,
}

impl Delivery {
    /// Reads and pushes everything after `last_pushed`, a page at a time.
    async fn drain(&mut self) -> Result<(), Gone> {
        loop {
            let started = std::time::Instant::now();
            let page = self
                .state
                .store
                .fetch_after(self.address, self.last_pushed, PAGE_SIZE, unix_now())
                .await;
            self.state.metrics.store_latency.observe(started.elapsed());
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "delivery: fetching the queue failed; retrying");
                    tokio::time::sleep(RETRY_AFTER_STORE_ERROR).await;
                    continue;
                }
            };
            let full_page = page.len() >= PAGE_SIZE as usize;
            for message in page {
                self.push(message.seq, message.envelope, message.received_at_ms)
                    .await?;
            }
            if !full_page {
                return Ok(());
            }
        }
    }

    /// Pushes one `Deliver` and records its seq as pushed.
    async fn push(&mut self, seq: u64, envelope: Vec<u8>, received_at_ms: u64) -> Result<(), Gone> {
        let frame = RelayFrame::Deliver {
            seq,
            envelope,
            received_at_ms,
        };
        let bytes = match encode_relay(&frame) {
            Ok(bytes) => bytes,
            Err(error) => {
                // Cannot happen for envelopes the relay accepted (they fit
                // a frame by construction); skip rather than wedge the
                // queue, and leave the message stored.
                tracing::error!(%error, seq, "delivery: stored envelope does not fit a frame");
                self.last_pushed = seq;
                return Ok(());
            }
        };
        if self
            .outbox
            .send(Message::Binary(bytes.into()))
            .await
            .is_err()
        {
            return Err(Gone);
        }
        self.state
            .metrics
            .messages_delivered
            .fetch_add(1, Ordering::Relaxed);
        self.last_pushed = seq;
        Ok(())
    }
}
