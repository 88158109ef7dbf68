//! The merge, in process: explicit variable maps instead of the process environment.

use super::table::SETTINGS;
use super::*;
use clap::{Args as _, CommandFactory as _, FromArgMatches as _};
use herald_hub::config::{
    AdminConfig, ApiConfig, AuthConfig, CommandHookConfig, ConnectHookConfig, HeartbeatConfig,
    HistoryConfig, HooksConfig, LimitsConfig, OriginConfig, PlainConfig, PresenceConfig,
    PusherConfig, RedisConfig, TlsConfig, UsersConfig, WebhooksConfig,
};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

fn flags(args: &[&str]) -> Result<HubFlags, clap::Error> {
    let command = HubFlags::augment_args(clap::Command::new("serve").no_binary_name(true));
    HubFlags::from_arg_matches(&command.try_get_matches_from(args)?)
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(Path::new("herald.toml"), text.to_owned()).unwrap()
}

fn merge(
    file: Option<&ConfigFile>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Effective, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    resolve(file, &flags(args).unwrap(), &|name| env.get(name).cloned())
}

fn source(effective: &Effective, key: &str) -> Source {
    let i = SETTINGS.iter().position(|s| s.key == key).unwrap();
    effective.sources[i]
}

const FILE: &str = r#"
listen = "127.0.0.1:1"
deflate = true

[history]
size = 5
ttl = "2m"
"#;

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let file = file(FILE);
    let env = [
        ("HERALD_LISTEN", "127.0.0.1:2"),
        ("HERALD_HISTORY_SIZE", "7"),
        ("HERALD_DEFLATE", "true"),
    ];
    let e = merge(
        Some(&file),
        &["--listen", "127.0.0.1:3", "--deflate=false"],
        &env,
    )
    .unwrap();
    assert_eq!(e.config.listen.port(), 3, "flag over env and file");
    assert_eq!(source(&e, "listen"), Source::Flag);
    assert!(
        !e.config.deflate,
        "a boolean flag overrides a true in the file"
    );
    assert_eq!(e.config.history.size, 7, "env over file");
    assert_eq!(source(&e, "history.size"), Source::Env);
    assert_eq!(
        e.config.history.ttl,
        Duration::from_secs(120),
        "file over default"
    );
    assert_eq!(source(&e, "history.ttl"), Source::File);
    assert_eq!(e.config.limits.max_connections, 20_000, "default");
    assert_eq!(source(&e, "limits.max_connections"), Source::Default);
}

#[test]
fn env_beats_file_without_a_flag_and_file_beats_default_without_either() {
    let file = file(FILE);
    let e = merge(Some(&file), &[], &[("HERALD_LISTEN", "127.0.0.1:2")]).unwrap();
    assert_eq!(e.config.listen.port(), 2);
    assert_eq!(e.config.history.size, 5);
    let e = merge(None, &[], &[]).unwrap();
    assert_eq!(
        format!("{:?}", e.config),
        format!("{:?}", HubConfig::default())
    );
    assert!(e.sources.iter().all(|s| *s == Source::Default));
}

#[test]
fn lists_come_comma_separated_from_env_and_repeated_from_flags() {
    let env = [(
        "HERALD_ALLOWED_ORIGIN",
        "https://a.example, https://b.example",
    )];
    let e = merge(None, &[], &env).unwrap();
    assert_eq!(
        e.config.origins.allowed,
        ["https://a.example", "https://b.example"]
    );
    let args = [
        "--allowed-origin",
        "https://c.example",
        "--allowed-origin=*.d.example",
    ];
    let e = merge(None, &args, &env).unwrap();
    assert_eq!(
        e.config.origins.allowed,
        ["https://c.example", "*.d.example"]
    );
    let e = merge(
        None,
        &[
            "--plain-route",
            "/chat?groupId&kind",
            "--plain-route=/lobby",
        ],
        &[],
    )
    .unwrap();
    let routes: Vec<_> = e
        .config
        .plain
        .routes
        .iter()
        .map(|r| (&r.path, &r.params))
        .collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(
        routes[0],
        (
            &"/chat".to_owned(),
            &vec!["groupId".to_owned(), "kind".to_owned()]
        )
    );
    assert!(routes[1].1.is_empty());
}

#[test]
fn empty_values_unset_optional_settings_and_empty_lists() {
    let file = file("[auth]\nhs256_secret = \"s3\"\nallow_anonymous = true\n");
    let env = [
        ("HERALD_JWT_SECRET", ""),
        ("HERALD_ALLOW_ANONYMOUS", ""),
        ("HERALD_ANONYMOUS_SUBSCRIBE", ""),
    ];
    let e = merge(Some(&file), &[], &env).unwrap();
    assert_eq!(e.config.auth.hs256_secret, None);
    assert_eq!(e.config.auth.allow_anonymous, None);
    assert_eq!(e.config.auth.anonymous_subscribe, Some(Vec::new()));
    assert_eq!(
        e.config.auth.anonymous_publish, None,
        "unset: the default for the keys configured"
    );
}

#[test]
fn anonymous_patterns_default_to_every_channel_without_a_key_and_none_with_one() {
    let e = merge(None, &[], &[]).unwrap();
    assert_eq!(e.config.auth.anonymous_subscribe_patterns(), ["*"]);
    assert_eq!(e.config.auth.anonymous_publish_patterns(), ["*"]);
    let e = merge(None, &["--jwt-secret=s3", "--allow-anonymous"], &[]).unwrap();
    assert!(e.config.auth.anonymous_subscribe_patterns().is_empty());
    assert!(!e.config.auth.anonymous_may_publish());
    let args = ["--jwt-secret=s3", "--anonymous-publish=public:*"];
    let e = merge(None, &args, &[]).unwrap();
    assert_eq!(e.config.auth.anonymous_publish_patterns(), ["public:*"]);
    let file = file("[auth]\nanonymous_subscribe = []\n");
    let e = merge(Some(&file), &[], &[]).unwrap();
    assert!(e.config.auth.anonymous_subscribe_patterns().is_empty());
}

#[test]
fn booleans_take_an_attached_value_or_none() {
    assert!(merge(None, &["--deflate"], &[]).unwrap().config.deflate);
    assert!(!merge(None, &["--deflate=no"], &[]).unwrap().config.deflate);
    assert!(
        flags(&["--deflate", "false"]).is_err(),
        "a detached value is not taken"
    );
}

#[test]
fn bad_values_name_the_flag_or_variable_that_set_them() {
    let err = merge(None, &[], &[("HERALD_HISTORY_TTL", "5 parsecs")]).unwrap_err();
    assert!(err.to_string().starts_with("HERALD_HISTORY_TTL: "), "{err}");
    let err = flags(&["--max-connections", "many"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--max-connections"), "{err}");
}

#[test]
fn rules_between_keys_point_at_whoever_set_the_key() {
    let cert_only = file("# tls\n\n[tls]\ncert = \"cert.pem\"\n");
    let err = merge(Some(&cert_only), &[], &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("herald.toml:4:1: tls.cert is set without tls.key"),
        "{err}"
    );
    let err = merge(None, &["--tls-cert", "c.pem"], &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("--tls-cert: "), "{err}");
    let err = merge(None, &[], &[("HERALD_BROKER", "mongodb://x")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("HERALD_BROKER: "), "{err}");
    assert!(merge(Some(&cert_only), &[], &[("HERALD_TLS_KEY", "key.pem")]).is_ok());
}

#[test]
fn every_setting_writes_the_field_it_reads() {
    let defaults = HubConfig::default();
    for setting in SETTINGS {
        let flag = format!("--{}={}", setting.flag, setting.example);
        let mut args = vec![flag.as_str()];
        // Half a TLS pair is refused; give the other half.
        match setting.key {
            "tls.cert" => args.push("--tls-key=key.pem"),
            "tls.key" => args.push("--tls-cert=cert.pem"),
            // Webhooks without a secret are refused.
            "webhooks.url" => args.push("--webhook-secret=s3"),
            // The admin page needs its password.
            "admin.enabled" => args.push("--admin-password=twelve-bytes-or-more"),
            _ => {}
        }
        let e = merge(None, &args, &[]).unwrap_or_else(|e| panic!("{}: {e}", setting.key));
        let expected = setting.kind.parse(&[setting.example.to_owned()]).unwrap();
        assert_eq!((setting.get)(&e.config), expected, "{}", setting.key);
        assert_ne!(
            (setting.get)(&defaults),
            expected,
            "{}: example is the default",
            setting.key
        );
    }
}

#[test]
fn the_table_has_one_row_per_config_field() {
    // Naming every field: a field added to HubConfig fails to compile here until it has a row.
    let HubConfig {
        listen: _,
        broker: _,
        tls: TlsConfig { cert: _, key: _ },
        origins:
            OriginConfig {
                allowed: _,
                allow_same_host: _,
                allow_missing: _,
                public_hosts: _,
            },
        auth:
            AuthConfig {
                hs256_secret: _,
                rs256_public_key: _,
                es256_public_key: _,
                allow_anonymous: _,
                anonymous_subscribe: _,
                anonymous_publish: _,
                cookie: _,
                query_param: _,
                issuer: _,
                audience: _,
                refresh_notice: _,
                jwks_url: _,
                jwks_timeout: _,
                jwks_refetch_interval: _,
                jwks_max_age: _,
            },
        api: ApiConfig { key: _ },
        admin:
            AdminConfig {
                enabled: _,
                user: _,
                password: _,
            },
        hooks:
            HooksConfig {
                connect:
                    ConnectHookConfig {
                        url: _,
                        headers: _,
                        timeout: _,
                        max_in_flight: _,
                        breaker_failures: _,
                        breaker_cooldown: _,
                        fail_open: _,
                    },
                subscribe:
                    CommandHookConfig {
                        url: _,
                        timeout: _,
                        max_in_flight: _,
                        breaker_failures: _,
                        breaker_cooldown: _,
                        fail_open: _,
                        max_response: _,
                    },
                publish:
                    CommandHookConfig {
                        url: _,
                        timeout: _,
                        max_in_flight: _,
                        breaker_failures: _,
                        breaker_cooldown: _,
                        fail_open: _,
                        max_response: _,
                    },
                rpc:
                    CommandHookConfig {
                        url: _,
                        timeout: _,
                        max_in_flight: _,
                        breaker_failures: _,
                        breaker_cooldown: _,
                        fail_open: _,
                        max_response: _,
                    },
                refresh:
                    CommandHookConfig {
                        url: _,
                        timeout: _,
                        max_in_flight: _,
                        breaker_failures: _,
                        breaker_cooldown: _,
                        fail_open: _,
                        max_response: _,
                    },
            },
        webhooks:
            WebhooksConfig {
                url: _,
                secret: _,
                events: _,
                grace: _,
                node_expiry: _,
                max_queue: _,
                batch: _,
                timeout: _,
                max_backoff: _,
            },
        history:
            HistoryConfig {
                size: _,
                ttl: _,
                max_channels: _,
                max_bytes: _,
            },
        limits:
            LimitsConfig {
                max_connections: _,
                max_connections_per_ip: _,
                max_streams_per_connection: _,
                max_connections_per_user: _,
                max_message_size: _,
                max_subscriptions: _,
                publish_rate: _,
                publish_burst: _,
                queue_size: _,
                handshake_timeout: _,
                idle_timeout: _,
                write_timeout: _,
                command_rate: _,
                command_burst: _,
                max_reply_size: _,
                request_timeout: _,
                close_timeout: _,
                refusal_timeout: _,
                poll_timeout: _,
                http2_idle_timeout: _,
                http2_max_pending_resets: _,
            },
        heartbeat: HeartbeatConfig {
            interval: _,
            timeout: _,
        },
        plain: PlainConfig { routes: _, echo: _ },
        presence:
            PresenceConfig {
                enabled: _,
                join_leave: _,
                join_leave_rate: _,
            },
        redis:
            RedisConfig {
                op_timeout: _,
                connect_timeout: _,
                max_reconnect_delay: _,
                check_every: _,
                member_lifetime: _,
                refresh_every: _,
            },
        users: UsersConfig { personal_prefix: _ },
        // TOML-only tables: `herald config default` shows a commented example instead.
        namespaces: _,
        pusher:
            PusherConfig {
                apps: _,
                activity_timeout: _,
                timestamp_window: _,
            },
        deflate: _,
        http2: _,
        shutdown_timeout: _,
        shutdown_http_timeout: _,
    } = HubConfig::default();
    const FIELDS: usize = 116;
    assert_eq!(SETTINGS.len(), FIELDS);
    let keys: std::collections::HashSet<_> = SETTINGS.iter().map(|s| s.key).collect();
    let flags: std::collections::HashSet<_> = SETTINGS.iter().map(|s| s.flag).collect();
    assert_eq!(
        (keys.len(), flags.len()),
        (FIELDS, FIELDS),
        "keys and flags are unique"
    );
}

#[test]
fn default_file_parses_back_to_the_default_config() {
    let text = render::default_file();
    let parsed = ConfigFile::parse(Path::new("default.toml"), text).unwrap();
    parsed.check().unwrap();
    let e = resolve(Some(&parsed), &HubFlags::default(), &|_| None).unwrap();
    assert_eq!(
        format!("{:?}", e.config),
        format!("{:?}", HubConfig::default())
    );
    // Every key is written out, the unset ones commented.
    let text = render::default_file();
    for setting in SETTINGS {
        let line = format!("{} = ", setting.leaf());
        assert!(text.contains(&line), "{}", setting.key);
        assert!(text.contains(&format!("# --{}, {}", setting.flag, setting.env())));
    }
}

#[test]
fn effective_file_parses_back_and_redacts_secrets() {
    let e = merge(
        None,
        &["--jwt-secret", "hunter2", "--history-size", "9"],
        &[],
    )
    .unwrap();
    let text = effective_file(&e);
    assert!(!text.contains("hunter2"), "{text}");
    let back = ConfigFile::parse(Path::new("effective.toml"), text).unwrap();
    let back = resolve(Some(&back), &HubFlags::default(), &|_| None).unwrap();
    assert_eq!(back.config.history.size, 9);
    assert_eq!(back.config.auth.hs256_secret.as_deref(), Some("<redacted>"));
}

#[test]
fn help_lists_every_flag_with_its_variable_and_default() {
    crate::Cli::command().debug_assert();
    let mut command = HubFlags::augment_args(clap::Command::new("serve"));
    let help = command.render_long_help().to_string();
    for setting in SETTINGS {
        assert!(
            help.contains(&format!("--{}", setting.flag)),
            "{}",
            setting.flag
        );
        assert!(
            help.contains(&format!("[env: {}]", setting.env())),
            "{}",
            setting.flag
        );
    }
    assert_eq!(help.matches("[default: ").count(), SETTINGS.len());
    assert!(help.contains("[default: 127.0.0.1:8080]"));
}

#[test]
fn the_pusher_app_example_uncommented_is_an_app_at_pushers_limits() {
    let text = render::default_file();
    let start = text.find("# [[pusher.apps]]").unwrap();
    let example: String = text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim_start())
        .map(|l| format!("{l}\n"))
        .collect();
    let config: HubConfig = toml::from_str(&format!("[pusher]\n{example}")).unwrap();
    let app = &config.pusher.apps[0];
    assert_eq!(app.id, "1001");
    assert_eq!(app.limits, herald_hub::config::PusherLimits::default());
}
