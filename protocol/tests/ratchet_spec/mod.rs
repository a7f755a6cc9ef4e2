//! An independent model of one party's Double Ratchet state, written from
//! docs/PROTOCOL.md §4 with nothing but the primitive crates (x25519-dalek's
//! bare `x25519` function, hkdf, hmac, sha2, chacha20poly1305) and the labels
//! as literal bytes copied from the spec. The vector suite runs it beside the
//! library's `Session` and requires byte equality at every step, so the
//! vectors pin what the spec says, not merely what the code does.
//!
//! It models what decides keys (root key, chains, PN, the DH steps, the KEM
//! braids of §4.13 in `braid.rs`, built on the `ml-kem` crate alone), not the
//! skipped-key store: out-of-order messages are decrypted by the session and
//! their plaintext compared.
//!
//! Must never: call into umbra-protocol's ratchet, KDF or key types, or take
//! a label from `umbra_protocol::labels` (a wrong label there would then be
//! "confirmed" by itself).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub mod braid;
use braid::{Braids, SendRecord};

/// §4.2 KDF_RK info, copied from the spec.
const ROOT_KEY_INFO: &[u8] = b"umbra/v1/ratchet/root-key";
/// §4.2 message-key info, copied from the spec.
const MESSAGE_KEY_INFO: &[u8] = b"umbra/v1/ratchet/message-key";
/// §4.13 hybrid KDF_RK info, copied from the spec.
const HYBRID_ROOT_KEY_INFO: &[u8] = b"umbra/v1/ratchet/hybrid-root-key";
/// §4.4 version byte of a ratchet message.
const MESSAGE_VERSION: u8 = 0x02;
/// §4.3 header length.
const HEADER_LEN: usize = 178;

/// X25519 per RFC 7748, with the spec's contributory check.
pub fn dh(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    let out = x25519_dalek::x25519(*private, *public);
    assert_ne!(out, [0u8; 32], "non-contributory DH in a vector run");
    out
}

/// The public key of an X25519 private key.
pub fn public(private: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*private, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// KDF_RK: HKDF-SHA256(salt = RK, ikm = dh_out, info, 64) split into (RK',
/// CK); with a KEM secret (§4.13) ikm = dh_out || ss under the hybrid info.
pub fn kdf_rk_with(
    root_key: &[u8; 32],
    dh_out: &[u8; 32],
    kem: Option<[u8; 32]>,
) -> ([u8; 32], [u8; 32]) {
    let mut ikm = dh_out.to_vec();
    let info = match kem {
        Some(ss) => {
            ikm.extend_from_slice(&ss);
            HYBRID_ROOT_KEY_INFO
        }
        None => ROOT_KEY_INFO,
    };
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(root_key), &ikm)
        .expand(info, &mut okm)
        .expect("64 bytes is a valid HKDF length");
    let mut rk = [0u8; 32];
    let mut ck = [0u8; 32];
    rk.copy_from_slice(&okm[..32]);
    ck.copy_from_slice(&okm[32..]);
    (rk, ck)
}

/// Classical KDF_RK.
pub fn kdf_rk(root_key: &[u8; 32], dh_out: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    kdf_rk_with(root_key, dh_out, None)
}

fn hmac(key: &[u8; 32], byte: u8) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(&[byte]);
    mac.finalize().into_bytes().into()
}

/// KDF_CK: CK(i + 1) = HMAC(CK(i), 0x02).
pub fn next_chain_key(chain_key: &[u8; 32]) -> [u8; 32] {
    hmac(chain_key, 0x02)
}

/// Message key and nonce of chain key CK(i): seed = HMAC(CK(i), 0x01), then
/// HKDF-SHA256(salt = 32 zero bytes, ikm = seed, info, 44).
pub fn message_key(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
    let seed = hmac(chain_key, 0x01);
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(Some(&[0u8; 32]), &seed)
        .expand(MESSAGE_KEY_INFO, &mut okm)
        .expect("44 bytes is a valid HKDF length");
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    (key, nonce)
}

/// What one modelled encryption produced.
pub struct Sent {
    pub new_ratchet_private: Option<[u8; 32]>,
    pub chain_key: [u8; 32],
    pub message_number: u32,
    pub message_key: [u8; 32],
    pub nonce: [u8; 12],
    pub header: Vec<u8>,
    pub aead_associated_data: Vec<u8>,
    pub message: Vec<u8>,
    /// The KEM secret this send's DH step mixed (§4.13).
    pub kem_secret_mixed: Option<[u8; 32]>,
    /// What the braids drew and put in the slot.
    pub pq: SendRecord,
}

/// What one modelled receive did.
#[derive(Default)]
pub struct Received {
    /// The plaintext, when the key came from a chain step.
    pub plaintext: Option<Vec<u8>>,
    /// The KEM secret the new chain's step mixed.
    pub kem_secret_mixed: Option<[u8; 32]>,
    /// The KEM secret this message's chunk completed (decapsulated).
    pub kem_secret_ready: Option<[u8; 32]>,
}

/// One party's §4.5 state (minus the skipped-key store).
pub struct Model {
    ad: Vec<u8>,
    pub root_key: [u8; 32],
    our_ratchet: [u8; 32],
    their_ratchet: Option<[u8; 32]>,
    /// Peer ratchet keys a receiving chain was ever derived for.
    seen: Vec<[u8; 32]>,
    /// (CKs, Ns)
    pub sending: Option<([u8; 32], u32)>,
    /// (CKr, Nr)
    pub receiving: Option<([u8; 32], u32)>,
    previous_sending_length: u32,
    /// §4.13 KEM epoch of the current sending chain (0: classical).
    sending_pq_epoch: u32,
    pub braids: Braids,
}

impl Model {
    /// §4.5 initiator: RK, CKs = KDF_RK(SK, X25519(DHs, DHr)).
    pub fn initiator(sk: [u8; 32], ad: &[u8], ours: [u8; 32], their: [u8; 32]) -> Self {
        let (root_key, chain) = kdf_rk(&sk, &dh(&ours, &their));
        Self {
            ad: ad.to_vec(),
            root_key,
            our_ratchet: ours,
            their_ratchet: Some(their),
            seen: vec![their],
            sending: Some((chain, 0)),
            receiving: None,
            previous_sending_length: 0,
            sending_pq_epoch: 0,
            braids: Braids::new(),
        }
    }

    /// §4.5 responder: RK = SK, DHs = signed prekey, nothing else.
    pub fn responder(sk: [u8; 32], ad: &[u8], signed_prekey: [u8; 32]) -> Self {
        Self {
            ad: ad.to_vec(),
            root_key: sk,
            our_ratchet: signed_prekey,
            their_ratchet: None,
            seen: Vec::new(),
            sending: None,
            receiving: None,
            previous_sending_length: 0,
            sending_pq_epoch: 0,
            braids: Braids::new(),
        }
    }

    /// §4.6 and §4.13. `random` is what the sender's RNG yields next, in
    /// the spec's order: 32 bytes for a new ratchet key when a DH step is
    /// due, 64 for a KEM key pair when one is due, 32 for an encapsulation.
    pub fn encrypt(&mut self, plaintext: &[u8], random: &[u8]) -> Sent {
        let mut at = 0;
        let mut take = |n: usize| {
            let out = random[at..at + n].to_vec();
            at += n;
            out
        };
        let mut new_ratchet_private = None;
        let mut kem_secret_mixed = None;
        if self.sending.is_none() {
            let their = self.their_ratchet.expect("responder cannot send first");
            let next: [u8; 32] = take(32).try_into().expect("32 bytes");
            self.our_ratchet = next;
            let mix = self.braids.to_mix_on_send();
            let (root_key, chain) = kdf_rk_with(
                &self.root_key,
                &dh(&self.our_ratchet, &their),
                mix.map(|(_, ss)| ss),
            );
            self.root_key = root_key;
            self.sending = Some((chain, 0));
            self.sending_pq_epoch = mix.map_or(0, |(epoch, _)| epoch);
            kem_secret_mixed = mix.map(|(_, ss)| ss);
            new_ratchet_private = Some(next);
        }
        let pq = self.braids.send(kem_secret_mixed.is_some(), &mut take);
        let (chain_key, n) = self.sending.expect("set above");
        // §4.3: ratchet_key (32) || PN u32be || N u32be || pq_epoch u32be || slot (134).
        let mut header = public(&self.our_ratchet).to_vec();
        header.extend_from_slice(&self.previous_sending_length.to_be_bytes());
        header.extend_from_slice(&n.to_be_bytes());
        header.extend_from_slice(&self.sending_pq_epoch.to_be_bytes());
        header.extend_from_slice(&pq.slot);
        assert_eq!(header.len(), HEADER_LEN);
        let (key, nonce) = message_key(&chain_key);
        // §4.4: AD || pairwise type (0x02, plain) || version (0x02) || header.
        let mut aad = self.ad.clone();
        aad.extend_from_slice(&[0x02, MESSAGE_VERSION]);
        aad.extend_from_slice(&header);
        let sealed = ChaCha20Poly1305::new(Key::from_slice(&key))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("bare AEAD");
        let mut message = vec![MESSAGE_VERSION];
        message.extend_from_slice(&header);
        message.extend_from_slice(&sealed);
        self.sending = Some((next_chain_key(&chain_key), n + 1));
        Sent {
            new_ratchet_private,
            chain_key,
            message_number: n,
            message_key: key,
            nonce,
            header,
            aead_associated_data: aad,
            message,
            kem_secret_mixed,
            pq,
        }
    }

    /// §4.7, the parts that move keys: a new peer ratchet key takes a DH
    /// step (and marks a sending step due); a message at or beyond the next
    /// expected index of the current chain advances the receiving chain.
    /// Also decrypts the message when its key comes from a chain step (not
    /// from the skipped-key store), returning the plaintext.
    pub fn receive(&mut self, message: &[u8]) -> Received {
        assert_eq!(message[0], MESSAGE_VERSION);
        let header = message[1..1 + HEADER_LEN].to_vec();
        let mut received = self.receive_keys(message, &header);
        // §4.13: the slot applies after the chain commit, on every message
        // that decrypted (also one served from the skipped-key store).
        received.kem_secret_ready = self.braids.receive(&header[44..]);
        received
    }

    fn receive_keys(&mut self, message: &[u8], header: &[u8]) -> Received {
        let mut received = Received::default();
        let their: [u8; 32] = header[..32].try_into().expect("32 bytes");
        let n = u32::from_be_bytes(header[36..40].try_into().expect("4 bytes"));
        let pq_epoch = u32::from_be_bytes(header[40..44].try_into().expect("4 bytes"));
        if self.their_ratchet != Some(their) {
            if self.seen.contains(&their) {
                return received; // a previous chain: served from skipped keys
            }
            let kem = (pq_epoch != 0).then(|| self.braids.to_mix_on_receive(pq_epoch));
            let (root_key, chain) =
                kdf_rk_with(&self.root_key, &dh(&self.our_ratchet, &their), kem);
            if kem.is_some() {
                self.braids.peer_mixed();
            }
            received.kem_secret_mixed = kem;
            self.root_key = root_key;
            self.their_ratchet = Some(their);
            self.seen.push(their);
            self.receiving = Some((chain, 0));
            if let Some((_, ns)) = self.sending.take() {
                self.previous_sending_length = ns;
            }
        }
        let (mut chain, mut nr) = self.receiving.expect("a chain for the current peer key");
        if n < nr {
            return received; // skipped earlier on this chain
        }
        while nr < n {
            chain = next_chain_key(&chain);
            nr += 1;
        }
        let (key, nonce) = message_key(&chain);
        self.receiving = Some((next_chain_key(&chain), n + 1));
        let mut aad = self.ad.clone();
        aad.extend_from_slice(&[0x02, MESSAGE_VERSION]);
        aad.extend_from_slice(header);
        let plaintext = ChaCha20Poly1305::new(Key::from_slice(&key))
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &message[1 + HEADER_LEN..],
                    aad: &aad,
                },
            )
            .expect("the modelled key opens the message");
        received.plaintext = Some(plaintext);
        received
    }
}
