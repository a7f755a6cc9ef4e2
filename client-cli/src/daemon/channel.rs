//! A concurrent connection to the daemon, for `umbra chat`: any number of
//! requests in flight at once, each answer routed back to its caller by
//! id, and event notifications delivered on their own channel meanwhile.
//! ([`super::client::DaemonConnection`] is the simpler one-request-at-a-time
//! form the other commands use.)
//!
//! Must never: hand one caller another request's answer, wait forever on a
//! daemon that went away (every pending call fails when the connection
//! ends), or write a request line other than whole (one writer at a time).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroize as _;

use super::client::{daemon_gone, wipe, DaemonConnection, RpcError, MAX_RESPONSE_BYTES};
use super::protocol::{read_frame, Frame};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A shared connection; calls may come from many tasks.
pub struct RpcChannel {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for RpcChannel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RpcChannel {
    /// Takes over `connection`. Notifications (`event`s after `subscribe`)
    /// arrive on the returned receiver, which ends when the daemon does.
    ///
    /// Unbounded on purpose: the chat loop may wait on a call (a safety
    /// number) while events keep coming, and a bounded queue would then
    /// stop the reader before it reaches that call's answer.
    pub fn new(connection: DaemonConnection) -> (Arc<Self>, mpsc::UnboundedReceiver<Value>) {
        let (reader, writer) = connection.into_parts();
        let pending: Pending = Arc::default();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(reader, pending.clone(), events_tx));
        let channel = Arc::new(Self {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next_id: AtomicU64::new(1),
            reader,
        });
        (channel, events_rx)
    }

    /// One call. The outer error is the connection (the daemon went away),
    /// the inner one the daemon's answer.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Result<Value, RpcError>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, tx);
        let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = request.to_string();
        wipe(&mut request);
        line.push('\n');
        let written = self.writer.lock().await.write_all(line.as_bytes()).await;
        line.zeroize();
        if let Err(e) = written {
            self.forget(id);
            return Err(daemon_gone(&e.to_string()).into());
        }
        let value = rx
            .await
            .map_err(|_| daemon_gone("it closed the connection"))?;
        if let Some(error) = value.get("error") {
            return Ok(Err(RpcError::from_value(error)));
        }
        Ok(Ok(value.get("result").cloned().unwrap_or(Value::Null)))
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&id);
    }
}

async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    pending: Pending,
    events: mpsc::UnboundedSender<Value>,
) {
    while let Ok(Frame::Line(line)) = read_frame(&mut reader, MAX_RESPONSE_BYTES).await {
        let Ok(value) = serde_json::from_slice::<Value>(&line) else {
            tracing::warn!("the daemon sent a line that is not JSON; ignored");
            continue;
        };
        if value.get("method").and_then(Value::as_str) == Some("event") {
            let _ = events.send(value["params"].clone());
            continue;
        }
        let waiter = value.get("id").and_then(Value::as_u64).and_then(|id| {
            pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&id)
        });
        if let Some(waiter) = waiter {
            let _ = waiter.send(value);
        }
    }
    // Every caller still waiting learns the daemon is gone.
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}
