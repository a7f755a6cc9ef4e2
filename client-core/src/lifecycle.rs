//! The account manager: renaming, logging out, deleting the account, the
//! stored relay token, and changing the password (`password.rs`).
//!
//! Must never: keep a token after logout, or leave a store behind after the
//! relay deleted the account.

pub(crate) mod password;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use umbra_protocol::content::Content;
use umbra_protocol::wire::{Request, Response, Username};

use crate::account::{AccountRecord, TokenRecord};
use crate::engine::Engine;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::Error;

impl Engine {
    pub(crate) async fn rename(self: &Arc<Self>, new_username: &str) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        let name = Username::parse(new_username)?;
        let response = self
            .request(Request::Rename {
                new_username: name.clone(),
            })
            .await?;
        let Response::Resolved { username, .. } = response else {
            return Err(crate::error::unexpected("Resolved", &response));
        };
        {
            let _guard = self.op_lock.lock().await;
            let mut record: AccountRecord = self
                .vault
                .load(&records::account::account())
                .await?
                .ok_or(crate::StoreError::NotInitialized)?;
            record.username = username.as_str().to_owned();
            let mut txn = Txn::new();
            self.vault
                .save(&mut txn, records::account::account(), &record)?;
            self.vault.commit(txn).await?;
            self.me.write().unwrap_or_else(|p| p.into_inner()).username = username.clone();
        }
        // Tell every contact we can reach, so their lists follow the rename.
        for (_, contact) in self
            .vault
            .load_all(&Prefix::<records::contact::Contacts>::all())
            .await?
        {
            self.send_control(
                &contact,
                Content::ProfileChange {
                    new_username: username.clone(),
                },
            )
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn logout(self: &Arc<Self>) -> Result<(), Error> {
        self.ensure_connected()?;
        let result = self.request(Request::Logout { everywhere: false }).await;
        self.disconnect().await;
        {
            let _guard = self.op_lock.lock().await;
            let mut txn = Txn::new();
            self.vault.remove(&mut txn, records::account::token());
            self.vault.commit(txn).await?;
        }
        self.closed.store(true, Ordering::SeqCst);
        result.map(|_| ())
    }

    pub(crate) async fn delete_account(self: &Arc<Self>) -> Result<(), Error> {
        self.ensure_connected()?;
        self.request(Request::DeleteAccount).await?;
        self.disconnect().await;
        self.closed.store(true, Ordering::SeqCst);
        let _guard = self.op_lock.lock().await;
        self.vault.backend().erase_all().await?;
        Ok(())
    }

    /// The stored token, if logged in.
    pub(crate) async fn token(&self) -> Result<Option<TokenRecord>, Error> {
        Ok(self.vault.load(&records::account::token()).await?)
    }

    /// Stores a fresh token (after `login` on an existing store).
    pub(crate) async fn store_token(&self, token: &TokenRecord) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault
            .save(&mut txn, records::account::token(), token)?;
        self.vault.commit(txn).await?;
        Ok(())
    }
}
