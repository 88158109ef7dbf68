//! Where the connection's token comes from: nowhere, a fixed string, or the application.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The token a connection presents (as `Authorization: Bearer`).
#[derive(Clone, Default)]
pub enum Token {
    /// No token: the server's anonymous policy applies.
    #[default]
    None,
    /// The same token at every connect. When it expires the server closes with 4501 and the
    /// client stays down.
    Static(String),
    /// Asked for a fresh token at every connect, when the server pushes `refresh`, and after a
    /// 4501 close (then the client reconnects with the new one).
    Provider(TokenProvider),
}

impl Token {
    /// Whether a fresh token can be had after the current one expired.
    pub(crate) fn renews(&self) -> bool {
        matches!(self, Self::Provider(_))
    }

    /// The token for the next connection.
    pub(crate) async fn get(&self) -> Result<Option<String>, TokenError> {
        match self {
            Self::None => Ok(None),
            Self::Static(token) => Ok(Some(token.clone())),
            Self::Provider(provider) => provider.fetch().await.map(Some),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token is a credential: it is never printed.
        f.write_str(match self {
            Self::None => "Token::None",
            Self::Static(_) => "Token::Static(..)",
            Self::Provider(_) => "Token::Provider(..)",
        })
    }
}

type Fetch =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send>> + Send + Sync;

/// An async callback that returns a fresh token, e.g. from the application's backend.
#[derive(Clone)]
pub struct TokenProvider(Arc<Fetch>);

impl TokenProvider {
    /// A provider calling `fetch` for each token.
    ///
    /// ```
    /// use herald_client::{Token, TokenError, TokenProvider};
    ///
    /// let token = Token::Provider(TokenProvider::new(|| async {
    ///     Ok::<_, TokenError>("eyJhbGciOi...".to_owned())
    /// }));
    /// # let _ = token;
    /// ```
    pub fn new<F, Fut>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, TokenError>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(fetch())))
    }

    /// Asks for a token.
    pub(crate) async fn fetch(&self) -> Result<String, TokenError> {
        (self.0)().await
    }
}

/// The provider could not give a token. The client tries again at its next reconnect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

impl TokenError {
    /// An error with this explanation.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}
