//! The outside of a sealed account backup (docs/PROTOCOL.md §13): its
//! layout, the sizes it may have, and the header fields a relay may read
//! without any key.
//!
//! A sealed backup is `version || seq || key_check || nonce || ciphertext
//! || tag`, and its total length is always one of the power-of-two buckets
//! [`MIN_BACKUP_BYTES`]..=[`MAX_BACKUP_BYTES`]. The relay stores it under
//! the authenticated account and may check, with [`BackupHeader::parse`],
//! that an upload is well formed and that its `seq` grows (so two devices
//! racing cannot silently overwrite a newer backup with an older one); it
//! learns nothing else. Opening is umbra-protocol's (`backup`), which uses
//! these constants, so they are defined once.
//!
//! Must never: hold a key, read past the header, or accept a length that is
//! not a bucket.

/// The sealed-backup format version this code writes and reads.
pub const BACKUP_VERSION: u8 = 0x01;
/// Bytes of the backup sequence number (`u64be`).
pub const BACKUP_SEQ_LEN: usize = 8;
/// Bytes of the key check (§13.2): tells a wrong password from tampering.
pub const BACKUP_KEY_CHECK_LEN: usize = 16;
/// Bytes of the XChaCha20-Poly1305 nonce.
pub const BACKUP_NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag at the end.
pub const BACKUP_TAG_LEN: usize = 16;
/// `version (1) || seq (8) || key_check (16) || nonce (24)`.
pub const BACKUP_HEADER_LEN: usize = 1 + BACKUP_SEQ_LEN + BACKUP_KEY_CHECK_LEN + BACKUP_NONCE_LEN;
/// Header plus tag: what a sealed backup adds to its padded plaintext.
pub const BACKUP_OVERHEAD: usize = BACKUP_HEADER_LEN + BACKUP_TAG_LEN;
/// Smallest sealed backup (16 KiB, 2^14): every account with a few dozen
/// contacts and small groups has exactly this size.
pub const MIN_BACKUP_BYTES: usize = 1 << 14;
/// Largest sealed backup (16 MiB, 2^24).
pub const MAX_BACKUP_BYTES: usize = 1 << 24;

/// The sealed length for `contents_len` bytes of contents: the smallest
/// power of two, at least [`MIN_BACKUP_BYTES`], that holds the contents,
/// the `0x80` terminator and [`BACKUP_OVERHEAD`]; `None` above
/// [`MAX_BACKUP_BYTES`].
pub fn backup_bucket_for(contents_len: usize) -> Option<usize> {
    let need = contents_len.checked_add(1 + BACKUP_OVERHEAD)?;
    let bucket = need.checked_next_power_of_two()?.max(MIN_BACKUP_BYTES);
    (bucket <= MAX_BACKUP_BYTES).then_some(bucket)
}

/// Whether `len` is one of the sealed-backup sizes.
pub fn is_backup_bucket(len: usize) -> bool {
    len.is_power_of_two() && (MIN_BACKUP_BYTES..=MAX_BACKUP_BYTES).contains(&len)
}

/// Why bytes are not a sealed backup, judged from the outside alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackupFrameError {
    /// No bytes at all.
    #[error("empty backup")]
    Truncated,
    /// More bytes than any backup may have.
    #[error("backup of {len} bytes exceeds the maximum of {MAX_BACKUP_BYTES}")]
    TooLarge {
        /// Length of the input.
        len: usize,
    },
    /// A leading version byte this code does not read.
    #[error(
        "backup format version {found} is not supported (this code reads version {BACKUP_VERSION})"
    )]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// A length that is not one of the bucket sizes.
    #[error("backup length {len} is not a bucket size")]
    NotABucket {
        /// Length of the input.
        len: usize,
    },
}

/// The public header of a sealed backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupHeader {
    /// The backup sequence number (grows with every backup of the account).
    pub seq: u64,
    /// The key check (§13.2), the same for every backup under one password.
    pub key_check: [u8; BACKUP_KEY_CHECK_LEN],
    /// The AEAD nonce.
    pub nonce: [u8; BACKUP_NONCE_LEN],
}

impl BackupHeader {
    /// Checks, in this order: not empty, not over [`MAX_BACKUP_BYTES`], the
    /// version, a bucket length; then reads the header.
    pub fn parse(sealed: &[u8]) -> Result<Self, BackupFrameError> {
        let len = sealed.len();
        let (&version, _) = sealed.split_first().ok_or(BackupFrameError::Truncated)?;
        if len > MAX_BACKUP_BYTES {
            return Err(BackupFrameError::TooLarge { len });
        }
        if version != BACKUP_VERSION {
            return Err(BackupFrameError::UnknownVersion { found: version });
        }
        if !is_backup_bucket(len) {
            return Err(BackupFrameError::NotABucket { len });
        }
        let field = |from: usize, to: usize| sealed.get(from..to).unwrap_or_default();
        let seq_end = 1 + BACKUP_SEQ_LEN;
        let check_end = seq_end + BACKUP_KEY_CHECK_LEN;
        let mut seq = [0u8; BACKUP_SEQ_LEN];
        seq.copy_from_slice(field(1, seq_end));
        let mut key_check = [0u8; BACKUP_KEY_CHECK_LEN];
        key_check.copy_from_slice(field(seq_end, check_end));
        let mut nonce = [0u8; BACKUP_NONCE_LEN];
        nonce.copy_from_slice(field(check_end, BACKUP_HEADER_LEN));
        Ok(Self {
            seq: u64::from_be_bytes(seq),
            key_check,
            nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_from_16_kib_to_16_mib() {
        assert_eq!(BACKUP_HEADER_LEN, 49);
        assert_eq!(backup_bucket_for(0), Some(MIN_BACKUP_BYTES));
        let fits_min = MIN_BACKUP_BYTES - 1 - BACKUP_OVERHEAD;
        assert_eq!(backup_bucket_for(fits_min), Some(MIN_BACKUP_BYTES));
        assert_eq!(backup_bucket_for(fits_min + 1), Some(2 * MIN_BACKUP_BYTES));
        let fits_max = MAX_BACKUP_BYTES - 1 - BACKUP_OVERHEAD;
        assert_eq!(backup_bucket_for(fits_max), Some(MAX_BACKUP_BYTES));
        assert_eq!(backup_bucket_for(fits_max + 1), None);
        assert_eq!(backup_bucket_for(usize::MAX), None);
        for len in [MIN_BACKUP_BYTES, 1 << 20, MAX_BACKUP_BYTES] {
            assert!(is_backup_bucket(len));
        }
        for len in [
            0,
            1,
            MIN_BACKUP_BYTES / 2,
            MIN_BACKUP_BYTES + 1,
            2 * MAX_BACKUP_BYTES,
        ] {
            assert!(!is_backup_bucket(len), "{len}");
        }
    }

    #[test]
    fn header_refusals_are_named_and_in_order() {
        assert_eq!(BackupHeader::parse(&[]), Err(BackupFrameError::Truncated));
        assert_eq!(
            BackupHeader::parse(&[2; 10]),
            Err(BackupFrameError::UnknownVersion { found: 2 })
        );
        assert_eq!(
            BackupHeader::parse(&[1; 10]),
            Err(BackupFrameError::NotABucket { len: 10 })
        );
        let mut sealed = vec![0u8; MIN_BACKUP_BYTES];
        sealed[0] = BACKUP_VERSION;
        sealed[1..9].copy_from_slice(&7u64.to_be_bytes());
        sealed[9] = 0xaa;
        sealed[48] = 0xbb;
        let header = BackupHeader::parse(&sealed).unwrap();
        assert_eq!(header.seq, 7);
        assert_eq!(header.key_check[0], 0xaa);
        assert_eq!(header.nonce[23], 0xbb);
        let huge = vec![1u8; MAX_BACKUP_BYTES + 1];
        assert_eq!(
            BackupHeader::parse(&huge),
            Err(BackupFrameError::TooLarge {
                len: MAX_BACKUP_BYTES + 1
            })
        );
    }
}
