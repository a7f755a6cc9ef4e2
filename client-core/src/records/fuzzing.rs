//! Entry points for the fuzz targets in `client-core/fuzz/` (compiled only
//! with the `fuzzing` feature, which nothing in the workspace enables): the
//! local store's record decoders, its header and its `Generation` record
//! (the rollback index), reached without a store, a key or a
//! password, exactly as `Vault` runs them on an opened record's plaintext.
//!
//! A record's plaintext is authenticated (XChaCha20-Poly1305 under the
//! store key), so only this client's own writes reach these decoders; they
//! are fuzzed because a decoder that panics or allocates without bound on
//! an old or damaged record would make the store unopenable, and because
//! history, contact and outbox records carry what remote parties sent.
//! The header is not authenticated before it is parsed (its Argon2
//! parameters are read first), so whoever can write the data directory
//! reaches its decoder directly.
//!
//! Must never: be enabled in a shipped build, or decode a kind differently
//! from the records layer (it goes through the same [`Kind`] types).

use crate::records::{self, Kind};
use crate::store::RecordKind;

/// Decodes `plain` as the plaintext of a record of kind `kind` (its stored
/// number) and returns the value's encoding, as the store would write it
/// back; `None` if this version does not know the kind, or the bytes do not
/// decode. Session records are the protocol crate's pickle bytes.
pub fn reencode_record(kind: u8, plain: &[u8]) -> Option<Vec<u8>> {
    /// One arm per record kind the records layer defines.
    macro_rules! kinds {
        ($($marker:ty),* $(,)?) => {
            $(if kind == <$marker as Kind>::KIND.as_u8() {
                return reencode::<$marker>(plain);
            })*
        };
    }
    kinds!(
        records::account::Account,
        records::account::Token,
        records::account::Counters,
        records::contact::Contacts,
        records::contact::Bindings,
        records::contact::LegacyNames,
        records::group::Groups,
        records::group::OwnKeys,
        records::group::MemberKeys,
        records::group::Fanout,
        records::history::History,
        records::history::Index,
        records::history::Conversations,
        records::outbox::Outbox,
        records::prekeys::State,
        records::prekeys::Signed,
        records::prekeys::OneTime,
        records::prekeys::LastResort,
        records::seen::Seen,
        records::seen::Kept,
    );
    if kind == RecordKind::Session.as_u8() {
        let record =
            umbra_protocol::session_record::SessionRecord::from_pickle_bytes(plain).ok()?;
        return Some(record.to_pickle_bytes().to_vec());
    }
    None
}

/// Decodes `bytes` as a store header (docs/PROTOCOL.md §12.9), as
/// `Vault::unlock` reads it before deriving any key: the only unsealed,
/// unauthenticated bytes of a store, so anyone who can write the data
/// directory reaches this decoder. Returns the header's encoding, `None` if
/// refused; the format is canonical, so an accepted header is its own
/// encoding.
pub fn reencode_header(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::store::fuzz_entry::reencode_header(bytes)
}

/// Decodes `plain` as the `Generation` record's plaintext (kind 19, the
/// rollback index) as `Vault::unlock` does after opening it, and returns
/// the index's encoding as the next commit writes it; `None` if refused.
pub fn reencode_generation(plain: &[u8]) -> Option<Vec<u8>> {
    crate::store::fuzz_entry::GenerationIndex::reencode(plain)
}

fn reencode<K: Kind>(plain: &[u8]) -> Option<Vec<u8>> {
    let value: K::Value = postcard::from_bytes(plain).ok()?;
    postcard::to_stdvec(&value).ok()
}
