//! Proptest strategies and samples for the wire and content codecs, shared
//! by `wire_props.rs` (the properties) and `wire_cases.rs` (the fixed
//! cases): every request, response, frame and content variant can be drawn,
//! with values inside the wire's limits.
//!
//! Must never: draw a value outside the limits the encoder enforces (a
//! round-trip property would then test the limit, not the codec).

// Each test crate that includes this module uses only some of the strategies.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;
use umbra_protocol::content::{self, Content, FileKey, FilePointer, GroupId, MessageId};
use umbra_protocol::group::{
    ChangeHash, GroupChange, GroupLog, GroupPolicy, GroupWelcome, NewMember,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::PublicKey;
use umbra_protocol::wire::{
    AccountId, AccountRef, Address, ClientFrame, DeviceId, ErrorCode, OutgoingEnvelope,
    PreKeyBundleWire, PreKeyWire, RelayFrame, Request, Response, SendOutcome, SessionToken,
    SignedPreKeyWire, Username,
};

// ---------- strategies ----------

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

pub fn account() -> impl Strategy<Value = AccountId> {
    any::<[u8; 16]>().prop_map(AccountId::from_bytes)
}

pub fn address() -> impl Strategy<Value = Address> {
    (account(), any::<u32>()).prop_map(|(account, device)| Address {
        account,
        device: DeviceId(device),
    })
}

pub fn username() -> impl Strategy<Value = Username> {
    "[a-z][a-z0-9_.]{2,31}".prop_map(|s| Username::parse(&s).expect("strategy yields valid names"))
}

pub fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey::from_bytes)
}

pub fn signature() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&a);
        sig[32..].copy_from_slice(&b);
        sig
    })
}

pub fn prekey() -> impl Strategy<Value = PreKeyWire> {
    (any::<u32>(), public_key()).prop_map(|(id, key)| PreKeyWire { id, key })
}

pub fn signed_prekey() -> impl Strategy<Value = SignedPreKeyWire> {
    (any::<u32>(), any::<u64>(), public_key(), signature()).prop_map(
        |(id, created_at, key, signature)| SignedPreKeyWire {
            id,
            created_at,
            key,
            signature,
        },
    )
}

pub fn token() -> impl Strategy<Value = SessionToken> {
    any::<[u8; 32]>().prop_map(SessionToken::from_bytes)
}

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL)
}

pub fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\p{{Cc}}]{{0,{max_chars}}}")).expect("valid regex")
}

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (username(), bytes(64)).prop_map(|(username, opaque_request)| Request::RegisterStart {
            username,
            opaque_request
        }),
        (username(), bytes(64)).prop_map(|(username, opaque_upload)| Request::RegisterFinish {
            username,
            opaque_upload
        }),
        (username(), bytes(64)).prop_map(|(username, opaque_request)| Request::LoginStart {
            username,
            opaque_request
        }),
        (any::<u64>(), bytes(64)).prop_map(|(login_id, opaque_finalization)| {
            Request::LoginFinish {
                login_id,
                opaque_finalization,
            }
        }),
        (token(), any::<u32>()).prop_map(|(token, device)| Request::Authenticate {
            token,
            device: DeviceId(device)
        }),
        any::<bool>().prop_map(|everywhere| Request::Logout { everywhere }),
        (bytes(160), signed_prekey(), proptest::option::of(prekey())).prop_map(
            |(identity, signed_prekey, last_resort)| Request::PublishKeys {
                identity,
                signed_prekey,
                last_resort
            }
        ),
        vec(prekey(), 0..8).prop_map(|prekeys| Request::UploadPreKeys { prekeys }),
        Just(Request::PreKeyCount),
        prop_oneof![
            username().prop_map(AccountRef::Username),
            account().prop_map(AccountRef::Account)
        ]
        .prop_map(|target| Request::FetchBundle { target }),
        username().prop_map(|username| Request::ResolveUsername { username }),
        vec(
            (address(), bytes(64)).prop_map(|(to, envelope)| OutgoingEnvelope { to, envelope }),
            0..6
        )
        .prop_map(|messages| Request::Send { messages }),
        vec(any::<u64>(), 0..10).prop_map(|seqs| Request::Ack { seqs }),
        (address(), bytes(64)).prop_map(|(to, payload)| Request::Ephemeral { to, payload }),
        username().prop_map(|new_username| Request::Rename { new_username }),
        Just(Request::DeleteAccount),
        Just(Request::Ping),
    ]
}

pub fn client_frame() -> impl Strategy<Value = ClientFrame> {
    (1..=u64::MAX, request()).prop_map(|(request_id, request)| ClientFrame {
        request_id,
        request,
    })
}

pub fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        bytes(64).prop_map(|opaque_response| Response::RegisterResponse { opaque_response }),
        account().prop_map(|account| Response::RegisterDone { account }),
        (any::<u64>(), bytes(64)).prop_map(|(login_id, opaque_response)| {
            Response::LoginResponse {
                login_id,
                opaque_response,
            }
        }),
        (token(), account(), any::<u64>()).prop_map(|(token, account, expires_at)| {
            Response::LoginDone {
                token,
                account,
                expires_at,
            }
        }),
        address().prop_map(|address| Response::Authenticated { address }),
        vec(
            prop_oneof![
                any::<u64>().prop_map(|seq| SendOutcome::Accepted { seq }),
                error_code().prop_map(|code| SendOutcome::Rejected { code })
            ],
            0..6
        )
        .prop_map(|results| Response::SendResult { results }),
        (
            address(),
            bytes(160),
            signed_prekey(),
            proptest::option::of(prekey()),
            proptest::option::of(prekey())
        )
            .prop_map(
                |(address, identity, signed_prekey, one_time_prekey, last_resort)| {
                    Response::Bundle(Box::new(PreKeyBundleWire {
                        account: address.account,
                        device: address.device,
                        identity,
                        signed_prekey,
                        one_time_prekey,
                        last_resort,
                    }))
                }
            ),
        (any::<u32>(), any::<u32>()).prop_map(|(remaining, low_water)| Response::PreKeyCount {
            remaining,
            low_water
        }),
        (username(), account(), proptest::option::of(bytes(64))).prop_map(
            |(username, account, identity)| Response::Resolved {
                username,
                account,
                identity
            }
        ),
        Just(Response::Ok),
        Just(Response::Pong),
        (error_code(), text(40), proptest::option::of(any::<u32>())).prop_map(
            |(code, message, retry_after_secs)| Response::Error {
                code,
                message,
                retry_after_secs
            }
        ),
    ]
}

pub fn relay_frame() -> impl Strategy<Value = RelayFrame> {
    prop_oneof![
        (any::<u64>(), response()).prop_map(|(request_id, response)| RelayFrame::Response {
            request_id,
            response
        }),
        (any::<u64>(), bytes(128), any::<u64>()).prop_map(|(seq, envelope, received_at_ms)| {
            RelayFrame::Deliver {
                seq,
                envelope,
                received_at_ms,
            }
        }),
        Just(RelayFrame::QueueEmpty),
        bytes(64).prop_map(|payload| RelayFrame::EphemeralDeliver { payload }),
        any::<u32>().prop_map(|remaining| RelayFrame::PreKeysLow { remaining }),
        (error_code(), text(40)).prop_map(|(code, reason)| RelayFrame::Closing { code, reason }),
    ]
}

pub fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId)
}

pub fn group_id() -> impl Strategy<Value = GroupId> {
    any::<[u8; 32]>().prop_map(GroupId)
}

/// Real signed group content (a Create, an Add and the Add's welcome):
/// group content must parse as a change, so random bytes would not do.
pub fn group_samples() -> Vec<Content> {
    let alice = IdentityKeyPair::generate(&mut rand_chacha::ChaCha20Rng::from_seed([9; 32]));
    let member = |i: u8, name: &str| NewMember {
        account: AccountId::from_bytes([i; 16]),
        username: Username::parse(name).expect("valid name"),
    };
    let a = AccountId::from_bytes([1; 16]);
    let create = GroupChange::create(
        &alice,
        a,
        GroupId([5; 32]),
        "book club",
        GroupPolicy {
            members_may_rename: true,
        },
        vec![member(1, "alice"), member(2, "bob")],
    )
    .expect("valid create");
    let mut log = GroupLog::create(create.clone(), &alice.public()).expect("own create");
    let add = GroupChange::add(&alice, a, log.state(), vec![member(3, "carol")]).expect("add");
    log.apply(add.clone(), &alice.public()).expect("own add");
    let welcome = GroupWelcome::new(log.state().clone(), add.clone()).expect("welcome");
    vec![
        Content::GroupControl {
            change: create.as_bytes().to_vec(),
        },
        Content::GroupControl {
            change: add.as_bytes().to_vec(),
        },
        Content::GroupWelcome {
            state: welcome.state_bytes(),
            change: welcome.change_bytes().to_vec(),
        },
    ]
}

pub fn file_pointer() -> impl Strategy<Value = FilePointer> {
    (
        message_id(),
        vec(any::<u8>(), 1..=content::MAX_BLOB_ID_BYTES),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        "[a-zA-Z0-9 ._-]{0,40}[a-zA-Z0-9]",
        "[a-z]{1,10}/[a-z0-9.+-]{1,20}",
    )
        .prop_map(
            |(id, blob_id, key, digest, size, file_name, content_type)| FilePointer {
                id,
                blob_id,
                key: FileKey::from_bytes(key),
                digest,
                size,
                file_name,
                content_type,
            },
        )
}

pub fn content_value() -> impl Strategy<Value = Content> {
    let text_body =
        proptest::string::string_regex("([^\\p{Cc}]|\n|\t|\r){0,200}").expect("valid regex");
    prop_oneof![
        (message_id(), text_body, any::<u64>()).prop_map(|(id, body, sent_at_ms)| {
            Content::Text {
                id,
                body,
                sent_at_ms,
            }
        }),
        vec(message_id(), 1..10).prop_map(|ids| Content::DeliveryReceipt { ids }),
        vec(message_id(), 1..10).prop_map(|ids| Content::ReadReceipt { ids }),
        any::<bool>().prop_map(|started| Content::Typing { started }),
        any::<bool>().prop_map(|online| Content::Presence { online }),
        file_pointer().prop_map(Content::FilePointer),
        proptest::sample::select(group_samples()),
        (group_id(), bytes(128))
            .prop_map(|(group, payload)| Content::SenderKeyDistribution { group, payload }),
        Just(Content::DeleteConversation),
        Just(Content::SessionReset),
        (group_id(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
            |(group, epoch, chain_id, iteration)| Content::GroupKeyRequest {
                group,
                epoch,
                chain_id,
                iteration,
            }
        ),
        username().prop_map(|new_username| Content::ProfileChange { new_username }),
        (group_id(), any::<bool>())
            .prop_map(|(group, started)| Content::GroupTyping { group, started }),
        (message_id(), any::<u64>(), any::<[u8; 32]>(), any::<u64>()).prop_map(
            |(id, sent_at_ms, head, version)| Content::GroupText {
                id,
                body: "hi".to_owned(),
                sent_at_ms,
                head: ChangeHash(head),
                version,
            }
        ),
        (group_id(), any::<[u8; 32]>(), any::<u64>()).prop_map(|(group, have, version)| {
            Content::GroupSync {
                group,
                have: ChangeHash(have),
                version: if have == [0; 32] { 0 } else { version },
            }
        }),
        (group_id(), any::<[u8; 32]>(), any::<u64>()).prop_map(|(group, head, version)| {
            Content::GroupSyncDone {
                group,
                head: ChangeHash(head),
                version,
            }
        }),
        (message_id(), message_id(), any::<u64>())
            .prop_filter("a target is another message", |(id, target, _)| id
                != target)
            .prop_map(|(id, target, sent_at_ms)| Content::TextReply {
                id,
                target,
                body: "quoted".to_owned(),
                sent_at_ms,
            }),
        (message_id(), message_id(), any::<bool>(), any::<u64>())
            .prop_filter("a target is another message", |(id, target, ..)| id
                != target)
            .prop_map(|(id, target, remove, sent_at_ms)| Content::Reaction {
                id,
                target,
                emoji: "❤️".to_owned(),
                remove,
                sent_at_ms,
            }),
        (message_id(), message_id(), any::<u64>())
            .prop_filter("a target is another message", |(id, target, _)| id
                != target)
            .prop_map(|(id, target, sent_at_ms)| Content::DeleteForEveryone {
                id,
                target,
                sent_at_ms,
            }),
        (any::<[u8; 16]>(), message_id(), any::<u64>()).prop_map(|(account, id, sent_at_ms)| {
            let original = Content::Text {
                id,
                body: "sent elsewhere".to_owned(),
                sent_at_ms,
            };
            content::sent_transcript(
                umbra_protocol::wire::AccountId::from_bytes(account),
                &original,
            )
            .expect("a text is transcribable")
        }),
    ]
}

/// Frames content without the encoder's limit checks, as a hostile peer could.
pub fn raw_content(value: &Content) -> Vec<u8> {
    let mut out = vec![content::CONTENT_VERSION];
    out.extend(postcard::to_allocvec(value).expect("postcard encodes any content"));
    out
}

pub fn sample_client_frame() -> ClientFrame {
    ClientFrame {
        request_id: 7,
        request: Request::Ping,
    }
}
