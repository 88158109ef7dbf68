//! `wss://`: with a certificate and key configured, the hub speaks TLS only.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::StreamExt;
use herald::Message;

#[tokio::test]
async fn rooms_work_over_wss_when_a_certificate_is_configured() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let dir = std::env::temp_dir().join(format!("herald-hub-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut cfg = config();
    cfg.tls.cert = Some(cert);
    cfg.tls.key = Some(key);
    let mut server = Server::start(cfg).await;

    let roots = herald::tls::certificates_from_pem(cert_pem.as_bytes()).unwrap();
    let tls = herald::tls::client_config(&roots).unwrap();
    let url = format!("wss://localhost:{}/chat?groupId=9", server.addr.port());
    let connect = || async {
        let builder = herald::ClientBuilder::new(&url).unwrap();
        builder.tls_config(tls.clone()).connect().await.unwrap().0
    };
    let mut alice = connect().await;
    let mut bob = connect().await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    alice.send(Message::text("secret")).await.unwrap();
    let got = tokio::time::timeout(WAIT, bob.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::text("secret"));

    // Plain HTTP on the TLS port gets no answer: the handshake never completes.
    let (status, _) = server.get("/healthz", "").await;
    assert_eq!(status, 0);
    server.stop().await;
    std::fs::remove_dir_all(dir).ok();
}
