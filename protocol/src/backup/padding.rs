//! Padding of a backup's plaintext so that the sealed backup is exactly one
//! of the power-of-two sizes of `wire::backup` (16 KiB .. 16 MiB), which is
//! all its length says (docs/PROTOCOL.md §13.5).
//!
//! `padded = contents || 0x80 || 0x00 * k`, with `len(padded) =
//! bucket − BACKUP_OVERHEAD` (ISO/IEC 7816-4, as §6 for messages, but with
//! its own buckets: messages' 64 KiB ceiling is far below a backup's).
//!
//! Must never: panic on any input to [`unpad`], or accept a padding that
//! [`pad`] would not produce.

use zeroize::Zeroizing;

use super::BackupError;
use crate::wire::backup::{backup_bucket_for, BACKUP_OVERHEAD};

/// The padding terminator.
pub const TERMINATOR: u8 = 0x80;

/// Pads `contents` for the bucket it needs; the result is the AEAD input.
pub fn pad(contents: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let bucket = backup_bucket_for(contents.len()).ok_or(BackupError::TooLarge {
        len: contents.len(),
    })?;
    let mut out = Zeroizing::new(Vec::with_capacity(bucket - BACKUP_OVERHEAD));
    out.extend_from_slice(contents);
    out.push(TERMINATOR);
    out.resize(bucket - BACKUP_OVERHEAD, 0);
    Ok(out)
}

/// The contents inside a decrypted `padded`, refusing anything [`pad`]
/// would not have made.
pub fn unpad(padded: &[u8]) -> Result<&[u8], BackupError> {
    let end = match padded.iter().rposition(|&b| b != 0) {
        Some(i) if padded.get(i) == Some(&TERMINATOR) => i,
        _ => return Err(BackupError::BadPadding("no 0x80 terminator")),
    };
    let expected = backup_bucket_for(end).map(|bucket| bucket - BACKUP_OVERHEAD);
    if expected != Some(padded.len()) {
        return Err(BackupError::BadPadding(
            "padded to another bucket than the contents need",
        ));
    }
    Ok(padded.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::backup::{MAX_BACKUP_BYTES, MIN_BACKUP_BYTES};
    use proptest::prelude::*;

    #[test]
    fn edges() {
        assert_eq!(pad(&[]).unwrap().len(), MIN_BACKUP_BYTES - BACKUP_OVERHEAD);
        let fits = MIN_BACKUP_BYTES - BACKUP_OVERHEAD - 1;
        assert_eq!(pad(&vec![1; fits]).unwrap().len(), fits + 1);
        assert_eq!(
            pad(&vec![1; fits + 1]).unwrap().len(),
            2 * MIN_BACKUP_BYTES - BACKUP_OVERHEAD
        );
        let too_long = MAX_BACKUP_BYTES - BACKUP_OVERHEAD;
        assert_eq!(
            pad(&vec![0; too_long]).map(|_| ()),
            Err(BackupError::TooLarge { len: too_long })
        );
    }

    #[test]
    fn refusals_are_named() {
        let bucket = MIN_BACKUP_BYTES - BACKUP_OVERHEAD;
        assert!(matches!(
            unpad(&vec![0; bucket]),
            Err(BackupError::BadPadding(_))
        ));
        let mut wrong_byte = vec![0; bucket];
        wrong_byte[3] = 0x81;
        assert!(matches!(
            unpad(&wrong_byte),
            Err(BackupError::BadPadding(_))
        ));
        // Short contents padded into the second bucket: not canonical.
        let mut too_big = vec![0; 2 * MIN_BACKUP_BYTES - BACKUP_OVERHEAD];
        too_big[3] = TERMINATOR;
        assert!(matches!(unpad(&too_big), Err(BackupError::BadPadding(_))));
        // A length that no bucket gives.
        let mut odd = vec![0; bucket - 1];
        odd[3] = TERMINATOR;
        assert!(matches!(unpad(&odd), Err(BackupError::BadPadding(_))));
    }

    proptest! {
        #[test]
        fn roundtrip(contents in proptest::collection::vec(any::<u8>(), 0..40_000)) {
            let padded = pad(&contents).unwrap();
            prop_assert!(crate::wire::backup::is_backup_bucket(padded.len() + BACKUP_OVERHEAD));
            prop_assert_eq!(unpad(&padded).unwrap(), &contents[..]);
        }

        #[test]
        fn unpad_accepts_only_what_pad_makes(
            contents in proptest::collection::vec(any::<u8>(), 0..100),
            at in any::<prop::sample::Index>(),
            value in any::<u8>(),
        ) {
            let mut padded = pad(&contents).unwrap().to_vec();
            let i = at.index(padded.len());
            padded[i] = value;
            if let Ok(got) = unpad(&padded) {
                prop_assert_eq!(&pad(got).unwrap()[..], &padded[..]);
            }
        }
    }
}
