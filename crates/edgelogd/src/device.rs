//! Resolving `[device]`: the facts added to every record, read from the machine where the
//! config says `"auto"`.

use crate::config::DeviceConfig;
use crate::event::Device;

/// Where the firmware publishes the serial number.
const DMI_SERIAL: &str = "/sys/class/dmi/id/product_serial";

/// Values firmware puts in the serial field when there is no serial.
fn placeholder(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.is_empty()
        || [
            "not specified",
            "to be filled by o.e.m.",
            "default string",
            "none",
            "0",
        ]
        .contains(&s.as_str())
}

fn auto_serial() -> Option<String> {
    // Unreadable without root on most machines: then there is no serial, not an error.
    let s = std::fs::read_to_string(DMI_SERIAL).ok()?;
    let s = s.trim();
    (!placeholder(s)).then(|| s.to_owned())
}

fn auto_hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
}

/// The device facts for `cfg`.
pub(crate) fn resolve(cfg: &DeviceConfig) -> Device {
    let pick = |v: &Option<String>, auto: fn() -> Option<String>| match v.as_deref() {
        Some("auto") => auto(),
        Some("") | None => None,
        Some(s) => Some(s.to_owned()),
    };
    let serial = pick(&cfg.serial_number, auto_serial);
    let mut fields = Vec::new();
    for (name, value) in [
        ("serial_number", serial),
        ("element_name", cfg.element_name.clone()),
        ("element_role", cfg.element_role.clone()),
        ("pod_name", cfg.pod_name.clone()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            fields.push((name, v));
        }
    }
    Device {
        hostname: pick(&cfg.hostname, auto_hostname),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_win_and_auto_reads_the_machine() {
        let d = resolve(&DeviceConfig {
            serial_number: Some("SN-1".into()),
            hostname: Some("auto".into()),
            element_name: Some("leaf-01".into()),
            element_role: None,
            pod_name: Some(String::new()),
        });
        assert_eq!(
            d.fields,
            [
                ("serial_number", "SN-1".into()),
                ("element_name", "leaf-01".into())
            ]
        );
        assert_eq!(d.hostname, auto_hostname());
        assert!(d.hostname.is_some());
        assert!(placeholder("To Be Filled By O.E.M."));
    }
}
