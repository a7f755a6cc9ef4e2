//! Every domain-separation label of the umbra protocol, in one place.
//!
//! Each KDF derivation, MAC chain step and signature in umbra is bound to a
//! label from this file, so that a key or signature made for one context is
//! useless in any other. Labels are versioned (`umbra/v1/...`): a format
//! change gets new labels, never a silently reinterpreted old one.
//!
//! One deliberate exception: the symmetric-ratchet chain step uses Signal's
//! one-byte HMAC inputs 0x01 and 0x02 (`ratchet::chain_key`), which are
//! message inputs rather than labels; those chains are already separated
//! from every other context by the root-key label they descend from.
//!
//! Must never: hold two constants with the same value, or be bypassed by an
//! inline byte string elsewhere in the crate (a test checks uniqueness).

/// The identity-binding, signed-prekey and device-list signature labels are
/// defined in umbra-wire, because the relay verifies those signatures and depends
/// on that crate alone; they are listed in [`ALL`] like every other label.
pub use umbra_wire::labels::{DEVICE_LIST, IDENTITY_BINDING, KEM_PREKEY, SIGNED_PREKEY};
pub use umbra_wire::labels::{
    KT_DEVICE_LIST, KT_EMPTY, KT_EPOCH_HEAD, KT_IDENTITY, KT_LEAF, KT_NODE, KT_VERSION,
    KT_VRF_INPUT,
};

/// HKDF info prefix for the X3DH session root key.
pub const X3DH_ROOT_KEY: &[u8] = b"umbra/v1/x3dh/root-key";
/// Prefix of the X3DH associated data (both identities).
pub const X3DH_ASSOCIATED_DATA: &[u8] = b"umbra/v1/x3dh/associated-data";
/// HKDF info prefix for a hybrid (PQXDH) session's root key: X3DH's
/// transcript plus the ML-KEM prekey and ciphertext (docs/PROTOCOL.md 3.10).
pub const PQXDH_ROOT_KEY: &[u8] = b"umbra/v1/pqxdh/root-key";
/// Prefix of a hybrid session's associated data (3.10).
pub const PQXDH_ASSOCIATED_DATA: &[u8] = b"umbra/v1/pqxdh/associated-data";

/// HKDF salt prefix for the sealed-sender ephemeral layer.
pub const SEALED_EPHEMERAL_SALT: &[u8] = b"umbra/v1/sealed/ephemeral/salt";
/// HKDF info for the chain key that links the two sealed-sender layers.
pub const SEALED_EPHEMERAL_CHAIN_KEY: &[u8] = b"umbra/v1/sealed/ephemeral/chain-key";
/// HKDF info for the key that encrypts the sender's identity.
pub const SEALED_EPHEMERAL_CIPHER_KEY: &[u8] = b"umbra/v1/sealed/ephemeral/cipher-key";
/// HKDF info for the static-static key that encrypts the inner message.
pub const SEALED_STATIC_CIPHER_KEY: &[u8] = b"umbra/v1/sealed/static/cipher-key";

/// Safety-number (fingerprint) hash prefix.
pub const FINGERPRINT: &[u8] = b"umbra/v1/fingerprint";

/// HMAC input that turns a sender chain key into a message-key seed.
pub const GROUP_MESSAGE_KEY_SEED: &[u8] = b"umbra/v1/group/message-seed";
/// HMAC input that advances a sender chain key.
pub const GROUP_CHAIN_KEY: &[u8] = b"umbra/v1/group/chain-key";
/// HKDF info turning a group message-key seed into an AEAD key and nonce.
pub const GROUP_MESSAGE_KEY: &[u8] = b"umbra/v1/group/message-key";
/// Ed25519 signature by a sender's group signing key over a group message.
pub const GROUP_MESSAGE_SIGNATURE: &[u8] = b"umbra/v1/group/message-signature";
/// Ed25519 signature by a member's IDENTITY key over its sender-key
/// distribution (everything before the signature, §8.5).
pub const GROUP_DISTRIBUTION_SIGNATURE: &[u8] = b"umbra/v1/group/distribution-signature";

/// Ed25519 signature by an author's identity key over a group change
/// (everything before the signature, §8.8).
pub const GROUP_CHANGE_SIGNATURE: &[u8] = b"umbra/v1/group/change-signature";
/// SHA-256 prefix of a group change's hash (the head of the state it
/// produces, §8.8).
pub const GROUP_CHANGE_HASH: &[u8] = b"umbra/v1/group/change-hash";

/// HKDF info for a Double Ratchet root-key step (KDF_RK).
pub const RATCHET_ROOT_KEY: &[u8] = b"umbra/v1/ratchet/root-key";
/// HKDF info for a root-key step that mixes an ML-KEM secret beside the DH
/// output (the post-quantum step, §4.13).
pub const RATCHET_HYBRID_ROOT_KEY: &[u8] = b"umbra/v1/ratchet/hybrid-root-key";
/// HKDF info turning a ratchet message-key seed into an AEAD key and nonce.
pub const RATCHET_MESSAGE_KEY: &[u8] = b"umbra/v1/ratchet/message-key";
/// HMAC input that turns a chain's first chain key into the key of that
/// epoch's ephemeral messages (typing notices; `ratchet::ephemeral`).
pub const RATCHET_EPHEMERAL_KEY: &[u8] = b"umbra/v1/ratchet/ephemeral-key";

/// HKDF info prefix for the account backup's AEAD key, derived from
/// OPAQUE's export key (docs/PROTOCOL.md §13.2).
pub const BACKUP_AEAD_KEY: &[u8] = b"umbra/v1/backup/aead-key";
/// HKDF info prefix for the account backup's key check, which tells a
/// wrong password from a tampered backup (§13.2).
pub const BACKUP_KEY_CHECK: &[u8] = b"umbra/v1/backup/key-check";

/// HKDF-SHA256 info for an attachment's ChaCha20-Poly1305 chunk key
/// (docs/PROTOCOL.md §14.3).
pub const ATTACHMENT_CHUNK_KEY: &[u8] = b"umbra/v1/attachment/chunk-key";
/// HKDF-SHA256 info for an attachment's 7-byte STREAM nonce prefix (§14.3).
pub const ATTACHMENT_NONCE_PREFIX: &[u8] = b"umbra/v1/attachment/nonce-prefix";

/// HKDF-SHA256 info of `K_join`, the key of a link's msg1, derived from
/// the link code (docs/PROTOCOL.md §15.7).
pub const LINK_JOINER_KEY: &[u8] = b"umbra/v1/link/joiner-key";
/// HKDF-SHA256 info prefix of `K_prov`, the key of a link's msg2, derived
/// from the ephemeral exchange and salted with the code's secret (§15.7).
pub const LINK_PROVISION_KEY: &[u8] = b"umbra/v1/link/provision-key";

/// Every label above, for the uniqueness test and for auditors.
pub const ALL: &[&[u8]] = &[
    IDENTITY_BINDING,
    SIGNED_PREKEY,
    KEM_PREKEY,
    DEVICE_LIST,
    X3DH_ROOT_KEY,
    X3DH_ASSOCIATED_DATA,
    PQXDH_ROOT_KEY,
    PQXDH_ASSOCIATED_DATA,
    SEALED_EPHEMERAL_SALT,
    SEALED_EPHEMERAL_CHAIN_KEY,
    SEALED_EPHEMERAL_CIPHER_KEY,
    SEALED_STATIC_CIPHER_KEY,
    FINGERPRINT,
    GROUP_MESSAGE_KEY_SEED,
    GROUP_CHAIN_KEY,
    GROUP_MESSAGE_KEY,
    GROUP_MESSAGE_SIGNATURE,
    GROUP_DISTRIBUTION_SIGNATURE,
    GROUP_CHANGE_SIGNATURE,
    GROUP_CHANGE_HASH,
    RATCHET_ROOT_KEY,
    RATCHET_HYBRID_ROOT_KEY,
    RATCHET_MESSAGE_KEY,
    RATCHET_EPHEMERAL_KEY,
    BACKUP_AEAD_KEY,
    BACKUP_KEY_CHECK,
    ATTACHMENT_CHUNK_KEY,
    ATTACHMENT_NONCE_PREFIX,
    LINK_JOINER_KEY,
    LINK_PROVISION_KEY,
    KT_VRF_INPUT,
    KT_IDENTITY,
    KT_DEVICE_LIST,
    KT_VERSION,
    KT_LEAF,
    KT_NODE,
    KT_EMPTY,
    KT_EPOCH_HEAD,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn labels_are_unique_versioned_and_prefix_free() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(
                a.starts_with(b"umbra/v1/"),
                "{:?}",
                String::from_utf8_lossy(a)
            );
            for (j, b) in ALL.iter().enumerate() {
                if i != j {
                    assert_ne!(a, b);
                    // No label is a prefix of another, so `label || data`
                    // can never be read under a different label.
                    assert!(
                        !b.starts_with(a),
                        "{:?} prefixes {:?}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }
    }
}
