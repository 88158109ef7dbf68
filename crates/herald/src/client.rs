//! Connecting: `ws://` and `wss://` URLs, or the client handshake over any transport.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::socket::WebSocket;
use crate::stream::MaybeTlsStream;
use herald_proto::handshake::{Accepted, ClientHandshake, ClientRequest};
use herald_proto::{HandshakeError, Role};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to a `ws://` or `wss://` URL with default settings.
///
/// ```no_run
/// # async fn run() -> herald::Result<()> {
/// let (mut ws, _accepted) = herald::connect("ws://127.0.0.1:9001/echo").await?;
/// ws.send(herald::Message::text("hello")).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As for [`ClientBuilder::connect`].
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Accepted)> {
    ClientBuilder::new(url)?.connect().await
}

/// Options for a client connection: headers, Origin, subprotocols, timeouts, TLS.
#[derive(Debug)]
pub struct ClientBuilder {
    pub(crate) request: ClientRequest,
    pub(crate) config: Config,
    connect_timeout: Duration,
    local_address: Option<std::net::IpAddr>,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<crate::tls::ClientConfig>>,
}

impl ClientBuilder {
    /// A builder for `url`.
    ///
    /// # Errors
    /// [`Error::Handshake`] with an invalid-URL error.
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self {
            request: ClientRequest::new(url)?,
            config: Config::default(),
            connect_timeout: Duration::from_secs(10),
            local_address: None,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Adds a request header (e.g. `Authorization`).
    ///
    /// # Errors
    /// [`Error::Misuse`] when the name or value is not valid in HTTP.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| herald_proto::MisuseError::InvalidHeader)?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| herald_proto::MisuseError::InvalidHeader)?;
        self.request = self.request.header(name, value);
        Ok(self)
    }

    /// Sends `Origin`.
    pub fn origin(mut self, origin: &str) -> Self {
        self.request = self.request.origin(origin);
        self
    }

    /// Offers a subprotocol, in order of preference.
    pub fn subprotocol(mut self, protocol: &str) -> Self {
        self.request = self.request.subprotocol(protocol);
        self
    }

    /// Connection settings (limits, buffers, keepalive, handshake timeout).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The longest the TCP connection may take, and then, on its own, the longest the TLS
    /// handshake of a `wss://` URL may take. Default 10 s. The WebSocket handshake after them
    /// is bounded by [`Config::handshake_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The local address the TCP connection is made from (its port is picked by the system).
    /// Default: the system's choice. A load generator gives each of its processes its own
    /// address in 127.0.0.0/8, so their connections do not share one range of ephemeral ports.
    pub fn local_address(mut self, address: std::net::IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// TLS settings for `wss://` (default: the platform's roots). See [`crate::tls`].
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, tls: std::sync::Arc<crate::tls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Opens the TCP connection (and TLS for `wss://`), then does the handshake.
    ///
    /// # Errors
    /// [`Error::Io`] when the connection fails; [`Error::Tls`]; [`Error::HandshakeTimeout`];
    /// [`Error::Handshake`] when the server refuses (with its status, headers and body) or
    /// answers wrongly.
    pub async fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, Accepted)> {
        let stream = self.open_transport(false).await?;
        self.connect_on(stream).await
    }

    /// The TCP connection, with TLS for `wss://` (offering `h2` by ALPN when `h2`).
    pub(crate) async fn open_transport(&self, h2: bool) -> Result<MaybeTlsStream> {
        let addr = (self.request.host().to_owned(), self.request.port());
        let tcp = tokio::time::timeout(self.connect_timeout, self.open_tcp(addr))
            .await
            .map_err(|_| Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        tcp.set_nodelay(true)?;
        if self.request.is_tls() {
            self.wrap_tls(tcp, h2).await
        } else {
            Ok(MaybeTlsStream::Plain(tcp))
        }
    }

    /// The TCP connection to `addr`, from [`Self::local_address`] when one is set (to the
    /// first resolved address of its family).
    async fn open_tcp(&self, addr: (String, u16)) -> std::io::Result<TcpStream> {
        let Some(local) = self.local_address else {
            return TcpStream::connect(addr).await;
        };
        let remote = tokio::net::lookup_host(addr)
            .await?
            .find(|remote| remote.is_ipv4() == local.is_ipv4())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    "the host has no address of the local address's family",
                )
            })?;
        let socket = if local.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        socket.connect(remote).await
    }

    #[cfg(feature = "tls")]
    async fn wrap_tls(&self, tcp: TcpStream, h2: bool) -> Result<MaybeTlsStream> {
        let mut config = match &self.tls {
            Some(config) => config.clone(),
            None => crate::tls::client_config(&[])?,
        };
        if h2 {
            let mut with_alpn = (*config).clone();
            with_alpn.alpn_protocols = vec![b"h2".to_vec()];
            config = std::sync::Arc::new(with_alpn);
        }
        let name =
            tokio_rustls::rustls::pki_types::ServerName::try_from(self.request.host().to_owned())
                .map_err(|e| Error::Tls(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(self.connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        Ok(MaybeTlsStream::Tls(Box::new(tls)))
    }

    #[cfg(not(feature = "tls"))]
    async fn wrap_tls(&self, _tcp: TcpStream, _h2: bool) -> Result<MaybeTlsStream> {
        Err(Error::Tls("built without the `tls` feature".into()))
    }

    /// Does the handshake over an already open transport.
    ///
    /// # Errors
    /// As for [`connect`](Self::connect), less the connection errors.
    pub async fn connect_on<S>(self, mut io: S) -> Result<(WebSocket<S>, Accepted)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut entropy = crate::socket::os_entropy();
        let mut request = self.request.clone();
        if let Some(settings) = &self.config.deflate {
            request = request.extension(herald_proto::deflate::client_offer(settings));
        }
        let (mut handshake, request) = ClientHandshake::with_limits(
            &request,
            entropy.as_mut(),
            self.config.handshake_limits.clone(),
        );
        let exchange = async {
            io.write_all(&request).await?;
            let mut buf = bytes::BytesMut::with_capacity(1024);
            loop {
                if let Some(accepted) = handshake.poll_response()? {
                    return Ok::<_, Error>(accepted);
                }
                buf.clear();
                buf.reserve(1024);
                if io.read_buf(&mut buf).await? == 0 {
                    handshake.receive_eof();
                } else {
                    handshake.receive(&buf);
                }
            }
        };
        let accepted = tokio::time::timeout(self.config.handshake_timeout, exchange)
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        let deflate = negotiated_deflate(&self.config, &accepted)?;
        let buffered = handshake.into_remaining();
        let ws = WebSocket::with_extensions(io, Role::Client, &self.config, buffered, deflate);
        Ok((ws, accepted))
    }
}

/// The permessage-deflate parameters the server's answer agreed on, over HTTP/1.1 and
/// HTTP/2 alike.
pub(crate) fn negotiated_deflate(
    config: &Config,
    accepted: &Accepted,
) -> Result<Option<herald_proto::deflate::DeflateParams>> {
    match (&config.deflate, accepted.extensions.as_slice()) {
        (_, []) => Ok(None),
        // RFC 7692 §7.1: the answer must be one the client can accept, else fail.
        (Some(settings), [answer]) => Ok(Some(
            herald_proto::deflate::negotiate_client(answer, settings)
                .map_err(HandshakeError::InvalidResponse)?,
        )),
        _ => Err(HandshakeError::InvalidResponse("unexpected extensions").into()),
    }
}
