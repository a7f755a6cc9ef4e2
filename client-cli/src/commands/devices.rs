//! `devices`, `devices remove ID` and `devices add-to-list ID`: list the account's devices as the
//! relay knows them (each marked if it is this one and if the account's
//! signed device list names it), or remove another device and publish the
//! list without it, or publish it with a current device it lacks (a
//! link whose publication failed) (client-core's devices manager). The daemon's `devices`
//! and `devices.remove` run the same code (daemon/devices.rs), and the
//! chat's `/devices` prints the same lines.
//!
//! Must never: report a removal that did not happen, or ask the relay to
//! remove this device (client-core refuses it first).

use anyhow::Context as _;
use time::OffsetDateTime;
use umbra_client_core::{Client, DeviceInfo};

use crate::cli::DevicesCommand;
use crate::exit_status::ExitStatus;
use crate::output::{Printer, Record};
use crate::session::Session;

pub async fn run(session: &Session, change: Option<DevicesCommand>) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = apply(&client, change, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Does `change` (if any) and prints its records: one `device` per
/// current device for the listing, one `done` (`"device_remove"`) for a
/// removal.
pub(crate) async fn apply<W: std::io::Write>(
    client: &Client,
    change: Option<DevicesCommand>,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    match change {
        None => {
            for device in list(client).await? {
                printer.emit(&device)?;
            }
        }
        Some(DevicesCommand::Remove { id }) => {
            client
                .remove_device(id)
                .await
                .with_context(|| format!("removing device {id}"))?;
            printer.emit(&Record::Done {
                action: "device_remove".to_owned(),
                detail: format!(
                    "removed device {id}: its session on the relay ended and the account's device \
                     list no longer names it"
                ),
                group: None,
            })?;
        }
        Some(DevicesCommand::AddToList { id }) => {
            client
                .list_device(id)
                .await
                .with_context(|| format!("adding device {id} to the account's device list"))?;
            printer.emit(&Record::Done {
                action: "device_list".to_owned(),
                detail: format!("the account's device list names device {id}"),
                group: None,
            })?;
        }
    }
    Ok(ExitStatus::Success)
}

/// The account's devices as `device` records (also the chat's `/devices`).
pub(crate) async fn list(client: &Client) -> anyhow::Result<Vec<Record>> {
    let devices = client
        .devices()
        .await
        .context("listing this account's devices")?;
    Ok(devices.into_iter().map(record).collect())
}

/// One `device` record (also `login`'s list after a restore).
pub(crate) fn record(device: DeviceInfo) -> Record {
    let at = |secs: u64| {
        i64::try_from(secs)
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    Record::Device {
        device_id: device.device_id,
        created_at: at(device.created_at),
        last_seen_at: (device.last_seen_at != 0).then(|| at(device.last_seen_at)),
        this_device: device.this_device,
        listed: device.listed,
    }
}

/// The daemon's `devices.remove` and `devices.add_to_list` params.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveParams {
    pub(crate) id: u32,
}
