//! `umbra daemon --idle-exit D`: when the daemon has had no client for
//! `D`, it stops, and the unlocked key goes with the process. This is what
//! makes `--agent-ttl` an agent (docs/CLI.md, "Agent") rather than a
//! daemon that holds the key until reboot.
//!
//! "Idle" means no connection open: every request arrives on a
//! connection, so the clock restarts when the last connection closes. An
//! open `umbra chat` or `receive --follow` keeps the daemon (and the key)
//! for as long as it is open, as a user who is using it expects.
//!
//! Must never: stop while a connection is open, or count a connection
//! twice (the guard is the only way in and out).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Open connections and when the last one closed.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    since: Mutex<Instant>,
    closed: Notify,
}

impl Activity {
    /// No connection yet: idle since now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
            closed: Notify::new(),
        })
    }

    /// Counts a connection as open until the guard drops.
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.open.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn since(&self) -> Instant {
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once no connection has been open for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            if self.open.load(Ordering::SeqCst) > 0 {
                // The guard of the last one to close notifies (a permit is
                // kept if nobody waits yet, so the wake is never lost).
                self.closed.notified().await;
                continue;
            }
            let deadline = self.since() + limit;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                // A connection came and went while we slept: start over.
                () = self.closed.notified() => continue,
            }
            if self.open.load(Ordering::SeqCst) == 0 && Instant::now() >= self.since() + limit {
                return;
            }
        }
    }
}

/// One open connection.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far beyond what any wait here takes; only a hang reaches it.
    const HANG: Duration = Duration::from_secs(60);

    // Real time, short limits, and only assertions that hold however slow
    // the machine is: never idle while a connection is open, and never
    // sooner than the limit after the last one closed.

    #[tokio::test]
    async fn idle_counts_from_the_last_connection_closing() {
        let activity = Activity::new();
        let limit = Duration::from_millis(50);
        let busy = activity.enter();
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle_for(limit).await })
        };
        tokio::time::sleep(limit * 4).await;
        assert!(!waiter.is_finished(), "idle while a connection was open");
        drop(busy);
        let closed = Instant::now();
        tokio::time::timeout(HANG, waiter).await.unwrap().unwrap();
        assert!(Instant::now() >= closed + limit);
    }

    #[tokio::test]
    async fn idle_waits_for_every_connection_not_just_the_first_to_close() {
        let activity = Activity::new();
        let limit = Duration::from_millis(50);
        let first = activity.enter();
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle_for(limit).await })
        };
        let second = activity.enter();
        drop(first);
        tokio::time::sleep(limit * 4).await;
        assert!(!waiter.is_finished(), "idle while one connection was open");
        drop(second);
        let last = Instant::now();
        tokio::time::timeout(HANG, waiter).await.unwrap().unwrap();
        assert!(Instant::now() >= last + limit);
    }
}
