//! Account changes by their owner: rename and deletion.
//!
//! Must never: act on an account other than the authenticated one, or log
//! the old or new username.

use umbra_wire::{Address, Response, Username};

use super::{ConnectionAuth, Handled};
use crate::app::AppState;
use crate::auth::tokens::unix_now;

/// Renames the account; answers with the new name and the published identity.
pub(super) async fn rename(state: &AppState, me: Address, new_username: Username) -> Handled {
    state
        .store
        .rename_account(me.account, &new_username, unix_now())
        .await?;
    let identity = state.store.published_identity(me).await?;
    Ok(Response::Resolved {
        username: new_username,
        account: me.account,
        identity,
    })
}

/// Deletes the account and everything stored for it, and closes its other
/// connections. The caller hangs up after the reply.
pub(super) async fn delete(state: &AppState, conn: &ConnectionAuth, me: Address) -> Handled {
    state.store.delete_account(me.account, unix_now()).await?;
    // Closes the account's other connections here and on every node.
    crate::wakeups::revoked(state, me.account, Some(conn.connection), "account deleted").await;
    Ok(Response::Ok)
}
