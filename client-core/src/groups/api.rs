//! The group part of the public [`Client`] API: create and change groups,
//! list them and their members, send to them. The engine's group code
//! (`control.rs`, `send.rs`) does the work; this is the one place its
//! public face is written, with examples.
//!
//! Must never: take a group by anything but its id (names are ambiguous:
//! [`Client::find_group`] turns a name into an id, or says why not).

use umbra_protocol::group::GroupPolicy;
use umbra_protocol::wire::AccountId;

use crate::{
    Client, Error, GroupId, GroupInfo, GroupMemberInfo, GroupSendReport, MessageId, PeerRef,
};

/// Groups.
impl Client {
    /// Creates a group called `name` with us as its admin and `members`
    /// (accounts, named as the user knows them: a username, a
    /// `name#xxxxxxxx` label or an account id). A member we have no
    /// session with is reached as a 1:1 first contact is (its keys fetched
    /// and pinned); one whose key changed is skipped and reported. The
    /// returned report's `group` is the new group's id; every call names
    /// the group by it ([`Client::find_group`] finds it by name).
    ///
    /// ```no_run
    /// # async fn demo(alice: umbra_client_core::Client) -> Result<(), umbra_client_core::Error> {
    /// use umbra_client_core::PeerRef;
    /// let members: Vec<PeerRef> = vec!["bob".parse()?, "carol".parse()?];
    /// let created = alice.create_group("climbing", &members).await?;
    /// let report = alice.send_group_text(&created.group, "saturday?").await?;
    /// for failed in report.failed() {
    ///     println!("not sent to {}: {:?}", failed.username, failed.outcome);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create_group(
        &self,
        name: &str,
        members: &[PeerRef],
    ) -> Result<GroupSendReport, Error> {
        let policy = GroupPolicy {
            members_may_rename: false,
        };
        self.create_group_with_policy(name, members, policy).await
    }

    /// [`Client::create_group`] under a policy of our choosing, fixed for
    /// the group's life (docs/PROTOCOL.md §8.9): with `members_may_rename`,
    /// any member may rename the group, not only its admins.
    ///
    /// ```no_run
    /// # async fn demo(alice: umbra_client_core::Client) -> Result<(), umbra_client_core::Error> {
    /// use umbra_client_core::{GroupPolicy, PeerRef};
    /// let members: Vec<PeerRef> = vec!["bob".parse()?];
    /// let open = GroupPolicy { members_may_rename: true };
    /// let created = alice.create_group_with_policy("book club", &members, open).await?;
    /// assert!(alice.group(&created.group).await?.members_may_rename);
    /// # Ok(()) }
    /// ```
    pub async fn create_group_with_policy(
        &self,
        name: &str,
        members: &[PeerRef],
        policy: GroupPolicy,
    ) -> Result<GroupSendReport, Error> {
        Ok(self.inner.create_group(name, members, policy).await?.1)
    }

    /// Adds members (admins only). New members get the group's current
    /// state and can read only what is sent from now on.
    pub async fn add_members(
        &self,
        group: &GroupId,
        members: &[PeerRef],
    ) -> Result<GroupSendReport, Error> {
        self.inner.add_members(group, members).await
    }

    /// Removes a member (admins only). Every member's next message uses a
    /// new sender key the removed member does not get.
    ///
    /// ```no_run
    /// # async fn demo(alice: umbra_client_core::Client) -> Result<(), umbra_client_core::Error> {
    /// let group = alice.find_group("climbing").await?;
    /// alice.remove_member(&group, &"mallory".parse()?).await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_member(
        &self,
        group: &GroupId,
        member: &PeerRef,
    ) -> Result<GroupSendReport, Error> {
        self.inner.remove_member(group, member).await
    }

    /// Leaves a group: the members are told, our keys for it are forgotten;
    /// it stays listed as inactive.
    pub async fn leave_group(&self, group: &GroupId) -> Result<GroupSendReport, Error> {
        self.inner.leave_group(group).await
    }

    /// Renames a group (admins, or any member if the group was created
    /// with `members_may_rename`).
    pub async fn rename_group(
        &self,
        group: &GroupId,
        name: &str,
    ) -> Result<GroupSendReport, Error> {
        self.inner.rename_group(group, name).await
    }

    /// Makes a member an admin (admins only).
    pub async fn promote_member(
        &self,
        group: &GroupId,
        member: &PeerRef,
    ) -> Result<GroupSendReport, Error> {
        self.inner.promote(group, member).await
    }

    /// Every group we know (also those we left), by name.
    pub async fn groups(&self) -> Result<Vec<GroupInfo>, Error> {
        Ok(self
            .inner
            .groups
            .all()
            .await?
            .iter()
            .map(|g| g.info())
            .collect())
    }

    /// One group.
    pub async fn group(&self, group: &GroupId) -> Result<GroupInfo, Error> {
        Ok(self.inner.groups.require(group).await?.info())
    }

    /// A group's members, ascending by account id, with their admin flags.
    pub async fn group_members(&self, group: &GroupId) -> Result<Vec<GroupMemberInfo>, Error> {
        let me = self.inner.me().account;
        Ok(self.inner.groups.require(group).await?.members(&me))
    }

    /// The group `name_or_id` names: its 64-digit hex id, or its exact
    /// name. Fails with [`GroupFailure::AmbiguousName`] when several groups
    /// have that name (then name it by id), [`GroupFailure::NoSuchName`]
    /// when none has.
    ///
    /// [`GroupFailure::AmbiguousName`]: crate::GroupFailure::AmbiguousName
    /// [`GroupFailure::NoSuchName`]: crate::GroupFailure::NoSuchName
    pub async fn find_group(&self, name_or_id: &str) -> Result<GroupId, Error> {
        if let Some(id) = GroupId::from_hex(name_or_id) {
            if self.inner.groups.get(&id).await?.is_some() {
                return Ok(id);
            }
        }
        self.inner.groups.by_name(name_or_id).await
    }

    /// Sends a text message to every member of the group. It is encrypted
    /// once under our sender key, stored with the advanced key before
    /// anything leaves, and sealed to each member; the report says, member
    /// by member, whether the relay took it ([`MemberOutcome`]). Members
    /// still `Queued` get it from the outbox later.
    ///
    /// [`MemberOutcome`]: crate::MemberOutcome
    pub async fn send_group_text(
        &self,
        group: &GroupId,
        text: &str,
    ) -> Result<GroupSendReport, Error> {
        self.inner.send_group_text(group, text, None).await
    }

    /// Sends a file to every member of the group: it is encrypted and
    /// uploaded once, as for [`Client::send_file`], and its pointer (the
    /// blob's id, key and digest) goes to the members as one group message,
    /// reported member by member as [`Client::send_group_text`]'s. Each
    /// member fetches it with [`Client::fetch_file`] and the id of the
    /// [`FileInfo`](crate::FileInfo) its event or history shows
    /// ([`Client::group_file_of`]). `name` (default: the file's own) is
    /// sanitised; a group we are not active in is refused before the
    /// upload.
    ///
    /// ```no_run
    /// # async fn demo(alice: umbra_client_core::Client) -> Result<(), umbra_client_core::Error> {
    /// let group = alice.find_group("climbing").await?;
    /// let path = std::path::Path::new("topo.pdf");
    /// let (report, file) = alice.send_group_file(&group, path, None, &|_| {}).await?;
    /// println!("sent {} ({} bytes) to {} members", file.name, file.size, report.reached().count());
    /// # Ok(()) }
    /// ```
    pub async fn send_group_file(
        &self,
        group: &GroupId,
        path: &std::path::Path,
        name: Option<&str>,
        progress: &(dyn Fn(crate::Progress) + Send + Sync),
    ) -> Result<(GroupSendReport, crate::FileInfo), Error> {
        self.inner
            .send_group_file(group, path, name, progress)
            .await
    }

    /// Tells the group's members we started or stopped typing (ephemeral;
    /// skipped for large groups).
    pub async fn send_group_typing(&self, group: &GroupId, started: bool) -> Result<(), Error> {
        self.inner.send_group_typing(group, started).await
    }

    /// Sends a read receipt for group messages `ids` to their sender,
    /// pairwise (as in 1:1: only the sender learns it).
    pub async fn mark_group_read(
        &self,
        sender: &AccountId,
        ids: &[MessageId],
    ) -> Result<(), Error> {
        let Some(contact) = self.inner.contact_by_account(sender.as_bytes()).await? else {
            return Err(Error::unknown(*sender, crate::UnknownPeer::NotAContact));
        };
        if !self.inner.settings().await?.read_receipts {
            // Read receipts are off (crate::settings).
            return Ok(());
        }
        for chunk in ids.chunks(umbra_protocol::content::MAX_IDS_PER_RECEIPT) {
            self.inner
                .send_control(
                    &contact,
                    umbra_protocol::content::Content::ReadReceipt {
                        ids: chunk.to_vec(),
                    },
                )
                .await?;
        }
        Ok(())
    }
}
