//! The write side of one connection: a bounded queue drained by a writer
//! task, and a short backlog that lets the read loop queue a frame without
//! ever waiting for the socket.
//!
//! A client that stops reading fills its TCP window, then the writer's
//! socket write stops completing, then the queue fills. Nothing here waits
//! for that: the read loop's pushes land in the backlog, the read loop
//! stops reading requests while the backlog is not empty (so the backlog
//! cannot grow with client input), and it keeps polling its timers and hub
//! messages. If the backlog cannot move for [`Limits::write_stall_timeout`]
//! (or one socket write takes that long), the connection is closed.
//!
//! Must never: block the caller of [`Outbox::push`], reorder frames, hold
//! more than [`BACKLOG_CAPACITY`] frames beyond the queue, or keep a stalled
//! writer task (and its socket buffers) alive past the stall timeout.
//!
//! [`Limits::write_stall_timeout`]: crate::config::Limits::write_stall_timeout

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

use crate::app::AppState;
use crate::metrics::Metrics;

/// Frames queued for the writer per connection. Small on purpose: a
/// connection's memory must not grow with a client that does not read.
pub const OUTBOX_CAPACITY: usize = 16;

/// Frames the read loop may hold beyond a full queue. While any is held the
/// read loop takes no new request, so what can pile up is the reply to one
/// request, a `Closing` and the close frame; a push beyond this means the
/// invariant broke and the connection is dropped.
pub const BACKLOG_CAPACITY: usize = 4;

/// The writer side is gone (socket failed, writer stalled, or backlog overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// What [`Outbox::progress`] observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A backlogged frame moved into the queue.
    Drained,
    /// The backlog did not move for the stall timeout.
    Stalled,
    /// The writer ended.
    WriterGone,
}

/// The read loop's handle on the write side.
pub struct Outbox {
    tx: mpsc::Sender<Message>,
    backlog: VecDeque<Message>,
    /// When the oldest backlogged frame found the queue full.
    stalled_since: Option<Instant>,
    stall_timeout: Duration,
}

impl Outbox {
    /// An outbox over `tx`, whose receiver a [`write_loop`] drains.
    pub fn new(tx: mpsc::Sender<Message>, stall_timeout: Duration) -> Self {
        Outbox {
            tx,
            backlog: VecDeque::new(),
            stalled_since: None,
            stall_timeout,
        }
    }

    /// A sender for another task (delivery), which may wait on a full queue:
    /// it blocks only itself.
    pub fn sender(&self) -> mpsc::Sender<Message> {
        self.tx.clone()
    }

    /// Whether frames are waiting for room in the queue.
    pub fn is_backlogged(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Queues `message` without waiting; behind the backlog if there is one.
    pub fn push(&mut self, message: Message) -> Result<(), Gone> {
        if self.backlog.is_empty() {
            match self.tx.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => return Err(Gone),
                Err(TrySendError::Full(message)) => {
                    self.stalled_since = Some(Instant::now());
                    self.backlog.push_back(message);
                    return Ok(());
                }
            }
        }
        if self.backlog.len() >= BACKLOG_CAPACITY {
            return Err(Gone);
        }
        self.backlog.push_back(message);
        Ok(())
    }

    /// Queues `message` if there is room now, else drops it: for best-effort
    /// frames (ephemeral payloads, hints, pings) that must not extend a backlog.
    pub fn offer(&mut self, message: Message) -> Result<(), Gone> {
        if self.is_backlogged() {
            return Ok(());
        }
        match self.tx.try_send(message) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(Gone),
        }
    }

    /// Waits for the write side to change: a backlogged frame moving into the
    /// queue, the stall deadline passing, or the writer ending. Cancel-safe
    /// (meant for a `select!` arm).
    pub async fn progress(&mut self) -> Progress {
        let Some(since) = self.stalled_since.filter(|_| self.is_backlogged()) else {
            self.tx.closed().await;
            return Progress::WriterGone;
        };
        tokio::select! {
            // A frame that can move moves, even past the deadline.
            biased;
            permit = self.tx.reserve() => match (permit, self.backlog.pop_front()) {
                (Ok(permit), Some(message)) => {
                    permit.send(message);
                    self.stalled_since = self.is_backlogged().then(Instant::now);
                    Progress::Drained
                }
                (Ok(_), None) => Progress::Drained,
                (Err(_), _) => Progress::WriterGone,
            },
            () = tokio::time::sleep_until(since + self.stall_timeout) => Progress::Stalled,
        }
    }

    /// Moves the backlog into the queue, waiting until `deadline` at most
    /// (the goodbye of a closing connection). `false` if it did not fit.
    pub async fn flush(&mut self, deadline: Instant) -> bool {
        while let Some(message) = self.backlog.pop_front() {
            match tokio::time::timeout_at(deadline, self.tx.send(message)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
        true
    }
}

/// Writes queued messages in order; ends when the queue closes, the socket
/// fails, or one write takes longer than `stall_timeout` (a peer that stopped
/// reading), closing the socket's write side either way.
pub async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    state: AppState,
    stall_timeout: Duration,
) {
    while let Some(message) = queue.recv().await {
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(stall_timeout, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!("a write made no progress within the stall timeout; closing");
                return;
            }
        }
        Metrics::inc(&state.metrics.frames_out);
        if is_close {
            break;
        }
    }
    let _ = tokio::time::timeout(stall_timeout, sink.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Message {
        Message::Binary(vec![n].into())
    }

    #[tokio::test]
    async fn a_full_queue_backlogs_without_waiting_then_stalls() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(tx, Duration::from_millis(10));
        outbox.push(frame(1)).expect("queued");
        outbox.push(frame(2)).expect("backlogged, not blocked");
        assert!(outbox.is_backlogged());
        outbox.offer(frame(9)).expect("best effort is dropped");
        for n in 3..(3 + BACKLOG_CAPACITY as u8 - 1) {
            outbox.push(frame(n)).expect("room in the backlog");
        }
        assert_eq!(outbox.push(frame(99)), Err(Gone), "backlog is bounded");

        // Nothing reads: the stall deadline fires.
        assert_eq!(outbox.progress().await, Progress::Stalled);

        // Reading one frame lets the backlog move, in order.
        assert_eq!(rx.recv().await, Some(frame(1)));
        assert_eq!(outbox.progress().await, Progress::Drained);
        assert_eq!(rx.recv().await, Some(frame(2)));
    }

    #[tokio::test]
    async fn progress_reports_a_vanished_writer() {
        let (tx, rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(tx, Duration::from_millis(10));
        drop(rx);
        assert_eq!(outbox.progress().await, Progress::WriterGone);
        assert_eq!(outbox.push(frame(1)), Err(Gone));
    }
}
