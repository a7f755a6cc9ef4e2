//! In-process relay tests of linking and removing devices (docs/PROTOCOL.md
//! 15.5, 15.6), over real WebSockets, on SQLite and on PostgreSQL (two
//! nodes sharing the database; it must be reachable under CI=true): the
//! rendezvous's posts and single-use ticket, its limits and expiry (a
//! ticket past it is refused and the expiry task deletes it), the joiner's
//! one token, the joiner's exemption from the authentication deadline, and a removed device whose connection closes and whose token
//! stops working on every node at once, while sends to it are refused,
//! a removed device 1 that cannot log in again with the password, and
//! `LinkFetch`'s budget (11.7): a joiner polling past it is refused with
//! `RateLimited` and a wait, while a link polled within it completes; and a
//! joiner whose enrolment the relay refused (the account full) is told so
//! by its next `LinkFetch`, on any node.
//!
//! Must never: pass with a relay that lets a ticket be joined twice, lets
//! a connection that did not join act as the joiner, issues a second token,
//! or keeps a removed device's connection or token alive on any node, or
//! gives a removed device a new token.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, login, relay_with, signed_in, Client};
use devices::{authenticate, fetch_enrolment, link_device, nodes, nodes_with, Backend};
use umbra_relay::config::Settings;
use umbra_wire::{
    DeviceId, ErrorCode, LinkMessage, LinkTicketId, OutgoingEnvelope, RelayFrame, Request,
    Response, SendOutcome, LINK_TICKET_TTL_SECS, MAX_DEVICES_PER_ACCOUNT,
    MAX_LINK_MESSAGES_PER_SIDE, MAX_LINK_TICKETS_PER_ACCOUNT,
};

on_both_stores!(
    a_ticket_is_joined_once_and_carries_both_sides_posts,
    the_rendezvous_keeps_its_limits,
    a_removed_device_is_cut_off_on_every_node,
    an_expired_ticket_is_refused_and_purged,
    a_removed_device_1_cannot_log_in,
    link_fetches_past_their_budget_are_refused,
    a_refused_enrolment_is_told_to_the_joiner,
);

async fn a_ticket_is_joined_once_and_carries_both_sides_posts(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let Response::LinkTicket { ticket, .. } = alice.ask(Request::LinkCreate).await else {
        panic!("no ticket");
    };
    // The joiner may be on another node than the creator.
    let joiner_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let mut joiner = Client::connect(joiner_relay).await;
    // Not joined yet: this connection is nobody for the ticket.
    let response = joiner
        .ask(Request::LinkPost {
            ticket,
            payload: b"early".to_vec(),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
    assert_eq!(joiner.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    // Joined once: a second joiner, on any node, is refused.
    let mut intruder = Client::connect(&nodes.a).await;
    let response = intruder.ask(Request::LinkJoin { ticket }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
    let response = intruder.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
    // An unknown ticket.
    let unknown = LinkTicketId::from_bytes([0x42; 16]);
    let response = intruder.ask(Request::LinkJoin { ticket: unknown }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));

    let post = |payload: &[u8]| Request::LinkPost {
        ticket,
        payload: payload.to_vec(),
    };
    assert_eq!(joiner.ask(post(b"joiner 1")).await, Response::Ok);
    assert_eq!(alice.ask(post(b"creator 1")).await, Response::Ok);
    assert_eq!(alice.ask(post(b"creator 2")).await, Response::Ok);
    let response = alice.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert_eq!(
        response,
        Response::LinkMessages {
            messages: vec![LinkMessage(b"joiner 1".to_vec())],
            enrolled: None
        }
    );
    let response = joiner.ask(Request::LinkFetch { ticket, after: 1 }).await;
    assert_eq!(
        response,
        Response::LinkMessages {
            messages: vec![LinkMessage(b"creator 2".to_vec())],
            enrolled: None
        }
    );
    // Only the creator enrols.
    let response = joiner.ask(Request::LinkEnrol { ticket }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::NotAuthenticated));
    let Response::DeviceEnrolled { device } = alice.ask(Request::LinkEnrol { ticket }).await else {
        panic!("LinkEnrol did not enrol");
    };
    assert_eq!(device, DeviceId(2));
    let response = alice.ask(Request::LinkEnrol { ticket }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
    let enrolled = fetch_enrolment(&mut joiner, ticket).await;
    assert_eq!((enrolled.account, enrolled.device), (alice_id, device));
    // One token per ticket: the next fetch carries none.
    let Response::LinkMessages {
        enrolled: again, ..
    } = joiner.ask(Request::LinkFetch { ticket, after: 2 }).await
    else {
        panic!("LinkFetch answered otherwise");
    };
    assert!(again.is_none(), "a second token was issued");
    let address = umbra_wire::Address {
        account: alice_id,
        device,
    };
    authenticate(&mut joiner, &enrolled.token, device, address).await;
    // Once authenticated the joiner is no longer the ticket's joiner side.
    let response = joiner.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
}

async fn the_rendezvous_keeps_its_limits(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, _, _) = signed_in(&nodes.a, "alice").await;
    let mut tickets = Vec::new();
    for _ in 0..MAX_LINK_TICKETS_PER_ACCOUNT {
        let Response::LinkTicket { ticket, expires_at } = alice.ask(Request::LinkCreate).await
        else {
            panic!("no ticket");
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(expires_at > now && expires_at <= now + LINK_TICKET_TTL_SECS);
        tickets.push(ticket);
    }
    let response = alice.ask(Request::LinkCreate).await;
    assert_eq!(error_code(&response), Some(ErrorCode::RateLimited));
    let Response::Error {
        retry_after_secs, ..
    } = response
    else {
        unreachable!()
    };
    assert!(matches!(retry_after_secs, Some(s) if (1..=LINK_TICKET_TTL_SECS as u32).contains(&s)));
    let ticket = tickets[0];
    let mut joiner = Client::connect(&nodes.a).await;
    assert_eq!(joiner.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    for n in 0..MAX_LINK_MESSAGES_PER_SIDE {
        let response = joiner
            .ask(Request::LinkPost {
                ticket,
                payload: vec![n as u8],
            })
            .await;
        assert_eq!(response, Response::Ok, "post {n}");
    }
    let response = joiner
        .ask(Request::LinkPost {
            ticket,
            payload: Vec::new(),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::LimitExceeded));
    // The other side's slots are its own.
    let response = alice
        .ask(Request::LinkPost {
            ticket,
            payload: Vec::new(),
        })
        .await;
    assert_eq!(response, Response::Ok);
}

async fn a_removed_device_is_cut_off_on_every_node(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut carol, _, _) = signed_in(&nodes.a, "carol").await;
    // The second device lives on node B when there is one.
    let second_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut second, address, token) = link_device(&mut alice, second_relay).await;
    assert_eq!(second.ask(Request::Ping).await, Response::Pong);
    // A device cannot remove itself.
    let response = second
        .ask(Request::RemoveDevice {
            device: address.device,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));

    let response = alice
        .ask(Request::RemoveDevice {
            device: address.device,
        })
        .await;
    assert_eq!(response, Response::Ok);
    // Its connection is closed, on whichever node it is.
    loop {
        match second.next().await {
            Some(RelayFrame::Closing { code, .. }) => {
                assert_eq!(code, ErrorCode::TokenExpired);
                break;
            }
            Some(RelayFrame::Response { .. } | RelayFrame::QueueEmpty) => continue,
            Some(RelayFrame::PreKeysLow { .. }) => continue,
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    // Its token works nowhere.
    for relay in [Some(&nodes.a), nodes.b.as_ref()].into_iter().flatten() {
        let mut again = Client::connect(relay).await;
        let (response, _) = again
            .call(Request::Authenticate {
                token: token.clone(),
                device: address.device,
            })
            .await;
        assert_eq!(error_code(&response), Some(ErrorCode::AuthFailed));
    }
    // Sends to it are refused; device 1 still receives.
    let response = carol
        .ask(Request::Send {
            messages: vec![
                OutgoingEnvelope {
                    to: address,
                    envelope: vec![1; 30],
                },
                OutgoingEnvelope {
                    to: umbra_wire::Address::primary(alice_id),
                    envelope: vec![1; 30],
                },
            ],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("Send answered {response:?}");
    };
    assert_eq!(
        results[0],
        SendOutcome::Rejected {
            code: ErrorCode::UnknownRecipient
        }
    );
    assert!(
        matches!(results[1], SendOutcome::Accepted { .. }),
        "{results:?}"
    );
    // Removed once: a second removal finds no current device, and the
    // account lists device 1 alone.
    let response = alice
        .ask(Request::RemoveDevice {
            device: address.device,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));
    let Response::Devices { devices } = alice.ask(Request::ListDevices).await else {
        panic!("ListDevices answered otherwise");
    };
    assert_eq!(
        devices.iter().map(|d| d.device).collect::<Vec<_>>(),
        vec![DeviceId::PRIMARY]
    );
}

async fn an_expired_ticket_is_refused_and_purged(backend: Backend, test: &str) {
    use umbra_relay::store::LinkLimits;
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (_alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let store = &nodes.a.relay.state.store;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // A ticket created 400 s ago, which expired 100 s ago (no test waits
    // out LINK_TICKET_TTL_SECS): written through the store, used over the
    // wire.
    let limits = LinkLimits {
        max_tickets_per_account: MAX_LINK_TICKETS_PER_ACCOUNT as u64,
        max_posts_per_side: MAX_LINK_MESSAGES_PER_SIDE as u64,
    };
    let bytes = [0x61; 16];
    store
        .create_link_ticket(
            umbra_wire::Address::primary(alice_id),
            &bytes,
            now - 400,
            now - 100,
            limits,
        )
        .await
        .expect("ticket stored");
    let ticket = LinkTicketId::from_bytes(bytes);
    let mut joiner = Client::connect(&nodes.a).await;
    let response = joiner.ask(Request::LinkJoin { ticket }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownExchange));
    // The expiry task deletes it (asked at a time before its expiry, so
    // only a deletion hides it; another node's task may have run first).
    umbra_relay::expiry::run_once(&nodes.a.relay.state).await;
    assert!(store
        .link_ticket(&bytes, now - 200)
        .await
        .expect("read")
        .is_none());
}

/// A connection that joined a ticket waits for its token past the
/// authentication deadline (PROTOCOL.md 9.10, 15.6); one that did not is
/// closed at it. The joiner connects first, so its deadline passes before
/// the idle connection's: when the idle one is closed, the joiner's has
/// passed too. SQLite only: the deadline is the connection's, not the
/// store's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_connection_waits_past_the_auth_deadline() {
    let relay = relay_with(Settings {
        auth_timeout_secs: Some(2),
        ..Settings::default()
    })
    .await;
    let (mut alice, _, _) = signed_in(&relay, "alice").await;
    let Response::LinkTicket { ticket, .. } = alice.ask(Request::LinkCreate).await else {
        panic!("no ticket");
    };
    let mut joiner = Client::connect(&relay).await;
    assert_eq!(joiner.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    let mut idle = Client::connect(&relay).await;
    loop {
        match idle.next().await {
            Some(RelayFrame::Closing { code, .. }) => {
                assert_eq!(code, ErrorCode::NotAuthenticated);
                break;
            }
            Some(_) => continue,
            None => panic!("closed without a Closing frame"),
        }
    }
    assert_eq!(joiner.ask(Request::Ping).await, Response::Pong);
}

/// Once device 2 removed device 1, a password login (device 1's, 11.3)
/// is refused on every node with `UnknownRecipient`: its token would
/// authenticate as the tombstone, which could then remove device 2.
async fn a_removed_device_1_cannot_log_in(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, _, _) = signed_in(&nodes.a, "alice").await;
    let second_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut second, _, _) = link_device(&mut alice, second_relay).await;
    let response = second
        .ask(Request::RemoveDevice {
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(response, Response::Ok);
    for relay in [Some(&nodes.a), nodes.b.as_ref()].into_iter().flatten() {
        let mut again = Client::connect(relay).await;
        let (result, _) = login(&mut again, "alice", b"pw").await;
        let refused = result.expect_err("a login as the removed device 1");
        assert_eq!(error_code(&refused), Some(ErrorCode::UnknownRecipient));
    }
    assert_eq!(second.ask(Request::Ping).await, Response::Pong);
}

/// The budget of a test relay's `LinkFetch`es: small enough to exhaust
/// quickly, and 60 a minute so the wait it answers is one second.
const LINK_FETCHES_PER_MINUTE: u32 = 60;

/// 11.7, 15.6: a link polled within `link_fetches_per_minute` completes; a
/// joiner polling past it is refused with `RateLimited` and a wait (the
/// connection stays open), the creator's own budget (its account's) is
/// untouched, and after the wait the hammering joiner's link completes too.
async fn link_fetches_past_their_budget_are_refused(backend: Backend, test: &str) {
    let settings = Settings {
        link_fetches_per_minute: Some(LINK_FETCHES_PER_MINUTE),
        ..Settings::default()
    };
    let Some(nodes) = nodes_with(backend, test, settings).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    // A polite link, its joiner on the other node where there is one.
    let polite_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let Response::LinkTicket { ticket, .. } = alice.ask(Request::LinkCreate).await else {
        panic!("no ticket");
    };
    let mut polite = Client::connect(polite_relay).await;
    assert_eq!(polite.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    let post = |payload: &[u8]| Request::LinkPost {
        ticket,
        payload: payload.to_vec(),
    };
    assert_eq!(alice.ask(post(b"offer")).await, Response::Ok);
    let response = polite.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert_eq!(
        response,
        Response::LinkMessages {
            messages: vec![LinkMessage(b"offer".to_vec())],
            enrolled: None
        }
    );
    assert_eq!(polite.ask(post(b"answer")).await, Response::Ok);
    let response = alice.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert!(
        matches!(response, Response::LinkMessages { .. }),
        "{response:?}"
    );
    let Response::DeviceEnrolled { device } = alice.ask(Request::LinkEnrol { ticket }).await else {
        panic!("LinkEnrol did not enrol");
    };
    let enrolled = fetch_enrolment(&mut polite, ticket).await;
    assert_eq!((enrolled.account, enrolled.device), (alice_id, device));

    // A joiner on node a polling as fast as it can. Budgets are per node:
    // on SQLite the polite joiner's two fetches came from the same address.
    let spent = if nodes.b.is_some() { 0 } else { 2 };
    let Response::LinkTicket { ticket, .. } = alice.ask(Request::LinkCreate).await else {
        panic!("no second ticket");
    };
    let mut greedy = Client::connect(&nodes.a).await;
    assert_eq!(greedy.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    let fetch = Request::LinkFetch { ticket, after: 0 };
    for n in spent..LINK_FETCHES_PER_MINUTE {
        let response = greedy.ask(fetch.clone()).await;
        assert!(
            matches!(response, Response::LinkMessages { .. }),
            "poll {n} within the budget: {response:?}"
        );
    }
    let response = greedy.ask(fetch.clone()).await;
    let Response::Error {
        code: ErrorCode::RateLimited,
        retry_after_secs: Some(wait),
        ..
    } = response
    else {
        panic!("a poll past the budget was answered {response:?}");
    };
    assert_eq!(wait, 1, "60 a minute refill one a second");
    assert_eq!(greedy.ask(Request::Ping).await, Response::Pong);
    // The creator polls on its account's budget, not its address's.
    let response = alice.ask(fetch.clone()).await;
    assert!(
        matches!(response, Response::LinkMessages { .. }),
        "{response:?}"
    );
    // After the wait the link goes on.
    let Response::DeviceEnrolled { device } = alice.ask(Request::LinkEnrol { ticket }).await else {
        panic!("LinkEnrol did not enrol");
    };
    tokio::time::sleep(std::time::Duration::from_secs(u64::from(wait))).await;
    let enrolled = fetch_enrolment(&mut greedy, ticket).await;
    assert_eq!((enrolled.account, enrolled.device), (alice_id, device));
}

async fn a_refused_enrolment_is_told_to_the_joiner(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, _, _) = signed_in(&nodes.a, "alice").await;
    // Devices 2..=8 by password logins enrolled as new devices (15.6), so
    // no link ticket is spent on them.
    for _ in 2..=MAX_DEVICES_PER_ACCOUNT {
        let mut c = Client::connect(&nodes.a).await;
        let (result, _) = login(&mut c, "alice", b"pw").await;
        result.expect("logged in");
        let answer = c.ask(Request::LoginEnrol).await;
        assert!(matches!(answer, Response::LoginEnrolled(_)), "{answer:?}");
    }
    let Response::LinkTicket { ticket, .. } = alice.ask(Request::LinkCreate).await else {
        panic!("no ticket");
    };
    let joiner_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let mut joiner = Client::connect(joiner_relay).await;
    assert_eq!(joiner.ask(Request::LinkJoin { ticket }).await, Response::Ok);
    // Before the creator enrols, the joiner simply waits.
    let waiting = joiner.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert!(
        matches!(waiting, Response::LinkMessages { enrolled: None, .. }),
        "{waiting:?}"
    );
    let refused = alice.ask(Request::LinkEnrol { ticket }).await;
    assert_eq!(error_code(&refused), Some(ErrorCode::LimitExceeded));
    // The joiner is told at its next fetch, with what to do.
    let told = joiner.ask(Request::LinkFetch { ticket, after: 0 }).await;
    assert_eq!(
        error_code(&told),
        Some(ErrorCode::LimitExceeded),
        "{told:?}"
    );
    let Response::Error { message, .. } = &told else {
        unreachable!()
    };
    assert!(message.contains("umbra devices remove"), "{message}");
    // And the ticket is done: the creator cannot enrol on it again.
    let again = alice.ask(Request::LinkEnrol { ticket }).await;
    assert_eq!(error_code(&again), Some(ErrorCode::UnknownExchange));
}
