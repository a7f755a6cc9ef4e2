//! One WebSocket to the relay, speaking `protocol::wire` frames.
//!
//! Binary messages only: each is one versioned frame, checked against
//! `MAX_FRAME_BYTES` before parsing (the decoder does it; the socket is also
//! configured with the same limit so an oversized frame is never buffered).
//! WebSocket pings are answered by tungstenite; a close or a text message ends
//! the link with an error.
//!
//! Must never: log frame contents (they carry tokens and envelopes), or
//! interpret a frame of an unsupported version.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use umbra_protocol::wire::{self, ClientFrame, RelayFrame, Request, Response};

use crate::failure::{ConnectionFailure, RelayMisbehaved};
use crate::Error;

/// An open WebSocket to the relay.
pub(crate) struct RelayLink {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_request_id: u64,
}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLink").finish_non_exhaustive()
    }
}

impl RelayLink {
    /// Opens the WebSocket at `url` (`ws://host/v1/ws` or `wss://...`; TLS
    /// trusts the roots in `tls_roots`, else the system bundle). The TCP, TLS
    /// and WebSocket handshakes together may take `timeout`: a relay that
    /// accepts and never answers must not hold the caller longer.
    pub(crate) async fn connect(
        url: &str,
        tls_roots: Option<&Path>,
        timeout: std::time::Duration,
    ) -> Result<Self, Error> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(wire::MAX_FRAME_BYTES))
            .max_frame_size(Some(wire::MAX_FRAME_BYTES));
        let connector = if url.starts_with("wss://") {
            Connector::Rustls(crate::tls::client_config(tls_roots)?)
        } else {
            Connector::Plain
        };
        // `true`: TCP_NODELAY. Every frame is one small write that waits for
        // its answer; with Nagle on, a frame sent while an earlier one is
        // unacknowledged waits for the relay's delayed ACK (about 5 ms at
        // the median, issue 11).
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(config),
            true,
            Some(connector),
        );
        let (ws, _response) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| {
                Error::Connection(ConnectionFailure::ConnectTimeout {
                    url: url.to_owned(),
                })
            })?
            .map_err(|e| {
                // rustls reports a plain-text answer to its ClientHello as a
                // record of an invalid content type.
                if url.starts_with("wss://") && e.to_string().contains("InvalidContentType") {
                    return Error::Connection(ConnectionFailure::NotTls {
                        url: url.to_owned(),
                    });
                }
                if let tokio_tungstenite::tungstenite::Error::Http(response) = &e {
                    if response.status().as_u16() == 503 {
                        return Error::Connection(ConnectionFailure::RelayFull {
                            url: url.to_owned(),
                            retry_after: retry_after(response.headers()),
                        });
                    }
                }
                Error::Connection(ConnectionFailure::Connect {
                    url: url.to_owned(),
                    source: Box::new(e),
                })
            })?;
        Ok(Self {
            ws,
            next_request_id: 1,
        })
    }

    /// Sends a request with a fresh id; returns the id.
    pub(crate) async fn send(&mut self, request: Request) -> Result<u64, Error> {
        request
            .check_limits()
            .map_err(|e| Error::InvalidMessage(crate::InvalidMessage::OverLimit(e)))?;
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1).max(1);
        let bytes = wire::encode_client(&ClientFrame {
            request_id,
            request,
        })?;
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|e| Error::Connection(ConnectionFailure::Send(Box::new(e))))?;
        Ok(request_id)
    }

    /// The next relay frame. `Ok(None)` when the relay closed the socket.
    pub(crate) async fn next_frame(&mut self) -> Result<Option<RelayFrame>, Error> {
        loop {
            let message = match self.ws.next().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::Connection(ConnectionFailure::Receive(Box::new(e))))
                }
                Some(Ok(m)) => m,
            };
            match message {
                Message::Binary(bytes) => return Ok(Some(wire::decode_relay(&bytes)?)),
                Message::Close(_) => return Ok(None),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Text(_) => return Err(Error::Protocol(RelayMisbehaved::TextFrame)),
            }
        }
    }

    /// Sends `request` and waits for its response, discarding pushed frames
    /// (only used before authentication, when the relay pushes nothing that
    /// matters; anything queued is redelivered on the real connection since
    /// it is never acknowledged here).
    pub(crate) async fn call(&mut self, request: Request) -> Result<Response, Error> {
        let id = self.send(request).await?;
        loop {
            match self.next_frame().await? {
                None => return Err(Error::Connection(ConnectionFailure::ClosedByRelay)),
                Some(RelayFrame::Response {
                    request_id,
                    response,
                }) if request_id == id || request_id == 0 => return Ok(response),
                Some(RelayFrame::Closing { code, reason }) => {
                    return Err(Error::relay(code, reason, None))
                }
                Some(_) => continue,
            }
        }
    }

    /// Closes the socket politely.
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Turns a relay `Error` response into [`Error`], passing others through.
pub(crate) fn into_result(response: Response) -> Result<Response, Error> {
    match response {
        Response::Error {
            code,
            message,
            retry_after_secs,
        } => Err(Error::relay(code, message, retry_after_secs)),
        other => Ok(other),
    }
}

/// The relay's `Retry-After` in seconds (the only form umbra-relay sends),
/// capped so a hostile or broken relay cannot park the client for days.
fn retry_after(headers: &tokio_tungstenite::tungstenite::http::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(crate::consts::MAX_RELAY_FULL_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's end of the TCP connection has `TCP_NODELAY` set, read
    /// from the socket itself (no timing).
    #[tokio::test]
    async fn the_relay_socket_has_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            // Held open until the client closes.
            while let Some(Ok(_)) = ws.next().await {}
        });
        let url = format!("ws://{addr}/v1/ws");
        let link = RelayLink::connect(&url, None, Duration::from_secs(10))
            .await
            .unwrap();
        match link.ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => assert!(tcp.nodelay().unwrap(), "Nagle is on"),
            _ => panic!("a ws:// URL gave a non-plain stream"),
        }
        link.close().await;
        server.await.unwrap();
    }
}
