//! The associated data a ratchet message's AEAD authenticates:
//! `X3DH AD || pairwise type byte || version byte || header`.
//!
//! Built on the stack for every session X3DH made (its AD has a fixed
//! length), so encrypting or decrypting a message allocates nothing but its
//! output. Must never: produce bytes other than that concatenation (the
//! ratchet vectors pin them), whatever the length of the session's AD.

use crate::ratchet::header::{Header, HEADER_LEN};
use crate::ratchet::message::RATCHET_MESSAGE_VERSION;
use crate::x3dh::ASSOCIATED_DATA_LEN;

/// Length of a message's associated data in a session X3DH made.
const MESSAGE_AD_LEN: usize = ASSOCIATED_DATA_LEN + 2 + HEADER_LEN;

/// A message's associated data (public bytes, so nothing to wipe).
// Only ever a local of one encrypt or decrypt; boxing the large variant
// would bring back the allocation this type exists to avoid.
#[allow(clippy::large_enum_variant)]
pub(super) enum MessageAd {
    Stack([u8; MESSAGE_AD_LEN]),
    Heap(Vec<u8>),
}

impl MessageAd {
    /// `session_ad || ad_type || RATCHET_MESSAGE_VERSION || header`.
    pub(super) fn new(session_ad: &[u8], ad_type: u8, header: &Header) -> Self {
        if session_ad.len() == ASSOCIATED_DATA_LEN {
            let mut ad = [0u8; MESSAGE_AD_LEN];
            ad[..ASSOCIATED_DATA_LEN].copy_from_slice(session_ad);
            ad[ASSOCIATED_DATA_LEN] = ad_type;
            ad[ASSOCIATED_DATA_LEN + 1] = RATCHET_MESSAGE_VERSION;
            ad[ASSOCIATED_DATA_LEN + 2..].copy_from_slice(&header.encode());
            return MessageAd::Stack(ad);
        }
        // Any other length (a pickle from elsewhere): the same bytes on the heap.
        let mut ad = Vec::with_capacity(session_ad.len() + 2 + HEADER_LEN);
        ad.extend_from_slice(session_ad);
        ad.push(ad_type);
        ad.push(RATCHET_MESSAGE_VERSION);
        ad.extend_from_slice(&header.encode());
        MessageAd::Heap(ad)
    }
}

impl std::ops::Deref for MessageAd {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            MessageAd::Stack(ad) => ad,
            MessageAd::Heap(ad) => ad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    #[test]
    fn stack_and_heap_forms_are_the_concatenation() {
        let header = Header {
            ratchet_key: PublicKey::from_bytes([7; 32]),
            previous_chain_length: 3,
            message_number: 9,
            pq_epoch: 2,
            chunk: crate::ratchet::pq::Chunk::NONE,
        };
        for len in [ASSOCIATED_DATA_LEN, ASSOCIATED_DATA_LEN - 1, 0, 400] {
            let session_ad: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = session_ad.clone();
            expected.extend_from_slice(&[0x7e, RATCHET_MESSAGE_VERSION]);
            expected.extend_from_slice(&header.encode());
            let ad = MessageAd::new(&session_ad, 0x7e, &header);
            assert_eq!(&*ad, &expected[..], "session AD of {len} bytes");
            assert_eq!(
                matches!(ad, MessageAd::Stack(_)),
                len == ASSOCIATED_DATA_LEN
            );
        }
    }
}
