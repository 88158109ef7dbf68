//! `herald token` prints an HS256 token whose claims the hub reads: `sub`, `exp` (now + ttl),
//! `channels`, `subscribe`, `publish`, `subs`.

use herald_hub::auth::Claims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

fn herald(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_remove("HERALD_JWT_SECRET")
        .arg("token")
        .args(args);
    command
}

fn token(command: &mut Command) -> String {
    let output: Output = command.output().expect("herald runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    stdout.trim_end().to_owned()
}

fn decode(token: &str, secret: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn token_decodes_with_the_same_secret_to_the_user_channels_and_expiry() {
    let before = now();
    let token = token(&mut herald(&[
        "--secret",
        "s3cret",
        "--user",
        "ann",
        "--channels",
        "chat:*",
        "--ttl",
        "1h",
    ]));
    let after = now();
    let claims = decode(&token, "s3cret").expect("verifies with the same secret");
    assert_eq!(claims.sub, "ann");
    assert_eq!(claims.channels, ["chat:*"]);
    assert!(claims.subscribe.is_empty() && claims.publish.is_empty());
    assert!(
        (before + 3600..=after + 3600).contains(&claims.exp),
        "exp {} is now + 1h",
        claims.exp
    );
}

#[test]
fn subscribe_and_publish_patterns_repeat_and_split_on_commas() {
    let token = token(&mut herald(&[
        "--secret",
        "k",
        "--user",
        "bob",
        "--channels",
        "a,b",
        "--subscribe",
        "news",
        "--subscribe",
        "alerts:*",
        "--publish",
        "chat:1",
        "--ttl",
        "90m",
    ]));
    let claims = decode(&token, "k").expect("verifies");
    assert_eq!(claims.channels, ["a", "b"]);
    assert_eq!(claims.subscribe, ["news", "alerts:*"]);
    assert_eq!(claims.publish, ["chat:1"]);
    assert!(claims.exp.abs_diff(now() + 90 * 60) <= 5);
    assert!(claims.subs.is_empty(), "no subs unless asked");
}

#[test]
fn subs_name_the_server_side_subscriptions_repeated_or_comma_separated() {
    let token = token(&mut herald(&[
        "--secret",
        "k",
        "--user",
        "cy",
        "--subs",
        "alerts,news",
        "--subs",
        "feed",
    ]));
    let claims = decode(&token, "k").expect("verifies");
    assert_eq!(claims.subs, ["alerts", "news", "feed"]);
}

#[test]
fn the_secret_comes_from_herald_jwt_secret_and_others_do_not_verify() {
    let token = token(herald(&["--user", "eve"]).env("HERALD_JWT_SECRET", "from-env"));
    let claims = decode(&token, "from-env").expect("verifies with the variable's secret");
    assert_eq!(claims.sub, "eve");
    assert!(
        claims.exp.abs_diff(now() + 3600) <= 5,
        "the default ttl is 1h"
    );
    assert!(decode(&token, "other").is_err());
}

#[test]
fn without_a_secret_or_with_a_bad_ttl_nothing_is_printed() {
    for args in [
        &["--user", "ann"][..],
        &["--secret", "", "--user", "ann"],
        &["--secret", "k", "--user", "ann", "--ttl", "soon"],
        &["--secret", "k", "--user", "ann", "--ttl", "0s"],
    ] {
        let output = herald(args).output().expect("herald runs");
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
