//! A hostile group member for the forgery suites: a real account on the
//! real relay, driven over the wire with umbra-protocol's public API
//! instead of the `umbra` binary, so a test can send what an honest client
//! never would (a change signed by a non-admin, an old change replayed) to
//! real `umbra` clients, through the relay, over real pairwise sessions.
//!
//! It does exactly what the protocol says a client does to be reachable and
//! to talk (publish an identity and prekeys; X3DH, Double Ratchet, sealed
//! sender and the client payload of PROTOCOL.md section 12.1 through
//! `umbra_protocol::pairwise` and `payload`); only the content it chooses to
//! send is the test's. The file-name suite uses it as a hostile sender of
//! files: it uploads real attachment blobs (section 14, sealed by
//! `umbra_protocol::attachment`) and can send content past the limits of
//! section 10.4, encoded without them, to see a receiver refuse it.
//!
//! Must never: build a primitive of its own (every key, signature and
//! ciphertext comes from umbra-protocol), or hide a relay or decryption
//! failure (each one fails the test).

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::attachment::{self, FileKey, FilePointer};
use umbra_protocol::content::{self, Content, MessageId, CONTENT_VERSION};
use umbra_protocol::group::{
    GroupChange, GroupReceiver, GroupState, GroupWelcome, SignedDistribution, VerifiedDistribution,
};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseSession, PreKeyStore};
use umbra_protocol::payload::Payload;
use umbra_protocol::prekeys::{KemPreKeyRef, PreKeyBundle, PreKeyRef};
use umbra_protocol::wire::{
    AccountId, Address, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome, Username,
};
use umbra_test_support::device_keys::DeviceKeys;
use umbra_test_support::session::Session;

/// How long the rogue waits for the relay to push its queue.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// One decrypted pairwise message the rogue received.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The sender's account, as the sealed layer authenticated it.
    pub from: AccountId,
    /// The sender's identity, as the sealed layer authenticated it.
    pub identity: IdentityPublic,
    /// What the sender sent.
    pub content: Content,
}

/// The rogue's private prekeys, where [`PairwiseSession::accept`] looks.
struct Keys<'a>(&'a DeviceKeys);

impl PreKeyStore for Keys<'_> {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (self.0.signed_prekey.id() == id).then(|| self.0.signed_prekey.secret().clone())
    }

    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        match prekey {
            PreKeyRef::OneTime(id) => self
                .0
                .one_time
                .iter()
                .find(|k| k.id() == id)
                .map(|k| k.secret().clone()),
            PreKeyRef::LastResort(id) => {
                (self.0.last_resort.id() == id).then(|| self.0.last_resort.secret().clone())
            }
        }
    }

    fn kem_prekey(&self, prekey: KemPreKeyRef) -> Option<KemPreKey> {
        let held = &self.0.kem_last_resort;
        (prekey.kind == held.kind() && prekey.id == held.id()).then(|| held.clone())
    }
}

/// A wire-level account with real keys and real pairwise sessions.
pub struct Rogue {
    runtime: tokio::runtime::Runtime,
    ws_url: String,
    session: Session,
    keys: DeviceKeys,
    username: Username,
    sessions: HashMap<AccountId, PairwiseSession>,
    accounts: HashMap<String, AccountId>,
}

impl Rogue {
    /// Registers `name`, publishes an identity, a signed prekey, a
    /// last-resort prekey, 20 one-time prekeys and a last-resort ML-KEM
    /// prekey: any `umbra` client can then start a (hybrid) session with it.
    pub fn sign_up(ws_url: &str, name: &str, password: &str) -> Rogue {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let keys = DeviceKeys::generate(20);
        let session = runtime.block_on(async {
            let mut session = Session::sign_up(ws_url, name, password)
                .await
                .unwrap_or_else(|e| panic!("rogue {name}: sign up: {e}"));
            session
                .client
                .publish_keys(&keys)
                .await
                .unwrap_or_else(|e| panic!("rogue {name}: publish keys: {e}"));
            session
                .client
                .upload_prekeys(&keys)
                .await
                .unwrap_or_else(|e| panic!("rogue {name}: upload prekeys: {e}"));
            session
                .client
                .upload_kem_prekeys(&keys)
                .await
                .unwrap_or_else(|e| panic!("rogue {name}: upload KEM prekeys: {e}"));
            session.client.close().await;
            session
        });
        Rogue {
            runtime,
            ws_url: ws_url.to_owned(),
            session,
            keys,
            username: Username::parse(name).expect("a valid username"),
            sessions: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    /// The rogue's account.
    pub fn account(&self) -> AccountId {
        self.session.account
    }

    /// The rogue's identity key pair (it signs what the rogue forges).
    pub fn identity(&self) -> &IdentityKeyPair {
        &self.keys.identity
    }

    /// The account behind `name`, from the relay's directory.
    pub fn resolve(&mut self, name: &str) -> AccountId {
        if let Some(account) = self.accounts.get(name) {
            return *account;
        }
        let username = Username::parse(name).expect("a valid username");
        let account = self.runtime.block_on(async {
            let mut client = self.session.reconnect(&self.ws_url).await.expect("connect");
            let answer = client
                .request_ok(Request::ResolveUsername { username })
                .await
                .unwrap_or_else(|e| panic!("resolve {name}: {e}"));
            client.close().await;
            match answer {
                Response::Resolved { account, .. } => account,
                other => panic!("resolve {name}: unexpected {other:?}"),
            }
        });
        self.accounts.insert(name.to_owned(), account);
        account
    }

    /// Encrypts `content` for `to` over the pairwise session (started from
    /// `to`'s published bundle if there is none yet) and has the relay
    /// queue it; fails the test unless the relay accepts it.
    pub fn send(&mut self, to: &str, content: Content) {
        let payload = Payload {
            sender: Address::primary(self.account()),
            sender_username: self.username.clone(),
            content,
        }
        .encode()
        .expect("encode the payload");
        self.send_payload(to, payload);
    }

    /// Like [`Rogue::send`], but `content` is encoded without the limits of
    /// PROTOCOL.md 10.4 (`[CONTENT_VERSION][postcard(content)]`, as
    /// `content::encode` lays it out before its checks): what a hostile
    /// client sends to see the receiver refuse it at decode.
    pub fn send_unchecked(&mut self, to: &str, content: &Content) {
        let mut body = vec![CONTENT_VERSION];
        body.extend_from_slice(&postcard::to_allocvec(content).expect("postcard"));
        // The payload's header (12.1) as the library lays it out: encode a
        // payload around a valid content, then swap that content's bytes.
        let placeholder = Content::DeleteConversation;
        let placeholder_bytes = content::encode(&placeholder).expect("encode a placeholder");
        let mut payload = Payload {
            sender: Address::primary(self.account()),
            sender_username: self.username.clone(),
            content: placeholder,
        }
        .encode()
        .expect("encode the payload");
        assert!(
            payload.ends_with(&placeholder_bytes),
            "the payload ends with its content"
        );
        payload.truncate(payload.len() - placeholder_bytes.len());
        payload.extend_from_slice(&body);
        self.send_payload(to, payload);
    }

    /// Encrypts `plaintext` as an attachment (PROTOCOL.md 14, a fresh file
    /// key), uploads the blob to the relay's `POST /v1/blobs` (11.9) as the
    /// rogue, and returns the pointer a receiver fetches it with, named
    /// `name` (not checked: the caller may send it with
    /// [`Rogue::send_unchecked`]).
    pub fn upload_file(&mut self, plaintext: &[u8], name: &str) -> FilePointer {
        let key = FileKey::random(&mut OsRng);
        let (blob, sealed) = attachment::seal(&key, plaintext).expect("seal the file");
        let blob_id = self.upload_blob(&blob);
        FilePointer {
            id: MessageId::random(&mut OsRng),
            blob_id,
            key,
            digest: sealed.digest,
            size: sealed.size,
            file_name: name.to_owned(),
            content_type: "application/octet-stream".to_owned(),
        }
    }

    /// `POST /v1/blobs` with `blob` as the body and the rogue's session
    /// token: the blob id the relay answers (`{"id": hex, "size": n}`).
    fn upload_blob(&mut self, blob: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self
            .ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// relay URL")
            .to_owned();
        let bearer: String = self
            .session
            .token
            .expose_secret()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let response = self.runtime.block_on(async {
            let mut stream = tokio::net::TcpStream::connect(&host)
                .await
                .expect("connect for the blob upload");
            let head = format!(
                "POST /v1/blobs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                blob.len()
            );
            stream
                .write_all(head.as_bytes())
                .await
                .expect("send the head");
            stream.write_all(blob).await.expect("send the blob");
            let mut response = Vec::new();
            tokio::time::timeout(QUEUE_WAIT, stream.read_to_end(&mut response))
                .await
                .expect("the relay answers the upload in time")
                .expect("read the answer");
            String::from_utf8_lossy(&response).into_owned()
        });
        assert!(
            response.starts_with("HTTP/1.1 201"),
            "the relay did not store the blob: {response:?}"
        );
        let body = response.split("\r\n\r\n").nth(1).expect("an answer body");
        let answer: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("the upload answer is not JSON ({e}): {body:?}"));
        let hex = answer["id"].as_str().expect("a blob id");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("a hex blob id"))
            .collect()
    }

    /// Seals `payload` (the plaintext of 12.1) for `to` over the pairwise
    /// session and has the relay queue it.
    fn send_payload(&mut self, to: &str, payload: Vec<u8>) {
        let account = self.resolve(to);
        let me = Address::primary(self.account());
        let Rogue {
            runtime,
            ws_url,
            session,
            keys,
            sessions,
            ..
        } = self;
        runtime.block_on(async {
            let mut client = session.reconnect(ws_url).await.expect("connect");
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(account) {
                let bundle = match client
                    .request_ok(Request::FetchHybridBundle {
                        account,
                        device: None,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("fetch {to}'s bundle: {e}"))
                {
                    Response::HybridBundle(bundle) => bundle,
                    other => panic!("fetch {to}'s bundle: unexpected {other:?}"),
                };
                let verified = PreKeyBundle::try_from(&*bundle)
                    .expect("a well-formed bundle")
                    .verify()
                    .expect("a valid bundle");
                let started = PairwiseSession::initiate(
                    &keys.identity,
                    &me,
                    &verified,
                    &Address::primary(account),
                    &mut OsRng,
                )
                .expect("start a session");
                slot.insert(started);
            }
            let pairwise = sessions.get_mut(&account).expect("a session");
            let envelope = pairwise
                .seal_for(&keys.identity, &payload, &mut OsRng)
                .expect("seal");
            let answer = client
                .request_ok(Request::Send {
                    messages: vec![OutgoingEnvelope {
                        to: Address::primary(account),
                        envelope,
                    }],
                })
                .await
                .unwrap_or_else(|e| panic!("send to {to}: {e}"));
            match answer {
                Response::SendResult { results }
                    if matches!(results.as_slice(), [SendOutcome::Accepted { .. }]) => {}
                other => panic!("send to {to}: the relay did not accept it: {other:?}"),
            }
            client.close().await;
        });
    }

    /// Connects, decrypts and acknowledges everything queued for the rogue
    /// (until the relay reports the queue empty), and returns it in order.
    /// Group messages (sealed under sender keys, not pairwise) are left
    /// out; [`Rogue::receive_raw`] keeps them.
    pub fn receive(&mut self) -> Vec<Inbound> {
        self.receive_raw()
            .into_iter()
            .filter_map(|r| match r {
                Received::Pairwise(inbound) => Some(inbound),
                Received::Group { .. } => None,
            })
            .collect()
    }

    /// [`Rogue::receive`], keeping the group messages too.
    pub fn receive_raw(&mut self) -> Vec<Received> {
        let Rogue {
            runtime,
            ws_url,
            session,
            keys,
            sessions,
            ..
        } = self;
        let me = Address::primary(session.account);
        runtime.block_on(async {
            let mut client = session.reconnect(ws_url).await.expect("connect");
            let mut got = Vec::new();
            loop {
                let frame = client
                    .next_push(QUEUE_WAIT)
                    .await
                    .unwrap_or_else(|e| panic!("rogue receive: {e}"));
                let (seq, envelope) = match frame {
                    RelayFrame::QueueEmpty => break,
                    RelayFrame::Deliver { seq, envelope, .. } => (seq, envelope),
                    _ => continue,
                };
                let inbound = InboundEnvelope::open(&keys.identity, &envelope)
                    .unwrap_or_else(|e| panic!("rogue: open a sealed envelope: {e}"));
                let from = inbound.sender_address().account;
                if inbound.group_message().is_some() {
                    got.push(Received::Group { from, inbound });
                } else {
                    let plain = match sessions.get_mut(&from).map(|s| s.decrypt(&inbound)) {
                        Some(Ok(plain)) => plain,
                        Some(Err(_)) | None if inbound.is_prekey_message() => {
                            let (accepted, plain, _) =
                                PairwiseSession::accept(&keys.identity, &me, &inbound, &Keys(keys))
                                    .unwrap_or_else(|e| panic!("rogue: accept a session: {e}"));
                            sessions.insert(from, accepted);
                            plain
                        }
                        Some(Err(e)) => panic!("rogue: decrypt a pairwise message: {e}"),
                        None => panic!("rogue: a plain message from {from} without a session"),
                    };
                    let payload = Payload::decode(&plain)
                        .unwrap_or_else(|e| panic!("rogue: decode a payload: {e}"));
                    got.push(Received::Pairwise(Inbound {
                        from,
                        identity: inbound.sender().clone(),
                        content: payload.content,
                    }));
                }
                client
                    .request_ok(Request::Ack { seqs: vec![seq] })
                    .await
                    .unwrap_or_else(|e| panic!("rogue: ack: {e}"));
            }
            client.close().await;
            got
        })
    }
}

/// One envelope the rogue received.
#[derive(Debug, Clone)]
pub enum Received {
    /// A pairwise message it decrypted.
    Pairwise(Inbound),
    /// A group message (inner type 0x04): opened, not decrypted, for a
    /// `GroupReceiver` to try.
    Group {
        /// The sender's account, as the sealed layer named it.
        from: AccountId,
        /// The opened envelope.
        inbound: InboundEnvelope,
    },
}

/// What the rogue has learnt of one group from the changes and welcomes
/// honest members sent it, checked by umbra-protocol's own state rules.
pub struct Tracked {
    /// The state after the last change it saw.
    pub state: GroupState,
    /// Every change it received, in order, exactly as received.
    pub changes: Vec<GroupChange>,
}

impl Tracked {
    /// Follows the group changes among `received` (a Create or a welcome
    /// starts the tracking; later changes are applied in order). Fails the
    /// test on a change that does not apply: honest members send none.
    pub fn follow(tracked: &mut Option<Tracked>, received: &[Inbound]) {
        for inbound in received {
            match &inbound.content {
                Content::GroupWelcome { state, change } => {
                    let welcome = GroupWelcome::from_parts(state, change)
                        .unwrap_or_else(|e| panic!("rogue: a welcome that does not parse: {e}"));
                    let change = welcome.add().clone();
                    *tracked = Some(Tracked {
                        state: welcome.state().clone(),
                        changes: vec![change],
                    });
                }
                Content::GroupControl { change } => {
                    let change = GroupChange::from_bytes(change)
                        .unwrap_or_else(|e| panic!("rogue: a change that does not parse: {e}"));
                    match tracked {
                        Some(t) => {
                            t.state = t.state.apply(&change).unwrap_or_else(|e| {
                                panic!("rogue: a change that does not apply: {e}")
                            });
                            t.changes.push(change);
                        }
                        None => {
                            let state = GroupState::from_create(&change).unwrap_or_else(|e| {
                                panic!("rogue: a first change that is no Create: {e}")
                            });
                            *tracked = Some(Tracked {
                                state,
                                changes: vec![change],
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The state as it is, except that `account` is an admin in it: what a
    /// member that wants to forge an admin's change builds on, since
    /// `GroupChange::build` signs only changes its state allows. The
    /// snapshot's bytes are edited (the member's admin field, `None` (0x00)
    /// for a plain member, follows its account id and username in the
    /// encoding; it becomes `Some(version)`, an admin since now) and parsed
    /// back with every invariant checked.
    pub fn with_admin(&self, account: AccountId, username: &str) -> GroupState {
        let bytes = self.state.to_bytes();
        let mut entry = account.as_bytes().to_vec();
        entry.push(u8::try_from(username.len()).expect("a short username"));
        entry.extend_from_slice(username.as_bytes());
        let at = bytes
            .windows(entry.len())
            .position(|w| w == entry.as_slice())
            .unwrap_or_else(|| panic!("{username} is not a member in the snapshot"))
            + entry.len();
        assert_eq!(bytes[at], 0, "{username} is already an admin");
        let mut since = vec![1u8];
        let mut version = self.state.version();
        loop {
            let low = (version & 0x7f) as u8;
            version >>= 7;
            if version == 0 {
                since.push(low);
                break;
            }
            since.push(low | 0x80);
        }
        let mut edited = bytes[..at].to_vec();
        edited.extend_from_slice(&since);
        edited.extend_from_slice(&bytes[at + 1..]);
        let forged = GroupState::from_bytes(&edited)
            .unwrap_or_else(|e| panic!("the edited snapshot does not parse: {e}"));
        assert!(
            forged.is_admin(&account),
            "the edit did not make {username} an admin"
        );
        assert_eq!(
            forged.head(),
            self.state.head(),
            "the edit changed the head"
        );
        forged
    }
}

/// The sender keys among `received`: each `SenderKeyDistribution`,
/// verified (its signature under the identity of the pairwise session it
/// came over, its group), with the account that sent it.
pub fn distributions(received: &[Received]) -> Vec<(AccountId, VerifiedDistribution)> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Pairwise(Inbound {
                from,
                identity,
                content: Content::SenderKeyDistribution { group, payload },
            }) => {
                let verified = SignedDistribution::verify(payload, identity, group)
                    .unwrap_or_else(|e| panic!("rogue: a distribution from {from} fails: {e}"));
                Some((*from, verified))
            }
            _ => None,
        })
        .collect()
}

/// The group messages among `received` that `from` sent, in order.
pub fn group_messages_from(received: &[Received], from: AccountId) -> Vec<InboundEnvelope> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Group { from: f, inbound } if *f == from => Some(inbound.clone()),
            _ => None,
        })
        .collect()
}

/// Decrypts a group message with `receiver` and returns the text it
/// carries, or the reason it could not be opened.
pub fn open_text(
    receiver: &mut GroupReceiver,
    inbound: &InboundEnvelope,
) -> Result<String, String> {
    let plain = receiver.decrypt(inbound).map_err(|e| e.to_string())?;
    let payload = Payload::decode(&plain).map_err(|e| format!("payload: {e}"))?;
    match payload.content {
        Content::Text { body, .. } | Content::GroupText { body, .. } => Ok(body),
        other => Err(format!("not a text: {other:?}")),
    }
}
