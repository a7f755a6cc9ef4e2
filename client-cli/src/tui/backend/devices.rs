//! The chat's `/devices` over either backend: the account's devices as
//! `device` records, from client-core (commands/devices.rs) or from the
//! daemon's `devices` method, and the one notice line that shows them.
//!
//! Must never: show a daemon's words except through the state's sanitising
//! notice (the line built here is sanitised there), or change anything
//! (listing only; removal is `umbra devices remove`).

use serde_json::json;

use super::{call, records, Backend};
use crate::output::Record;

impl Backend {
    /// The account's devices as `device` records, or why not.
    pub async fn devices(&self) -> Result<Vec<Record>, String> {
        match self {
            Backend::Local(client) => crate::commands::devices::list(client)
                .await
                .map_err(|e| format!("{e:#}")),
            Backend::Daemon(rpc) => {
                let result = call(rpc, "devices", json!({}))
                    .await
                    .map_err(|e| format!("listing this account's devices: {e:#}"))?;
                records(&result)
                    .map(|r| serde_json::from_value(r.clone()).map_err(|e| e.to_string()))
                    .collect()
            }
        }
    }
}

/// `devices: 1 (this device), 2 (not in the device list)`, in id order.
pub fn devices_line(devices: &[Record]) -> String {
    let shown: Vec<String> = devices
        .iter()
        .filter_map(|record| match record {
            Record::Device {
                device_id,
                this_device,
                listed,
                ..
            } => {
                let mut marks = Vec::new();
                if *this_device {
                    marks.push("this device");
                }
                if !*listed {
                    marks.push("not in the device list");
                }
                Some(if marks.is_empty() {
                    device_id.to_string()
                } else {
                    format!("{device_id} ({})", marks.join(", "))
                })
            }
            _ => None,
        })
        .collect();
    if shown.is_empty() {
        "devices: none listed by the relay".to_owned()
    } else {
        format!(
            "devices: {} (umbra devices remove ID removes one)",
            shown.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn device(device_id: u32, this_device: bool, listed: bool) -> Record {
        Record::Device {
            device_id,
            created_at: OffsetDateTime::UNIX_EPOCH,
            last_seen_at: None,
            this_device,
            listed,
        }
    }

    #[test]
    fn the_line_marks_this_device_and_unlisted_ones() {
        let line = devices_line(&[
            device(1, true, true),
            device(2, false, false),
            device(3, false, true),
        ]);
        assert_eq!(
            line,
            "devices: 1 (this device), 2 (not in the device list), 3 (umbra devices remove ID \
             removes one)"
        );
        assert_eq!(devices_line(&[]), "devices: none listed by the relay");
    }

    #[test]
    fn a_daemons_device_records_read_back_as_the_command_prints_them() {
        // As `devices` answers through the daemon: `last_seen_at` absent
        // for a device that never logged in, present otherwise.
        let never: Record = serde_json::from_value(json!({
            "type": "device", "device_id": 2, "created_at": "2026-12-02T16:31:05Z",
            "this_device": false, "listed": false,
        }))
        .expect("a device record");
        assert_eq!(
            never,
            Record::Device {
                device_id: 2,
                created_at: time::macros::datetime!(2026-12-02 16:31:05 UTC),
                last_seen_at: None,
                this_device: false,
                listed: false,
            }
        );
        let seen = device(1, true, true);
        let text = serde_json::to_value(&seen).expect("json");
        assert_eq!(serde_json::from_value::<Record>(text).expect("back"), seen);
        assert_eq!(
            devices_line(&[seen, never]),
            "devices: 1 (this device), 2 (not in the device list) (umbra devices remove ID \
             removes one)"
        );
    }
}
