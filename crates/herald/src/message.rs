//! Messages as the application sends and receives them.

use bytes::Bytes;
use herald_proto::{CloseFrame, Utf8Bytes};

/// A message, or a control frame the application chose to see or send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, shared without copying).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A Ping. Received ones are answered automatically; sending one asks for a Pong.
    Ping(Bytes),
    /// A Pong.
    Pong(Bytes),
    /// The closing handshake. Received: the peer's Close frame (`None` when the connection ended
    /// without one), always the last item. Sent: starts the close with this code and reason
    /// (`None`: 1000).
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// Whether this is a Text or Binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }
}

impl From<herald_proto::Message> for Message {
    fn from(message: herald_proto::Message) -> Self {
        match message {
            herald_proto::Message::Text(text) => Self::Text(text),
            herald_proto::Message::Binary(data) => Self::Binary(data),
        }
    }
}
