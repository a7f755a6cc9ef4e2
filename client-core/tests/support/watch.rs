//! Waiting on a client's events in a test: subscribe before the action,
//! then read until a condition over everything seen holds, or fail naming
//! what was seen when the stream ends or [`WAIT`] passes.

use umbra_client_core::{Client, Event};

use super::{messages, WAIT};

/// An event stream subscribed before an action, read until a condition holds.
pub struct Watch(futures_util::stream::BoxStream<'static, Event>);

impl Watch {
    pub fn on(client: &Client) -> Self {
        Self(client.events())
    }

    pub async fn until(&mut self, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        while !done(&seen) {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Ok(Some(event)) => seen.push(event),
                Ok(None) => panic!("event stream ended; saw {seen:?}"),
                Err(_) => panic!("timed out; saw {seen:?}"),
            }
        }
        seen
    }

    pub async fn messages(&mut self, n: usize) -> Vec<Event> {
        self.until(|seen| messages(seen).len() >= n).await
    }
}
