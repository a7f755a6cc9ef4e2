//! The relay's key-transparency keys as this client pins them, and the
//! stored record that holds them with the newest verified head
//! (docs/PROTOCOL.md §12.9 kind `KtState`, §16.9 item 1).
//!
//! Must never: replace a pinned key with another one; a relay presenting
//! other keys is refused, not re-pinned.

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::kt::{DirectoryPublicKey, VrfPublicKey};

use super::KtFailure;
use crate::engine::Engine;
use crate::store::Txn;
use crate::{records, Error};

/// The relay's directory key (Ed25519) and VRF public key (ristretto255),
/// each 32 bytes, as `umbra-relay audit` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KtPins {
    /// The directory key that signs epoch heads (§16.7).
    pub directory_key: [u8; 32],
    /// The VRF public key that proves leaf indices (§16.2).
    pub vrf_key: [u8; 32],
}

impl KtPins {
    /// Both keys decoded, or [`KtFailure::Proof`] naming the bad one.
    pub(crate) fn keys(&self) -> Result<(DirectoryPublicKey, VrfPublicKey), KtFailure> {
        let directory =
            DirectoryPublicKey::from_bytes(&self.directory_key).map_err(KtFailure::Proof)?;
        let vrf = VrfPublicKey::from_bytes(self.vrf_key).map_err(KtFailure::Proof)?;
        Ok((directory, vrf))
    }
}

/// The `KtState` record. An enum, so its variant index is a format number
/// (postcard is not self-describing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StoredKt {
    /// Format 0: the pinned keys, the newest verified head's encoding
    /// (§16.7), `None` before the first, and the newest version and chain
    /// link `(n, C_n)` self-monitoring verified of our account's leaf and
    /// of our username's leaf (with the name), §16.6.
    V1 {
        directory_key: [u8; 32],
        vrf_key: [u8; 32],
        head: Option<Vec<u8>>,
        account_link: Option<(u64, [u8; 32])>,
        username_link: Option<(String, u64, [u8; 32])>,
    },
}

impl StoredKt {
    pub(crate) fn pins(&self) -> KtPins {
        let StoredKt::V1 {
            directory_key,
            vrf_key,
            ..
        } = self;
        KtPins {
            directory_key: *directory_key,
            vrf_key: *vrf_key,
        }
    }

    /// A record of `pins` and nothing verified yet.
    pub(crate) fn new(pins: KtPins) -> Self {
        StoredKt::V1 {
            directory_key: pins.directory_key,
            vrf_key: pins.vrf_key,
            head: None,
            account_link: None,
            username_link: None,
        }
    }

    pub(crate) fn head(&self) -> Option<&[u8]> {
        let StoredKt::V1 { head, .. } = self;
        head.as_deref()
    }
}

impl Engine {
    /// The pinned keys and remembered head. The first time the
    /// configuration names keys they are pinned in the store; later, a
    /// configuration naming other keys is [`KtFailure::PinMismatch`].
    pub(crate) async fn kt_state(&self) -> Result<StoredKt, Error> {
        let stored = self.vault.load(&records::kt::slot()).await?;
        match (stored, self.kt_configured) {
            (Some(stored), None) => Ok(stored),
            (Some(stored), Some(configured)) if stored.pins() == configured => Ok(stored),
            (Some(_), Some(_)) => Err(KtFailure::PinMismatch.into()),
            (None, None) => Err(KtFailure::NotPinned.into()),
            (None, Some(configured)) => {
                configured.keys()?;
                let state = StoredKt::new(configured);
                let _guard = self.op_lock.lock().await;
                let mut txn = Txn::new();
                self.vault.save(&mut txn, records::kt::slot(), &state)?;
                self.vault.commit(txn).await?;
                Ok(state)
            }
        }
    }
}
