//! The hub's unit tests: registration, replacement, announcements, control
//! channels and token lookups, without a store or a socket.

use super::*;
use crate::auth::tokens::TokenHash;
use crate::control::ConnectionNonce;
use umbra_wire::{AccountId, DeviceId, ErrorCode};

fn token(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn addr(n: u8) -> Address {
    Address {
        account: AccountId::from_bytes([n; 16]),
        device: DeviceId::PRIMARY,
    }
}

#[tokio::test]
async fn second_registration_replaces_the_first() {
    let hub = Hub::default();
    let mut first = hub.register(addr(1), 1, token(1));
    let mut second = hub.register(addr(1), 2, token(2));
    assert_eq!(
        first.control.recv().await,
        Some(Control::Close(ErrorCode::Replaced, REPLACED_REASON))
    );
    hub.unregister(addr(1), 1);
    assert_eq!(
        hub.connected(),
        1,
        "the replaced connection must not evict its successor"
    );
    assert!(hub.send_ephemeral(addr(1), vec![7]));
    assert_eq!(
        second.control.recv().await,
        Some(Control::Ephemeral(vec![7]))
    );
    hub.unregister(addr(1), 2);
    assert_eq!(hub.connected(), 0);
    assert!(
        !hub.send_ephemeral(addr(1), vec![8]),
        "offline devices get nothing"
    );
}

#[tokio::test]
async fn registration_starts_woken_and_wake_reaches_only_the_target() {
    let hub = Hub::default();
    let a = hub.register(addr(1), 1, token(1));
    let b = hub.register(addr(2), 2, token(2));
    a.wake.notified().await; // initial fetch
    b.wake.notified().await;
    hub.wake(addr(1));
    a.wake.notified().await;
    let b_woken = tokio::time::timeout(std::time::Duration::ZERO, b.wake.notified()).await;
    assert!(b_woken.is_err(), "b was not woken");
}

#[tokio::test]
async fn ephemeral_is_dropped_when_the_recipient_is_not_reading() {
    let hub = Hub::default();
    let _reg = hub.register(addr(3), 1, token(1));
    for _ in 0..CONTROL_CAPACITY {
        assert!(hub.send_ephemeral(addr(3), vec![0]));
    }
    assert!(
        !hub.send_ephemeral(addr(3), vec![0]),
        "full channel drops instead of blocking"
    );
}

#[tokio::test]
async fn close_account_spares_the_kept_connection() {
    let hub = Hub::default();
    let mut mine = hub.register(addr(4), 10, token(10));
    let mut other = hub.register(
        Address {
            account: AccountId::from_bytes([4; 16]),
            device: DeviceId(2),
        },
        11,
        token(11),
    );
    hub.close_account(
        AccountId::from_bytes([4; 16]),
        Some(10),
        ErrorCode::AuthFailed,
        "logged out",
    );
    assert_eq!(
        other.control.recv().await,
        Some(Control::Close(ErrorCode::AuthFailed, "logged out"))
    );
    assert!(mine.control.try_recv().is_err());
}

fn foreign() -> ConnectionNonce {
    ConnectionNonce::random()
}

#[tokio::test]
async fn a_foreign_announcement_replaces_only_a_confirmed_connection() {
    let hub = Hub::default();
    let mut reg = hub.register(addr(5), 1, token(1));
    // Older than ours (ours has not come back yet): ignored.
    hub.announced(addr(5), foreign());
    assert!(reg.control.try_recv().is_err());
    assert_eq!(hub.connected(), 1);
    // Ours comes back: confirmed, and a later foreign one replaces it.
    hub.announced(addr(5), reg.nonce);
    assert!(reg.control.try_recv().is_err(), "our own never closes us");
    hub.announced(addr(5), foreign());
    assert_eq!(
        reg.control.recv().await,
        Some(Control::Close(ErrorCode::Replaced, REPLACED_REASON))
    );
    assert_eq!(hub.connected(), 0, "nothing is routed to it any more");
    assert_eq!(
        reg.control.recv().await,
        None,
        "the entry is gone, so the channel ends"
    );
}

#[tokio::test]
async fn our_own_late_announcement_never_closes_our_newer_connection() {
    let hub = Hub::default();
    let first = hub.register(addr(6), 1, token(1));
    let mut second = hub.register(addr(6), 2, token(2));
    // The second's announcement overtakes the first's.
    hub.announced(addr(6), second.nonce);
    hub.announced(addr(6), first.nonce);
    assert!(second.control.try_recv().is_err());
    assert_eq!(hub.live(None).len(), 1);
    assert_eq!(hub.live(None)[0].connection, 2);
}

#[tokio::test]
async fn after_a_resync_or_a_failed_announcement_foreign_ones_replace() {
    let hub = Hub::default();
    let mut a = hub.register(addr(7), 1, token(1));
    hub.resync_announcements();
    hub.announced(addr(7), foreign());
    assert!(matches!(
        a.control.recv().await,
        Some(Control::Close(ErrorCode::Replaced, _))
    ));

    let mut b = hub.register(addr(8), 2, token(2));
    hub.announcement_failed(addr(8), b.nonce);
    hub.announced(addr(8), foreign());
    assert!(matches!(
        b.control.recv().await,
        Some(Control::Close(ErrorCode::Replaced, _))
    ));
}

#[tokio::test]
async fn live_lists_an_accounts_connections_and_close_connection_spares_successors() {
    let hub = Hub::default();
    let _a = hub.register(addr(9), 1, token(1));
    let _b = hub.register(addr(10), 2, token(2));
    let live = hub.live(Some(AccountId::from_bytes([9; 16])));
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].connection, 1);
    assert!(live[0].token == token(1));
    assert_eq!(hub.live(None).len(), 2);

    let mut successor = hub.register(addr(9), 3, token(3));
    hub.close_connection(addr(9), 1, ErrorCode::TokenExpired, "revoked");
    assert!(
        successor.control.try_recv().is_err(),
        "a stale id closes nothing"
    );
    hub.close_connection(addr(9), 3, ErrorCode::TokenExpired, "revoked");
    assert_eq!(
        successor.control.recv().await,
        Some(Control::Close(ErrorCode::TokenExpired, "revoked"))
    );
    assert_eq!(hub.connected(), 1);
}
