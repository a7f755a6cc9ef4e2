//! Length-hiding padding applied to every plaintext before encryption.
//!
//! Ciphertext length otherwise tells the relay roughly what was typed.
//! Plaintexts are padded to a fixed set of bucket sizes: multiples of 160
//! bytes up to 1600 (short chat messages, the common case, cost at most 160
//! bytes extra, like Signal's 160-byte blocks), then powers of two from 2048
//! up to [`MAX_PADDED_LEN`] (at most 2× overhead, while leaking only about
//! log2 of the size for rarer long messages). The padding is ISO/IEC 7816-4:
//! one `0x80` byte, then zeros, so it is unambiguous for any content.
//!
//! Must never: panic on any input to [`unpad`], accept a non-canonical
//! padding (the wrong bucket or garbage after the terminator), or produce
//! a length outside the bucket set.

/// Largest padded plaintext (64 KiB).
pub const MAX_PADDED_LEN: usize = 64 * 1024;
/// Largest content that can be padded: one byte goes to the terminator.
pub const MAX_CONTENT_LEN: usize = MAX_PADDED_LEN - 1;
/// Step of the small buckets.
pub const SMALL_BUCKET_STEP: usize = 160;
/// Largest small bucket; above it buckets are powers of two.
pub const SMALL_BUCKET_MAX: usize = 1600;
/// The padding terminator.
pub const TERMINATOR: u8 = 0x80;

/// Why padding or unpadding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaddingError {
    /// Content longer than [`MAX_CONTENT_LEN`].
    #[error("content of {len} bytes exceeds the padding maximum of {MAX_CONTENT_LEN}")]
    ContentTooLong {
        /// Length of the content.
        len: usize,
    },
    /// The padded length is not one of the bucket sizes.
    #[error("padded length {len} is not a bucket size")]
    NotABucket {
        /// Length of the padded input.
        len: usize,
    },
    /// No `0x80` terminator before the trailing zeros.
    #[error("padding has no 0x80 terminator")]
    MissingTerminator,
    /// The content would fit a smaller bucket, so a conforming sender did
    /// not produce it.
    #[error("padding is longer than the smallest bucket for the content")]
    NonCanonical,
}

/// The bucket a content of `content_len` bytes is padded to, or `None` if
/// it is too long.
pub fn bucket_for(content_len: usize) -> Option<usize> {
    let need = content_len.checked_add(1)?;
    if need <= SMALL_BUCKET_MAX {
        Some(need.div_ceil(SMALL_BUCKET_STEP) * SMALL_BUCKET_STEP)
    } else if need <= MAX_PADDED_LEN {
        Some(need.next_power_of_two())
    } else {
        None
    }
}

/// A length is a bucket exactly when the longest content it can hold
/// (one byte goes to the terminator) pads to it.
fn is_bucket(len: usize) -> bool {
    len.checked_sub(1).and_then(bucket_for) == Some(len)
}

/// `content || 0x80 || 0x00 * k`, with total length [`bucket_for`].
pub fn pad(content: &[u8]) -> Result<Vec<u8>, PaddingError> {
    let bucket =
        bucket_for(content.len()).ok_or(PaddingError::ContentTooLong { len: content.len() })?;
    let mut out = Vec::with_capacity(bucket);
    out.extend_from_slice(content);
    out.push(TERMINATOR);
    out.resize(bucket, 0);
    Ok(out)
}

/// Strips padding made by [`pad`], refusing anything [`pad`] would not make.
pub fn unpad(padded: &[u8]) -> Result<Vec<u8>, PaddingError> {
    if !is_bucket(padded.len()) {
        return Err(PaddingError::NotABucket { len: padded.len() });
    }
    let content_len = match padded.iter().rposition(|&b| b != 0) {
        Some(i) if padded.get(i) == Some(&TERMINATOR) => i,
        _ => return Err(PaddingError::MissingTerminator),
    };
    if bucket_for(content_len) != Some(padded.len()) {
        return Err(PaddingError::NonCanonical);
    }
    Ok(padded.get(..content_len).unwrap_or_default().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bucket_edges() {
        assert_eq!(bucket_for(0), Some(160));
        assert_eq!(bucket_for(159), Some(160));
        assert_eq!(bucket_for(160), Some(320));
        assert_eq!(bucket_for(1599), Some(1600));
        assert_eq!(bucket_for(1600), Some(2048));
        assert_eq!(bucket_for(MAX_CONTENT_LEN), Some(MAX_PADDED_LEN));
        assert_eq!(bucket_for(MAX_PADDED_LEN), None);
    }

    #[test]
    fn oversize_content_is_refused() {
        assert_eq!(
            pad(&vec![1u8; MAX_PADDED_LEN]),
            Err(PaddingError::ContentTooLong {
                len: MAX_PADDED_LEN
            })
        );
    }

    #[test]
    fn malformed_padding_is_named() {
        assert_eq!(unpad(&[]), Err(PaddingError::NotABucket { len: 0 }));
        assert_eq!(
            unpad(&[0u8; 161]),
            Err(PaddingError::NotABucket { len: 161 })
        );
        assert_eq!(unpad(&[0u8; 160]), Err(PaddingError::MissingTerminator));
        let mut bad = [0u8; 160];
        bad[5] = 0x81;
        assert_eq!(unpad(&bad), Err(PaddingError::MissingTerminator));
        let mut long = vec![0u8; 320];
        long[3] = TERMINATOR;
        assert_eq!(unpad(&long), Err(PaddingError::NonCanonical));
    }

    #[test]
    fn content_ending_in_terminator_byte_roundtrips() {
        let content = [0x80u8, 0, 0x80, 0];
        assert_eq!(unpad(&pad(&content).unwrap()).unwrap(), content);
    }

    proptest! {
        #[test]
        fn roundtrip(content in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let padded = pad(&content).unwrap();
            prop_assert!(is_bucket(padded.len()));
            prop_assert_eq!(unpad(&padded).unwrap(), content);
        }

        #[test]
        fn unpad_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            if let Ok(content) = unpad(&bytes) {
                // Anything accepted is exactly what pad would have produced.
                prop_assert_eq!(pad(&content).unwrap(), bytes);
            }
        }

        #[test]
        fn corrupted_padding_never_panics(
            content in proptest::collection::vec(any::<u8>(), 0..2000),
            at in any::<prop::sample::Index>(),
            value in any::<u8>(),
        ) {
            let mut padded = pad(&content).unwrap();
            let i = at.index(padded.len());
            padded[i] = value;
            if let Ok(got) = unpad(&padded) {
                prop_assert_eq!(pad(&got).unwrap(), padded);
            }
        }
    }
}
