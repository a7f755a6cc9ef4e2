//! The daemon's reporting methods: `receive` (what arrived and is still
//! unreported, 1:1 and group messages alike, then `drained`) and
//! `mark_reported` (a subscriber showed these messages), with the rules
//! `umbra receive` follows on its own.
//!
//! Must never: report a message as received twice to `receive` after a
//! subscriber marked it reported, mark one reported the caller did not
//! name, or print a `sent` record for a send whose caller already got its
//! outcome.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};
use umbra_client_core::{Event, MessageId};

use super::methods::{done, timeout_param, Daemon, MethodError};
use crate::commands::receive::{earlier_messages, message_record, records_for};
use crate::exit_status::ExitStatus;
use crate::output::Record;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiveParams {
    timeout: Option<u64>,
    /// `false`: the caller calls `mark_reported` itself once it has shown
    /// the messages (what `umbra receive` does); default `true`.
    mark_reported: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkParams {
    ids: Vec<String>,
}

impl Daemon {
    /// `umbra receive`, on a connection that is already up: what arrived
    /// since the last `receive` and is still unreported, then `drained`.
    pub(super) async fn receive(&self, params: ReceiveParams) -> Result<Value, MethodError> {
        let timeout = timeout_param(params.timeout, 10)?;
        let fail = |e: umbra_client_core::Error, what: &'static str| {
            MethodError::command(&anyhow::Error::new(e).context(what), vec![])
        };
        let client = self.client();
        let events = client
            .receive_until_empty(timeout)
            .await
            .map_err(|e| fail(e, "receiving from the relay"))?;
        let unreported = client
            .unreported_messages()
            .await
            .map_err(|e| fail(e, "reading the local history"))?;
        let unreported_groups = client
            .unreported_group_messages()
            .await
            .map_err(|e| fail(e, "reading the local group history"))?;
        let mut still_unreported: HashSet<MessageId> = unreported.iter().map(|m| m.id).collect();
        still_unreported.extend(unreported_groups.iter().map(|m| m.id));
        let mut records: Vec<Record> = earlier_messages(&unreported, &events)
            .into_iter()
            .map(message_record)
            .collect();
        records.extend(
            super::groups::earlier_group_records(&client, &unreported_groups, &events).await,
        );
        let mut answered = self.answered_sends.lock().await;
        for event in events {
            match &event {
                // A subscriber (or the TUI) already showed it.
                Event::Message { id, .. } | Event::GroupMessage { id, .. }
                    if !still_unreported.contains(id) =>
                {
                    continue
                }
                Event::Sent { id, .. } | Event::SendFailed { id, .. } if answered.remove(id) => {
                    continue
                }
                _ => {}
            }
            records.extend(records_for(&client, event).await);
        }
        drop(answered);
        let count = records
            .iter()
            .filter(|r| matches!(r, Record::Message { .. }))
            .count();
        records.push(Record::Drained {
            count: u64::try_from(count).unwrap_or(u64::MAX),
        });
        // By default the daemon marks them now, before the caller has shown
        // them; a caller that must not lose one to its own crash passes
        // `mark_reported: false` and calls `mark_reported` after showing.
        if params.mark_reported.unwrap_or(true) {
            client
                .mark_reported(&unreported)
                .await
                .map_err(|e| fail(e, "recording the printed messages"))?;
            client
                .mark_group_reported(&unreported_groups)
                .await
                .map_err(|e| fail(e, "recording the printed group messages"))?;
        }
        Ok(done(&records, ExitStatus::Success))
    }

    pub(super) async fn mark_reported(&self, params: MarkParams) -> Result<Value, MethodError> {
        let wanted: HashSet<&str> = params.ids.iter().map(String::as_str).collect();
        let fail = |e: umbra_client_core::Error| {
            MethodError::command(
                &anyhow::Error::new(e).context("marking messages reported"),
                vec![],
            )
        };
        let client = self.client();
        let unreported = client.unreported_messages().await.map_err(fail)?;
        let chosen: Vec<_> = unreported
            .into_iter()
            .filter(|m| wanted.contains(m.id.to_hex().as_str()))
            .collect();
        client.mark_reported(&chosen).await.map_err(fail)?;
        // Group message ids are marked the same way (`receive --follow`
        // marks whatever it printed).
        let chosen_groups: Vec<_> = client
            .unreported_group_messages()
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|m| wanted.contains(m.id.to_hex().as_str()))
            .collect();
        client
            .mark_group_reported(&chosen_groups)
            .await
            .map_err(fail)?;
        Ok(json!({"marked": chosen.len() + chosen_groups.len()}))
    }
}
