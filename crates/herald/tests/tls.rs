//! `wss://` with a self-signed certificate made at run time.
#![allow(clippy::unwrap_used)]

mod common;

use herald::Message;
use tokio::net::TcpListener;

#[tokio::test]
async fn wss_echo_with_a_self_signed_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let server_tls =
        herald::tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let acceptor = herald::tls::TlsAcceptor::from(server_tls);
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = acceptor.accept(tcp).await.unwrap();
                let mut ws = herald::accept(tls).await.unwrap();
                while let Some(Ok(message)) = ws.recv().await {
                    if message.is_data() {
                        ws.send(message).await.unwrap();
                    }
                }
            });
        }
    });
    let roots = herald::tls::certificates_from_pem(cert_pem.as_bytes()).unwrap();
    let (mut ws, _) = herald::ClientBuilder::new(&format!("wss://localhost:{port}/secure"))
        .unwrap()
        .tls_config(herald::tls::client_config(&roots).unwrap())
        .connect()
        .await
        .unwrap();
    ws.send(Message::text("over TLS")).await.unwrap();
    assert_eq!(common::next_data(&mut ws).await, Message::text("over TLS"));
    let big = Message::binary(vec![7u8; 1 << 20]);
    ws.send(big.clone()).await.unwrap();
    assert_eq!(common::next_data(&mut ws).await, big);
    assert!(
        ws.close(herald::CloseCode::NORMAL, "")
            .await
            .unwrap()
            .is_clean()
    );
}

#[tokio::test]
async fn wss_to_an_untrusted_certificate_fails() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let server_tls = herald::tls::server_config_from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = herald::tls::TlsAcceptor::from(server_tls).accept(tcp).await;
    });
    let result = herald::ClientBuilder::new(&format!("wss://localhost:{port}/"))
        .unwrap()
        .tls_config(herald::tls::client_config(&[]).unwrap())
        .connect()
        .await;
    assert!(matches!(result, Err(herald::Error::Io(_))), "{result:?}");
}
