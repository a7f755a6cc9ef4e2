//! The inbound worker: decrypts and persists each delivery in the order
//! the socket task hands them over, *then* acks it (or leaves it
//! unacknowledged when it was kept for another try, docs/PROTOCOL.md
//! §12.5), and starts key maintenance once the relay's queue is drained.
//!
//! A kept delivery keeps its envelope for this connection
//! (`kept_again.rs`). When a delivery makes an item held for a membership
//! we missed openable (a group state change lists its sender, §8.15,
//! `Held::take_openable`), the kept envelopes are processed again at once,
//! in relay order, and each that opens is acknowledged after its
//! processing committed: no reconnect is needed. They are processed after
//! the deliveries that came since, as the relay's push after a reconnect
//! would be.
//!
//! Must never: ack a delivery before it is persisted, ack one that was
//! kept, or keep a plaintext.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, watch};
use umbra_protocol::wire::Request;

use super::kept_again::{KeptAgain, KeptEnvelope};
use super::{Inbound, KeptSignal};
use crate::engine::Engine;
use crate::{DecryptFailure, Event, SharedError};

pub(super) async fn inbound_worker(
    engine: Weak<Engine>,
    mut inbound: mpsc::UnboundedReceiver<Inbound>,
    kept: mpsc::UnboundedSender<KeptSignal>,
    mut stop: watch::Receiver<bool>,
) {
    // Whether a delivery was kept since the last QueueEmpty.
    let mut kept_any = false;
    // The deliveries kept on this connection and not acknowledged since.
    let mut outstanding: BTreeSet<u64> = BTreeSet::new();
    // Their envelopes (`kept_again.rs`).
    let mut again = KeptAgain::default();
    loop {
        let item = tokio::select! {
            item = inbound.recv() => item,
            _ = stop.changed() => None,
        };
        let Some(item) = item else { break };
        let Some(engine) = engine.upgrade() else {
            break;
        };
        match item {
            Inbound::Connected => {
                again.clear();
                outstanding.clear();
            }
            Inbound::Deliver {
                seq,
                envelope,
                received_at_ms,
            } => {
                if let Some(acked) = process_one(&engine, seq, &envelope, received_at_ms).await {
                    if acked {
                        again.forget(seq);
                        outstanding.remove(&seq);
                    } else {
                        // Kept: the relay delivers it again next connection,
                        // or it is processed again here (`reopen`).
                        kept_any = true;
                        outstanding.insert(seq);
                        again.keep(KeptEnvelope {
                            seq,
                            envelope,
                            received_at_ms,
                        });
                        let _ = kept.send(KeptSignal::Kept);
                    }
                }
                if engine.groups.held.take_openable() {
                    reopen(&engine, &mut again, &mut outstanding, &kept).await;
                }
            }
            Inbound::Ephemeral { payload } => {
                let processed = crate::inbound::process_ephemeral(&engine, &payload).await;
                let processed = match processed {
                    Ok(events) => Ok(engine.shown_events(events).await),
                    Err(e) => Err(e),
                };
                match processed {
                    Ok(events) => events.into_iter().for_each(|e| engine.emit(e)),
                    Err(e) => {
                        tracing::warn!(error = %crate::error::LogSafe(&e), "could not process an ephemeral message")
                    }
                }
            }
            Inbound::QueueEmpty => {
                if !std::mem::take(&mut kept_any) {
                    let _ = kept.send(KeptSignal::Clear);
                }
                engine.caught_up.store(true, Ordering::SeqCst);
                engine.emit(Event::QueueEmpty);
                // Every earlier delivery is processed: now keys may rotate.
                super::spawn_maintenance(Arc::downgrade(&engine));
            }
            Inbound::PreKeysLow => {
                let weak = Arc::downgrade(&engine);
                tokio::spawn(async move {
                    if let Some(engine) = weak.upgrade() {
                        match engine.replenish_prekeys().await {
                            Ok(0) => {}
                            Ok(uploaded) => engine.emit(Event::PreKeysReplenished { uploaded }),
                            Err(e) => {
                                tracing::warn!(error = %crate::error::LogSafe(&e), "prekey replenishment failed")
                            }
                        }
                    }
                });
            }
            Inbound::KemPreKeysLow => crate::kem_maintenance::spawn_top_up(Arc::downgrade(&engine)),
        }
    }
}

/// Processes one delivery, emits its events and acks it if it was
/// persisted: whether it was acknowledged (`false`: kept), `None` if the
/// store failed (nothing acked: the relay redelivers it).
async fn process_one(
    engine: &Arc<Engine>,
    seq: u64,
    envelope: &[u8],
    received_at_ms: u64,
) -> Option<bool> {
    match crate::inbound::process(engine, envelope, received_at_ms).await {
        Ok(processed) => {
            // Typing notices are ephemeral: dropping one shown while
            // typing is off loses nothing.
            let events = engine.shown_events(processed.events).await;
            for event in events {
                engine.emit(event);
            }
            if processed.ack {
                // Persisted: now the relay may delete it.
                engine.fire(Request::Ack { seqs: vec![seq] });
            }
            Some(processed.ack)
        }
        Err(e) => {
            // The store failed: do not ack, the relay will redeliver.
            tracing::error!(error = %crate::error::LogSafe(&e), "could not persist a delivery");
            engine.emit(Event::DecryptionFailed {
                from: None,
                reason: DecryptFailure::Store(SharedError::new(e)),
            });
            None
        }
    }
}

/// A held item became openable (its Add came): processes the deliveries
/// this connection kept again, in relay order (a sender key before the
/// messages it opens, and a message kept only because its sender was not
/// known yet after the key that makes it known), as the relay's push after
/// a reconnect would. One kept again stays kept. Then tells the socket
/// task whether a reconnect is still needed for them: soon if a kept
/// envelope did not fit here, none if nothing kept on this connection is
/// left.
async fn reopen(
    engine: &Arc<Engine>,
    again: &mut KeptAgain,
    outstanding: &mut BTreeSet<u64>,
    kept: &mpsc::UnboundedSender<KeptSignal>,
) {
    let (all, missed) = again.take();
    let tried = all.len();
    for item in all {
        match process_one(engine, item.seq, &item.envelope, item.received_at_ms).await {
            Some(true) => {
                outstanding.remove(&item.seq);
            }
            Some(false) => again.keep(item),
            // The store failed: the relay pushes it on the next connection.
            None => {}
        }
    }
    tracing::debug!(tried, missed, "kept deliveries processed again");
    if missed {
        let _ = kept.send(KeptSignal::Openable);
    } else if outstanding.is_empty() {
        let _ = kept.send(KeptSignal::Settled);
    }
}
