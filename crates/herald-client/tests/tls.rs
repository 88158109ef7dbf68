//! `wss://`: the client speaks to a hub serving TLS, trusting its certificate through the
//! herald crate's TLS client settings.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, is_subscribed, until};
use herald_client::{Client, ClientConfig, Event, SubscribeOptions};
use herald_hub::HubConfig;

#[tokio::test]
async fn subscribe_and_publish_work_over_wss_with_a_trusted_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let dir = std::env::temp_dir().join(format!("herald-client-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut config = HubConfig::default();
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    let mut server = Server::start(config).await;

    let roots = herald::tls::certificates_from_pem(cert_pem.as_bytes()).unwrap();
    let tls = herald::tls::client_config(&roots).unwrap();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (client, mut events) = Client::connect(ClientConfig::new(url).tls(tls)).unwrap();
    client
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    until(&mut events, is_subscribed("news")).await;
    client.publish("news", &"over tls").await.unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(common::data(&seen), [r#""over tls""#]);
    client.close().await;
    server.stop().await;
    std::fs::remove_dir_all(dir).ok();
}
