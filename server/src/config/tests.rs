//! The configuration's tests: defaults as `--help` states them, precedence,
//! refusals, the example file, URL redaction.

use super::*;

fn parse(args: &[&str]) -> Cli {
    let mut argv = vec!["umbra-relay"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("arguments parse")
}

/// `--help` states each default by hand (the flags are `Option`s so a
/// file can fill them); this keeps the text and the real defaults equal.
#[test]
fn help_states_the_real_defaults() {
    use clap::CommandFactory as _;
    let help = Cli::command().render_long_help().to_string();
    let d = Limits::default();
    let secs = |t: Duration| t.as_secs().to_string();
    let days = |t: Duration| (t.as_secs() / 86_400).to_string();
    let expected = [
        ("--listen", DEFAULT_LISTEN.to_string()),
        ("--data-dir", DEFAULT_DATA_DIR.to_string()),
        ("--log-level", "info".to_string()),
        ("--max-envelope-bytes", d.max_envelope_bytes.to_string()),
        ("--max-frame-bytes", d.max_frame_bytes.to_string()),
        ("--max-queue-len", d.max_queue_len.to_string()),
        ("--message-ttl-days", days(d.message_ttl)),
        ("--blob-max-bytes", d.blob_max_bytes.to_string()),
        ("--blob-ttl-days", days(d.blob_ttl)),
        (
            "--max-blobs-per-account",
            d.max_blobs_per_account.to_string(),
        ),
        (
            "--max-blob-bytes-per-account",
            d.max_blob_bytes_per_account.to_string(),
        ),
        (
            "--sender-bytes-per-hour",
            d.sender_bytes_per_hour.to_string(),
        ),
        ("--name-quarantine-days", d.name_quarantine_days.to_string()),
        ("--token-ttl-days", days(d.token_ttl)),
        (
            "--auth-per-ip-per-minute",
            d.auth_per_ip_per_minute.to_string(),
        ),
        (
            "--auth-per-username-per-minute",
            d.auth_per_username_per_minute.to_string(),
        ),
        (
            "--logins-per-username-per-minute",
            d.logins_per_username_per_minute.to_string(),
        ),
        (
            "--bundle-fetches-per-minute",
            d.bundle_fetches_per_minute.to_string(),
        ),
        (
            "--username-resolves-per-minute",
            d.username_resolves_per_minute.to_string(),
        ),
        ("--kt-proofs-per-minute", d.kt_proofs_per_minute.to_string()),
        (
            "--max-prekeys-per-device",
            d.max_prekeys_per_device.to_string(),
        ),
        ("--prekey-low-water", d.prekey_low_water.to_string()),
        ("--idle-timeout-secs", secs(d.idle_timeout)),
        ("--ping-interval-secs", secs(d.ping_interval)),
        ("--auth-timeout-secs", secs(d.auth_timeout)),
        ("--write-stall-timeout-secs", secs(d.write_stall_timeout)),
        ("--expiry-interval-secs", secs(d.expiry_interval)),
        ("--max-connections", d.max_connections.to_string()),
        (
            "--max-connections-per-address",
            d.max_connections_per_address.to_string(),
        ),
        ("--header-read-timeout-secs", secs(d.header_read_timeout)),
        (
            "--request-deadline-ms",
            d.request_deadline.as_millis().to_string(),
        ),
        ("--blob-idle-timeout-secs", secs(d.blob_idle_timeout)),
        (
            "--blob-min-bytes-per-sec",
            d.blob_min_bytes_per_sec.to_string(),
        ),
        ("--ephemeral-per-minute", d.ephemeral_per_minute.to_string()),
        (
            "--link-fetches-per-minute",
            d.link_fetches_per_minute.to_string(),
        ),
        (
            "--websocket-buffer-bytes",
            d.websocket_buffer_bytes.to_string(),
        ),
    ];
    for (flag, value) in expected {
        // The flag's block: its line and the description lines under
        // it, up to the next flag.
        let mut lines = help
            .lines()
            .skip_while(|l| !l.contains(&format!("{flag} <")));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("{flag} not in --help"));
        let block: Vec<&str> = std::iter::once(first)
            .chain(lines.take_while(|l| !l.trim_start().starts_with('-')))
            .collect();
        let block = block.join("\n");
        assert!(
            block.contains(&format!("[default: {value}]")),
            "{flag}: --help does not say [default: {value}]: {block:?}"
        );
    }
}

#[test]
fn defaults_are_loopback_sqlite_thirty_days() {
    let cfg = RelayConfig::resolve(Settings::default()).expect("defaults are valid");
    assert_eq!(
        cfg.listen,
        "127.0.0.1:7878".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        cfg.store,
        StoreLocation::Sqlite(PathBuf::from(DEFAULT_DATA_DIR))
    );
    assert_eq!(cfg.limits.message_ttl, Duration::from_secs(30 * 86_400));
    assert!(cfg.tls.is_none());
    assert!(cfg.is_loopback());
}

#[test]
fn flags_parse_and_migrate_subcommand() {
    let cli = parse(&[
        "--listen",
        "0.0.0.0:9000",
        "--data-dir",
        "/tmp/x",
        "--message-ttl-days",
        "7",
        "--trusted-proxy",
        "10.0.0.0/8",
        "--trusted-proxy",
        "::1",
        "migrate",
    ]);
    assert_eq!(cli.command, Some(Command::Migrate));
    let cfg = RelayConfig::resolve(cli.settings).expect("valid");
    let proxies = &cfg.limits.trusted_proxies;
    assert!(
        proxies.contains("10.9.8.7".parse().unwrap()) && proxies.contains("::1".parse().unwrap())
    );
    assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
    assert_eq!(cfg.listen.port(), 9000);
    assert!(!cfg.is_loopback());
    assert_eq!(cfg.limits.message_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(cfg.store, StoreLocation::Sqlite(PathBuf::from("/tmp/x")));
}

#[test]
fn store_flags_also_work_after_the_subcommand() {
    let cli = parse(&["migrate", "--data-dir", "/tmp/y"]);
    assert_eq!(cli.command, Some(Command::Migrate));
    let cfg = RelayConfig::resolve(cli.settings).expect("valid");
    assert_eq!(cfg.data_dir, PathBuf::from("/tmp/y"));
}

#[test]
fn tls_flags_must_come_together() {
    let argv = ["umbra-relay", "--tls-cert", "c.pem"];
    assert!(Cli::try_parse_from(argv).is_err());
    let cli = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
    let cfg = RelayConfig::resolve(cli.settings).expect("valid");
    assert_eq!(
        cfg.tls,
        Some(TlsFiles {
            cert: PathBuf::from("c.pem"),
            key: PathBuf::from("k.pem")
        })
    );
}

#[test]
fn file_values_apply_and_flags_override_them() {
    let file = RelayConfig::parse_toml(
        "listen = \"127.0.0.1:1234\"\nmax_queue_len = 55\ntoken_ttl_days = 3\n\
         database_url = \"postgres://u:pw@db/umbra\"\n",
    )
    .expect("valid toml");
    let cli = parse(&["--max-queue-len", "77"]).settings;
    let cfg = RelayConfig::resolve(cli.or(file)).expect("valid");
    assert_eq!(cfg.listen.port(), 1234);
    assert_eq!(cfg.limits.max_queue_len, 77, "the flag wins over the file");
    assert_eq!(cfg.limits.token_ttl, Duration::from_secs(3 * 86_400));
    assert_eq!(
        cfg.store,
        StoreLocation::Postgres("postgres://u:pw@db/umbra".into())
    );
    assert_eq!(
        cfg.store_description(),
        "postgres postgres://u:***@db/umbra"
    );
    assert!(
        !format!("{cfg:?}").contains("pw"),
        "Debug must not show the password"
    );
}

#[test]
fn unknown_file_keys_and_bad_values_are_rejected() {
    assert!(RelayConfig::parse_toml("listen_addr = \"x\"").is_err());
    assert!(RelayConfig::parse_toml("max_queue_len = \"many\"").is_err());
    let zero_ttl = Settings {
        message_ttl_days: Some(0),
        ..Settings::default()
    };
    assert!(matches!(
        RelayConfig::resolve(zero_ttl),
        Err(ConfigError::Invalid {
            key: "message_ttl_days",
            ..
        })
    ));
    let frame_too_small = Settings {
        max_frame_bytes: Some(1024),
        ..Settings::default()
    };
    assert!(matches!(
        RelayConfig::resolve(frame_too_small),
        Err(ConfigError::Invalid {
            key: "max_frame_bytes",
            ..
        })
    ));
    let too_big = Settings {
        max_envelope_bytes: Some(wire::MAX_ENVELOPE_BYTES + 1),
        ..Settings::default()
    };
    assert!(matches!(
        RelayConfig::resolve(too_big),
        Err(ConfigError::Invalid {
            key: "max_envelope_bytes",
            ..
        })
    ));
    let bad_proxy = Settings {
        trusted_proxies: Some(vec!["10.0.0.0/8".into(), "proxy.internal".into()]),
        ..Settings::default()
    };
    assert!(matches!(
        RelayConfig::resolve(bad_proxy),
        Err(ConfigError::Invalid {
            key: "trusted_proxies",
            ..
        })
    ));
    let mysql = Settings {
        database_url: Some("mysql://x".into()),
        ..Settings::default()
    };
    assert!(matches!(
        RelayConfig::resolve(mysql),
        Err(ConfigError::UnsupportedDatabase)
    ));
}

const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/umbra-relay.example.toml");

/// The relay's push threshold and the clients' own top-up threshold are
/// one number by default (PROTOCOL.md 11.8, 12.6).
#[test]
fn default_low_water_is_the_clients_top_up_threshold() {
    assert_eq!(
        Limits::default().prekey_low_water as usize,
        umbra_wire::prekeys::ONE_TIME_PREKEY_LOW_WATER
    );
}

#[test]
fn example_config_parses_and_matches_the_defaults() {
    let cli = parse(&["--config", EXAMPLE_CONFIG]).settings;
    let example = RelayConfig::load(cli).expect("the shipped example config loads");
    let defaults = RelayConfig::resolve(Settings::default()).expect("defaults are valid");
    assert_eq!(example.listen, defaults.listen);
    assert_eq!(example.data_dir, defaults.data_dir);
    assert_eq!(example.store, defaults.store);
    assert_eq!(example.tls, defaults.tls);
    assert_eq!(example.log_level, defaults.log_level);
    assert_eq!(
        example.limits, defaults.limits,
        "every value in the example is the built-in default"
    );
}

#[test]
fn example_config_names_every_key_and_its_commented_examples_are_valid() {
    use clap::CommandFactory;
    let text = std::fs::read_to_string(EXAMPLE_CONFIG).expect("example config is readable");
    let command = Cli::command();
    let keys: Vec<String> = command
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .filter(|id| !matches!(id.as_str(), "config" | "help" | "version"))
        .collect();
    assert!(keys.len() > 20, "clap lists the settings: {keys:?}");
    for key in &keys {
        let listed = text.lines().any(|line| {
            let line = line.trim_start_matches("# ");
            line.starts_with(&format!("{key} = "))
        });
        assert!(listed, "umbra-relay.example.toml does not mention `{key}`");
    }
    // Uncommenting every commented-out key must still give a valid file.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if keys.iter().any(|k| rest.starts_with(&format!("{k} = "))) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let settings = RelayConfig::parse_toml(&uncommented).expect("uncommented example parses");
    assert!(settings.database_url.is_some() && settings.tls_cert.is_some());
    let cfg = RelayConfig::resolve(settings).expect("uncommented example is valid");
    assert!(matches!(cfg.store, StoreLocation::Postgres(_)));
    assert!(cfg.tls.is_some());
}

#[test]
fn redaction_hides_password_and_query() {
    assert_eq!(
        redact_url("postgres://a:b@h:5432/d?password=z"),
        "postgres://a:***@h:5432/d"
    );
    assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
}

#[test]
fn a_timeout_too_large_for_the_clock_is_refused_not_a_panic_later() {
    for key in [
        "idle_timeout_secs",
        "auth_timeout_secs",
        "write_stall_timeout_secs",
        "ping_interval_secs",
    ] {
        let settings =
            RelayConfig::parse_toml(&format!("{key} = 9223372036854775807")).expect("toml parses");
        match RelayConfig::resolve(settings) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: expected Invalid, got {other:?}"),
        }
    }
}
