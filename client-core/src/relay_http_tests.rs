//! Hostile canned answers for the relay HTTP client and the blob download:
//! a relay that lies about lengths, cuts a body short, sends more than it
//! said, refuses with a huge body, or drips. Each must end in an error, never
//! in a hang, a large allocation, or bytes taken from beyond the answer.

use super::*;
use std::time::Instant;

async fn exchange_for(answer: &'static [u8], close: bool) -> Exchange {
    let (ours, mut relay) = tokio::io::duplex(64 * 1024);
    relay.write_all(answer).await.unwrap();
    if close {
        drop(relay);
    } else {
        // Kept open: the client must decide from what it has.
        std::mem::forget(relay);
    }
    Exchange::over(ours, Duration::from_secs(5))
}

#[tokio::test]
async fn a_length_over_the_limit_is_refused_before_the_body() {
    // The relay stays silent after the head: reading any body would hang.
    let mut ex = exchange_for(b"HTTP/1.1 200 OK\r\ncontent-length: 1001\r\n\r\n", false).await;
    assert!(matches!(
        ex.answer(&[], 1000).await,
        Err(HttpError::BadAnswer("an answer body over its limit"))
    ));
}

#[tokio::test]
async fn a_short_body_is_an_error_not_an_end() {
    let mut ex = exchange_for(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", true).await;
    ex.answer(&[], 10).await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(ex.read(&mut buf).await.unwrap(), 3);
    assert!(matches!(
        ex.read(&mut buf).await,
        Err(HttpError::BadAnswer(
            "the relay closed inside the answer body"
        ))
    ));
}

#[tokio::test]
async fn bytes_beyond_the_length_are_refused_or_never_read() {
    // Arriving with the head: refused outright.
    let mut ex = exchange_for(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabcd", true).await;
    assert!(matches!(
        ex.answer(&[], 10).await,
        Err(HttpError::BadAnswer("more body than Content-Length"))
    ));
    // Arriving later: the body ends at its length and the rest is not read.
    let (ours, mut relay) = tokio::io::duplex(64 * 1024);
    relay
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        .await
        .unwrap();
    let mut ex = Exchange::over(ours, Duration::from_secs(5));
    ex.answer(&[], 10).await.unwrap();
    relay.write_all(b"abEXTRA").await.unwrap();
    drop(relay);
    assert_eq!(ex.read_to_end().await.unwrap(), b"ab");
}

#[tokio::test]
async fn a_huge_length_reserves_no_memory_up_front() {
    let mut ex = exchange_for(
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\nab",
        true,
    )
    .await;
    ex.answer(&[], u64::MAX).await.unwrap();
    // Would abort on allocation before the fix; now a plain error.
    assert!(ex.read_to_end().await.is_err());
}

#[test]
fn a_dripping_body_runs_out_of_allowance() {
    let idle = Duration::from_secs(30);
    let long_ago = |secs| {
        Instant::now()
            .checked_sub(Duration::from_secs(secs))
            .unwrap()
    };
    // 100 s in, 16 KiB moved: earned 1 s plus 30 s of grace, long spent.
    let mut slow = Pace {
        started: Some(long_ago(100)),
        moved: 16 * 1024,
    };
    assert!(matches!(slow.limit(idle), Err(HttpError::Timeout(_))));
    // 100 s in at the minimum rate (100 s worth moved): still allowed a step.
    let mut steady = Pace {
        started: Some(long_ago(100)),
        moved: 100 * HTTP_MIN_BODY_BYTES_PER_SEC,
    };
    let left = steady.limit(idle).unwrap();
    assert!(left <= idle && !left.is_zero());
}
