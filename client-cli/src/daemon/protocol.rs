//! The daemon's wire format: JSON-RPC 2.0 objects, one per line (UTF-8,
//! `\n`-terminated), in both directions; notifications carry events. A
//! line may also hold a batch (an array of requests, answered by one array
//! of responses).
//!
//! Error codes are JSON-RPC's own (-32700 parse error, -32600 invalid
//! request, -32601 method not found, -32602 invalid params, -32603 internal)
//! plus an application range inside the spec's server-error block: a
//! command that would have exited with status N fails with code
//! `-32000 - N` and `data.exit_code = N`, so a command routed through the
//! daemon exits exactly as it would without it (docs/CLI.md).
//!
//! Must never: buffer more than [`MAX_REQUEST_BYTES`] of one line (a
//! client sending an endless line gets an error and is disconnected), or
//! panic on any input.

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::exit_status::ExitStatus;

/// The longest request line accepted. A message body is at most 32 KiB of
/// text; even fully `\u`-escaped it stays far below this.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Application errors are `APP_BASE - exit status`.
pub const APP_BASE: i64 = -32000;

/// The JSON-RPC error code for a failure that would exit with `status`.
pub fn app_code(status: ExitStatus) -> i64 {
    APP_BASE - i64::from(status.code())
}

/// The exit status an application error code stands for, if it is one.
pub fn status_of_code(code: i64) -> Option<ExitStatus> {
    let n = APP_BASE.checked_sub(code)?;
    exit_status_from(u8::try_from(n).ok()?)
}

/// The exit status with this number, if umbra has one.
pub fn exit_status_from(code: u8) -> Option<ExitStatus> {
    use ExitStatus::*;
    [
        Success,
        UserError,
        Usage,
        Network,
        UntrustedKey,
        RateLimited,
        AuthFailed,
        LocalData,
        Internal,
    ]
    .into_iter()
    .find(|s| s.code() == code)
}

/// One parsed request. `id` is `None` for a notification (no answer).
#[derive(Debug)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// The most requests one batch may hold. A 1 MiB line could otherwise
/// carry tens of thousands, all answered in one array held in memory; a
/// client with more work sends more lines (or more batches).
pub const MAX_BATCH: usize = 256;

/// What one line holds.
#[derive(Debug)]
pub enum Line {
    /// One request (or a malformed one: the error response to send).
    Single(Result<Request, Value>),
    /// A batch (JSON-RPC 2.0 §6): each element parsed on its own, in order.
    Batch(Vec<Result<Request, Value>>),
    /// A line that gets one error response and nothing else (not JSON, an
    /// empty batch, a batch over [`MAX_BATCH`]).
    Refused(Value),
}

/// Parses one line: a request object or a batch array of them.
pub fn parse_line(line: &[u8]) -> Line {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(e) => {
            return Line::Refused(error_response(
                Value::Null,
                PARSE_ERROR,
                &format!("parse error: {e}"),
                None,
            ))
        }
    };
    match value {
        // §6: "If the batch rpc call itself fails to be recognized as an
        // valid JSON or as an Array with at least one value, the response
        // from the Server MUST be a single Response object."
        Value::Array(items) if items.is_empty() => Line::Refused(error_response(
            Value::Null,
            INVALID_REQUEST,
            "an empty batch is not a request",
            None,
        )),
        Value::Array(items) if items.len() > MAX_BATCH => Line::Refused(error_response(
            Value::Null,
            INVALID_REQUEST,
            &format!(
                "a batch holds at most {MAX_BATCH} requests, this one {}",
                items.len()
            ),
            None,
        )),
        Value::Array(items) => Line::Batch(items.into_iter().map(parse_request_value).collect()),
        single => Line::Single(parse_request_value(single)),
    }
}

/// Parses one line holding a single request; on failure returns the error
/// response to send. A batch is refused here: [`parse_line`] takes those.
#[cfg(test)]
pub fn parse_request(line: &[u8]) -> Result<Request, Value> {
    match parse_line(line) {
        Line::Single(request) => request,
        Line::Refused(response) => Err(response),
        Line::Batch(_) => Err(error_response(
            Value::Null,
            INVALID_REQUEST,
            "a batch where one request was expected",
            None,
        )),
    }
}

/// Checks one request object (a whole line, or one element of a batch).
pub fn parse_request_value(value: Value) -> Result<Request, Value> {
    let Value::Object(mut object) = value else {
        return Err(error_response(
            Value::Null,
            INVALID_REQUEST,
            "a request must be a JSON object",
            None,
        ));
    };
    let id = object.remove("id");
    // An id must be a string, a number or null (JSON-RPC 2.0 §4).
    let answer_to = match &id {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Null)) => v.clone(),
        Some(_) => {
            return Err(error_response(
                Value::Null,
                INVALID_REQUEST,
                "id must be a string, a number or null",
                None,
            ))
        }
        None => Value::Null,
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error_response(
            answer_to,
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
            None,
        ));
    }
    let Some(Value::String(method)) = object.remove("method") else {
        return Err(error_response(
            answer_to,
            INVALID_REQUEST,
            "method must be a string",
            None,
        ));
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err(error_response(
                answer_to,
                INVALID_PARAMS,
                "params must be an object (by-name parameters)",
                None,
            ))
        }
    };
    Ok(Request { id, method, params })
}

pub fn result_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error_response(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// What one read from a connection produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line, without its `\n`.
    Line(Vec<u8>),
    /// The line grew past the limit before it ended.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Reads one line of at most `max` bytes. Never holds more than `max` plus
/// one buffer's worth.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Frame> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() {
                Frame::Eof
            } else {
                Frame::Line(line)
            });
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            if line.len() + end > max {
                return Ok(Frame::TooLong);
            }
            line.extend_from_slice(&buf[..end]);
            reader.consume(end + 1);
            return Ok(Frame::Line(line));
        }
        let n = buf.len();
        if line.len() + n > max {
            return Ok(Frame::TooLong);
        }
        line.extend_from_slice(buf);
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_parse_error_with_a_null_id() {
        let err = parse_request(b"{not json").unwrap_err();
        assert_eq!(err["error"]["code"], PARSE_ERROR);
        assert_eq!(err["id"], Value::Null);
        assert_eq!(err["jsonrpc"], "2.0");
    }

    #[test]
    fn malformed_requests_are_invalid_and_keep_their_id() {
        let err = parse_request(br#"{"jsonrpc":"1.0","id":7,"method":"whoami"}"#).unwrap_err();
        assert_eq!(err["error"]["code"], INVALID_REQUEST);
        assert_eq!(err["id"], 7);
        let err = parse_request(br#"{"jsonrpc":"2.0","id":"a","method":3}"#).unwrap_err();
        assert_eq!(
            (err["error"]["code"].clone(), err["id"].clone()),
            (INVALID_REQUEST.into(), "a".into())
        );
        let err = parse_request(br#"7"#).unwrap_err();
        assert_eq!(err["error"]["code"], INVALID_REQUEST);
        let err =
            parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"send","params":[1]}"#).unwrap_err();
        assert_eq!(err["error"]["code"], INVALID_PARAMS);
    }

    #[test]
    fn a_well_formed_request_parses() {
        let req = parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"whoami"}"#).unwrap();
        assert_eq!((req.id, req.method.as_str()), (Some(1.into()), "whoami"));
        assert!(req.params.as_object().is_some_and(|p| p.is_empty()));
        let note = parse_request(br#"{"jsonrpc":"2.0","method":"subscribe"}"#).unwrap();
        assert_eq!(note.id, None);
    }

    #[test]
    fn a_batch_parses_each_element_on_its_own() {
        let line =
            br#"[{"jsonrpc":"2.0","id":1,"method":"whoami"},{"jsonrpc":"2.0","method":"x"},1,[]]"#;
        let Line::Batch(items) = parse_line(line) else {
            panic!("not a batch");
        };
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().id, Some(1.into()));
        assert_eq!(items[1].as_ref().unwrap().id, None);
        for bad in &items[2..] {
            let err = bad.as_ref().unwrap_err();
            assert_eq!(
                (err["error"]["code"].clone(), err["id"].clone()),
                (INVALID_REQUEST.into(), Value::Null)
            );
        }
    }

    #[test]
    fn an_empty_or_oversized_batch_and_broken_json_get_one_error() {
        let Line::Refused(err) = parse_line(b"[]") else {
            panic!("[] was accepted");
        };
        assert_eq!(
            (err["error"]["code"].clone(), err["id"].clone()),
            (INVALID_REQUEST.into(), Value::Null)
        );
        let big = format!(
            "[{}]",
            vec![r#"{"jsonrpc":"2.0","method":"x"}"#; MAX_BATCH + 1].join(",")
        );
        let Line::Refused(err) = parse_line(big.as_bytes()) else {
            panic!("an oversized batch was accepted");
        };
        assert_eq!(err["error"]["code"], INVALID_REQUEST);
        let fits = format!(
            "[{}]",
            vec![r#"{"jsonrpc":"2.0","method":"x"}"#; MAX_BATCH].join(",")
        );
        assert!(
            matches!(parse_line(fits.as_bytes()), Line::Batch(items) if items.len() == MAX_BATCH)
        );
        // §6: a batch that is not valid JSON is one parse error.
        let Line::Refused(err) = parse_line(br#"[{"jsonrpc":"2.0","method":"x"},"#) else {
            panic!("broken JSON was accepted");
        };
        assert_eq!(err["error"]["code"], PARSE_ERROR);
    }

    #[test]
    fn exit_statuses_round_trip_through_error_codes() {
        for status in [
            ExitStatus::UserError,
            ExitStatus::Network,
            ExitStatus::UntrustedKey,
            ExitStatus::LocalData,
            ExitStatus::Internal,
        ] {
            let code = app_code(status);
            assert!((-32099..=-32000).contains(&code), "{code}");
            assert_eq!(status_of_code(code), Some(status));
        }
        assert_eq!(status_of_code(PARSE_ERROR), None);
        assert_eq!(status_of_code(-32050), None);
    }

    #[tokio::test]
    async fn lines_are_bounded_and_split() {
        let mut input: &[u8] = b"one\ntwo\n";
        assert_eq!(
            read_frame(&mut input, 10).await.unwrap(),
            Frame::Line(b"one".to_vec())
        );
        assert_eq!(
            read_frame(&mut input, 10).await.unwrap(),
            Frame::Line(b"two".to_vec())
        );
        assert_eq!(read_frame(&mut input, 10).await.unwrap(), Frame::Eof);
        let long = vec![b'x'; 64];
        let mut input: &[u8] = &long;
        assert_eq!(read_frame(&mut input, 10).await.unwrap(), Frame::TooLong);
        let mut input: &[u8] = b"0123456789\n";
        assert_eq!(
            read_frame(&mut input, 10).await.unwrap(),
            Frame::Line(b"0123456789".to_vec())
        );
        let mut input: &[u8] = b"01234567890\n";
        assert_eq!(read_frame(&mut input, 10).await.unwrap(), Frame::TooLong);
    }
}
