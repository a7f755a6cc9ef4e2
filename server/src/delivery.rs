//! One connection's delivery loop: when woken, read the device's queue from
//! the store after the last pushed sequence number, in small pages, and push
//! `Deliver` frames in order; after the first full drain say `QueueEmpty`.
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
    outbox: mpsc::Sender<Message>,
) {
    let mut last_pushed = 0u64;
    let mut announced_empty = false;
    loop {
        wake.notified().await;
        loop {
            let started = std::time::Instant::now();
            let page = state
                .store
                .fetch_after(address, last_pushed, PAGE_SIZE, unix_now())
                .await;
            state.metrics.store_latency.observe(started.elapsed());
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
                let frame = RelayFrame::Deliver {
                    seq: message.seq,
                    envelope: message.envelope,
                    received_at_ms: message.received_at.saturating_mul(1000),
                };
                let bytes = match encode_relay(&frame) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        // Cannot happen for envelopes the relay accepted
                        // (they fit a frame by construction); skip rather than
                        // wedge the queue, and leave the message stored.
                        tracing::error!(%error, seq = message.seq, "delivery: stored envelope does not fit a frame");
                        last_pushed = message.seq;
                        continue;
                    }
                };
                if outbox.send(Message::Binary(bytes.into())).await.is_err() {
                    return;
                }
                state
                    .metrics
                    .messages_delivered
                    .fetch_add(1, Ordering::Relaxed);
                last_pushed = message.seq;
            }
            if !full_page {
                break;
            }
        }
        if !announced_empty {
            announced_empty = true;
            let Ok(bytes) = encode_relay(&RelayFrame::QueueEmpty) else {
                return;
            };
            if outbox.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
    }
}
