//! Sent-message sync, the sending half (docs/PROTOCOL.md §10.7, §15.8):
//! after a user-visible 1:1 send (text, reply, file, reaction, edit,
//! delete) is committed, this device sends each other device of its own
//! account's held list a `SentTranscript` carrying the original content
//! and its destination, over a pairwise session per own device (built
//! from that device's bundle, which must carry our own identity). The
//! transcript is an outbox entry of its own, to our account, not shown
//! in history and never reported as a send.
//!
//! Must never: send a transcript to this device or to a device outside
//! our held list, start a session from an own device's bundle under
//! another identity than ours, or fail the user's send because its copy
//! could not be queued (the send is already committed; it is logged).

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::OsRng;
use umbra_protocol::content::{self, Content};
use umbra_protocol::device_list::HeldDeviceList;
use umbra_protocol::wire::{AccountId, Address, DeviceId};

use super::DeviceBundle;
use crate::contact::TrustLevel;
use crate::engine::{Engine, QueuedContent};
use crate::error::LogSafe;
use crate::failure::InvalidMessage;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, MessageId, UnknownPeer};

impl Engine {
    /// Queues the transcript of `original` (just sent to `destination`)
    /// for our other devices. Best effort: a failure is logged, never the
    /// send's (it is committed and on its way).
    pub(crate) async fn sync_sent(self: &Arc<Self>, destination: [u8; 16], original: &Content) {
        if let Err(e) = self.queue_transcript(destination, original).await {
            tracing::warn!(error = %LogSafe(&e), "sent transcript not queued for our other devices");
        }
    }

    /// Our own account as the session manager files it: sessions with our
    /// other devices live under our address and our identity, as a
    /// contact's do under theirs. Never stored as a contact.
    pub(crate) fn own_account_record(&self) -> ContactRecord {
        let me = self.me();
        ContactRecord {
            account: *me.account.as_bytes(),
            username: me.username.as_str().to_owned(),
            pinned: self.identity.public(),
            trust: TrustLevel::Verified,
            pending: None,
        }
    }

    async fn queue_transcript(
        self: &Arc<Self>,
        destination: [u8; 16],
        original: &Content,
    ) -> Result<(), Error> {
        let transcript = content::sent_transcript(AccountId::from_bytes(destination), original)
            .map_err(InvalidMessage::Content)?;
        let me = self.me();
        let own = self.own_account_record();
        let held = self.own_list_for_sync().await?;
        let others: Vec<DeviceId> = held
            .devices()
            .iter()
            .copied()
            .filter(|d| *d != me.device)
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        // The network half, without the state lock: a bundle for each own
        // device without a usable session.
        let now = self.clock.now_secs();
        let mut bundles = Vec::new();
        for &device in &others {
            if self
                .sessions
                .usable_of_device(&own, device, now)
                .await?
                .is_some()
            {
                continue;
            }
            match self
                .fetch_device_bundle(me.account, device, &me.username)
                .await
            {
                Ok(bundle) => {
                    // §15.3 rule 4: every device of our account publishes
                    // our identity; a bundle under another one is nobody's
                    // we may write to.
                    if !self.is_our_identity(bundle.identity()) {
                        tracing::warn!(
                            device = device.0,
                            "own device's bundle carries another identity; no transcript sent to it"
                        );
                        continue;
                    }
                    bundles.push(DeviceBundle {
                        device,
                        bundle: Box::new(bundle),
                    });
                }
                Err(Error::UnknownUser {
                    reason: UnknownPeer::NoPublishedKeys | UnknownPeer::NotOnRelay,
                    ..
                }) => {
                    tracing::debug!(device = device.0, "own device without keys skipped");
                }
                Err(e) => return Err(e),
            }
        }
        let _guard = self.op_lock.lock().await;
        let mut records = Vec::new();
        for &device in &others {
            if let Some(record) = self.sessions.usable_of_device(&own, device, now).await? {
                records.push(record);
            } else if let Some(b) = bundles.iter().find(|b| b.device == device) {
                let to = Address {
                    account: me.account,
                    device,
                };
                records.push(self.start_session_with(&own, &b.bundle, to, now).await?);
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut counters = self.counters().await?;
        let mut txn = Txn::new();
        self.encrypt_into_outbox(
            &mut txn,
            &mut counters,
            &own,
            &mut records,
            QueuedContent {
                content: transcript,
                id: MessageId::random(&mut OsRng),
                visible: false,
            },
        )?;
        self.put_counters(&mut txn, &counters)?;
        self.vault.commit(txn).await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Our held list, fetched again (§15.3 rule 1) on the first sync of a
    /// connection and then every `RECHECK_AFTER`, as a contact's is with
    /// its published-identity check; a fetch that could not be made syncs
    /// on the held list.
    async fn own_list_for_sync(self: &Arc<Self>) -> Result<HeldDeviceList, Error> {
        let account = self.me().account;
        if self
            .identity_checks
            .is_fresh(account.as_bytes(), Instant::now())
        {
            return self.devices.held(&account).await;
        }
        let check = self.identity_checks.start(Instant::now());
        match self.fetch_own_device_list().await {
            Ok(held) => {
                self.identity_checks.record(*account.as_bytes(), check);
                Ok(held)
            }
            Err(e @ Error::Store(_)) => Err(e),
            Err(e) => {
                tracing::debug!(error = %LogSafe(&e), "own device list not fetched; syncing on the held list");
                self.devices.held(&account).await
            }
        }
    }
}
