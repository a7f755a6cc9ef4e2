//! Self-monitoring (docs/PROTOCOL.md §16.6, §16.9 item 5): the client asks
//! for the versions of its own account's leaf and username's leaf that it
//! has not checked yet, and raises [`Event::OwnKeyNotPublishedByMe`] for a
//! version whose identity it does not hold or whose device list is not
//! its own, or a username version naming another account. It remembers
//! `(n, C_n)` of each leaf so the next check asks from `n + 1`, and a
//! history that does not continue that link is an alarm (`ChainMismatch`).
//!
//! Must never: advance the remembered link past a version that raised the
//! alarm (the alarm is raised again at every check while the directory
//! holds it), or pass a leaf on a proof that failed.

use std::sync::Arc;

use umbra_protocol::device_list::HeldDeviceList;
use umbra_protocol::wire::kt::{
    Hash32, HistoryProof, KtError, KtLabel, LeafValue, Lookup, LookupProof, VersionRecord,
    VrfPublicKey,
};
use umbra_protocol::wire::{AccountRef, Request, Response};

use super::{KtFailure, KtPins, StoredKt};
use crate::engine::Engine;
use crate::store::Txn;
use crate::{records, Error, Event};

/// One leaf's versions not checked yet, and the link to remember after.
struct NewVersions {
    versions: Vec<(VersionRecord, Hash32)>,
}

impl Engine {
    /// Checks our own account's and username's leaves (§16.9 item 5).
    /// `Ok(n)`: `n` versions raised the alarm (each an event).
    pub(crate) async fn kt_monitor_own(self: &Arc<Self>) -> Result<usize, Error> {
        let state = self.kt_state().await?;
        let pins = state.pins();
        let (_, vrf) = pins.keys()?;
        let me = self.me();
        let StoredKt::V1 {
            account_link,
            username_link,
            ..
        } = &state;
        let mut alarms = 0;

        // The account's leaf: every version names our identity, and the
        // newest our own signed device list.
        let label = KtLabel::Account(me.account);
        let new = self
            .kt_new_versions(
                &pins,
                &vrf,
                &label,
                AccountRef::Account(me.account),
                *account_link,
            )
            .await?;
        let ours = LeafValue::account(Some(&self.identity.public().to_bytes()), None);
        let LeafValue::Account {
            identity: our_identity,
            ..
        } = ours
        else {
            unreachable!("an account value")
        };
        let list_hash = self.kt_own_list_hash().await?;
        let mut account_next = *account_link;
        if let Some(new) = new {
            let last = new.versions.len() - 1;
            for (i, (record, chain)) in new.versions.iter().enumerate() {
                let LeafValue::Account {
                    identity,
                    device_list,
                } = record.value
                else {
                    unreachable!("verified of the account's kind")
                };
                let reason = if identity != our_identity {
                    Some("an identity key this account never published")
                } else if i == last && device_list != list_hash {
                    Some("a device list this account never signed")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    alarms += 1;
                    self.kt_own_alarm(record, reason);
                    break;
                }
                account_next = Some((record.version, *chain));
            }
        }

        // The username's leaf: the versions from the one naming us on.
        let name_label = KtLabel::Username(me.username.clone());
        let link = username_link
            .as_ref()
            .filter(|(name, _, _)| *name == me.username.as_str())
            .map(|(_, n, c)| (*n, *c));
        let new = self
            .kt_new_versions(
                &pins,
                &vrf,
                &name_label,
                AccountRef::Username(me.username.clone()),
                link,
            )
            .await?;
        let mut name_next = link;
        if let Some(new) = new {
            // Without a remembered link, earlier holders of the name are
            // history: only the newest version must be ours.
            let from = if link.is_none() {
                new.versions.len() - 1
            } else {
                0
            };
            for (record, chain) in &new.versions[from..] {
                if record.value
                    != (LeafValue::Username {
                        account: Some(me.account),
                    })
                {
                    alarms += 1;
                    self.kt_own_alarm(record, "our username held by another account, or released");
                    break;
                }
                name_next = Some((record.version, *chain));
            }
        }

        self.kt_remember_links(
            account_next,
            name_next.map(|(n, c)| (me.username.to_string(), n, c)),
        )
        .await?;
        Ok(alarms)
    }

    /// The versions of `label` after the remembered `(n, C_n)` (all of
    /// them without one), verified against the newest head; `None` when
    /// there is none. A history that does not continue the link is an alarm.
    async fn kt_new_versions(
        self: &Arc<Self>,
        pins: &KtPins,
        vrf: &VrfPublicKey,
        label: &KtLabel,
        wire_label: AccountRef,
        link: Option<(u64, Hash32)>,
    ) -> Result<Option<NewVersions>, Error> {
        for _ in 0..2 {
            let (head, proof) = match self
                .request(Request::KtLookup {
                    label: wire_label.clone(),
                })
                .await?
            {
                Response::KtLookup { head, proof } => (head, proof),
                other => return Err(crate::error::unexpected("KtLookup", &other)),
            };
            let Some(head) = self.kt_accept_head(pins, &head).await? else {
                continue;
            };
            let latest = LookupProof::decode(&proof)
                .and_then(|p| p.verify(vrf, label, head.map_root(), head.epoch()))
                .map_err(KtFailure::Proof)?;
            let (newest, chain) = match (latest, link) {
                (Lookup::Absent, None) => return Ok(None),
                (Lookup::Absent, Some(_)) => return Err(self.kt_alarm(KtError::ChainMismatch)),
                (Lookup::Present { latest, chain }, _) => (latest.version, chain),
            };
            let first = match link {
                Some((n, c)) if n == newest && c == chain => return Ok(None),
                Some((n, _)) if n >= newest => return Err(self.kt_alarm(KtError::ChainMismatch)),
                Some((n, _)) => n + 1,
                None => 1,
            };
            let (head, proof) = match self
                .request(Request::KtHistory {
                    label: wire_label.clone(),
                    first,
                })
                .await?
            {
                Response::KtHistory { head, proof } => (head, proof),
                other => return Err(crate::error::unexpected("KtHistory", &other)),
            };
            let Some(head) = self.kt_accept_head(pins, &head).await? else {
                continue;
            };
            let proof = HistoryProof::decode(&proof).map_err(KtFailure::Proof)?;
            if let Some((_, c)) = link {
                if proof.prior_chain != c {
                    return Err(self.kt_alarm(KtError::ChainMismatch));
                }
            }
            let history = proof
                .verify(vrf, label, head.map_root(), head.epoch())
                .map_err(KtFailure::Proof)?;
            return Ok(Some(NewVersions {
                versions: history.versions,
            }));
        }
        Err(KtFailure::Proof(KtError::BadConsistency).into())
    }

    /// `device_list_hash` of §16.3 for the list our identity signed that
    /// the relay serves now (checked under our identity by the fetch).
    async fn kt_own_list_hash(self: &Arc<Self>) -> Result<Hash32, Error> {
        let list = match self.fetch_own_device_list().await? {
            HeldDeviceList::Implicit => None,
            HeldDeviceList::Verified(list) => Some(list.encode()),
        };
        let LeafValue::Account { device_list, .. } = LeafValue::account(None, list.as_deref())
        else {
            unreachable!("an account value")
        };
        Ok(device_list)
    }

    fn kt_own_alarm(&self, record: &VersionRecord, reason: &str) {
        tracing::warn!(
            version = record.version,
            epoch = record.epoch,
            reason,
            "the key directory holds a version of our own keys we never published"
        );
        self.emit(Event::OwnKeyNotPublishedByMe {
            version: record.version,
            epoch: record.epoch,
            reason: reason.to_string(),
        });
    }

    async fn kt_remember_links(
        &self,
        account: Option<(u64, Hash32)>,
        username: Option<(String, u64, Hash32)>,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let Some(mut record) = self.vault.load(&records::kt::slot()).await? else {
            return Ok(());
        };
        let StoredKt::V1 {
            account_link,
            username_link,
            ..
        } = &mut record;
        *account_link = account;
        *username_link = username;
        let mut txn = Txn::new();
        self.vault.save(&mut txn, records::kt::slot(), &record)?;
        self.vault.commit(txn).await?;
        Ok(())
    }
}
