//! How a `herald connect` run ended, as a process exit status.

use herald::proto::HandshakeError;
use herald::{Closed, Error, Initiator};
use std::process::ExitCode;

/// The exit statuses of `herald connect`, shown in its long help.
pub(crate) const TABLE: &str = "\
Exit status:
  0  closed cleanly: both sides sent a Close frame (after ours, or after the server's with
     code 1000, 1001 or no code)
  1  local error: unreadable --ca file, standard input or output failed
  2  usage error: invalid option, URL, header or --close code
  3  handshake refused: the server answered with another status than 101 (the status line
     and the body are printed to standard error), or with --hub did not accept herald.v1
  4  connection failed: DNS, TCP or TLS, the server closed during the handshake, or
     --timeout passed before the handshake completed
  5  protocol error: the server broke RFC 6455 (an invalid frame or 101 response)
  6  abnormal close: the connection ended without a closing handshake (code 1006),
     including no answer to our Close within --timeout; with --hub also no reply to the
     command within --timeout
  7  the server closed with another code than 1000 or 1001 (code and reason on standard
     error)
  8  with --hub: the hub answered the command with an error (code and message on standard
     error)";

/// One row of [`TABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Clean = 0,
    Local = 1,
    Usage = 2,
    Refused = 3,
    ConnectFailed = 4,
    Protocol = 5,
    Abnormal = 6,
    ServerError = 7,
    HubError = 8,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        // Every discriminant fits in a byte.
        ExitCode::from(exit as u8)
    }
}

impl Exit {
    /// The status for a failure to open the connection.
    pub(crate) fn of_connect_error(error: &Error) -> Self {
        match error {
            Error::Handshake(HandshakeError::Rejected(_)) => Self::Refused,
            Error::Handshake(HandshakeError::InvalidUrl(_)) | Error::Misuse(_) => Self::Usage,
            Error::Handshake(HandshakeError::Incomplete)
            | Error::Io(_)
            | Error::Tls(_)
            | Error::HandshakeTimeout => Self::ConnectFailed,
            Error::Handshake(_) | Error::Protocol(_) => Self::Protocol,
            _ => Self::ConnectFailed,
        }
    }

    /// The status once an open connection ended: `error` is the reader's last error, if any.
    pub(crate) fn of_end(error: Option<&Error>, closed: Option<&Closed>) -> Self {
        match error {
            Some(Error::Protocol(_)) => return Self::Protocol,
            Some(_) => return Self::Abnormal,
            None => {}
        }
        let Some(closed) = closed else {
            return Self::Abnormal;
        };
        if closed.error.is_some() {
            Self::Protocol
        } else if !closed.is_clean() {
            Self::Abnormal
        } else if closed.initiator == Initiator::Local
            || matches!(closed.code().as_u16(), 1000 | 1001 | 1005)
        {
            Self::Clean
        } else {
            Self::ServerError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald::{CloseCode, CloseFrame};

    fn closed(initiator: Initiator, sent: Option<u16>, received: Option<u16>) -> Closed {
        let frame = |code: u16| CloseFrame::new(CloseCode::from(code), "");
        Closed {
            initiator,
            sent: sent.map(frame),
            received: received.map(frame),
            error: None,
        }
    }

    #[test]
    fn closing_handshake_we_started_is_clean_whatever_the_answer() {
        let ended = closed(Initiator::Local, Some(4000), Some(1000));
        assert_eq!(Exit::of_end(None, Some(&ended)), Exit::Clean);
    }

    #[test]
    fn server_close_with_1000_1001_or_no_code_is_clean() {
        for code in [1000, 1001, 1005] {
            let ended = closed(Initiator::Remote, Some(code), Some(code));
            assert_eq!(Exit::of_end(None, Some(&ended)), Exit::Clean, "{code}");
        }
    }

    #[test]
    fn server_close_with_another_code_is_7() {
        let ended = closed(Initiator::Remote, Some(1008), Some(1008));
        assert_eq!(Exit::of_end(None, Some(&ended)), Exit::ServerError);
        assert_eq!(ExitCode::from(Exit::ServerError), ExitCode::from(7));
    }

    #[test]
    fn end_without_close_frame_is_abnormal() {
        let ended = closed(Initiator::Remote, None, None);
        assert_eq!(Exit::of_end(None, Some(&ended)), Exit::Abnormal);
        let no_answer = closed(Initiator::Local, Some(1000), None);
        assert_eq!(Exit::of_end(None, Some(&no_answer)), Exit::Abnormal);
    }

    #[test]
    fn refusal_and_connection_errors_have_their_own_codes() {
        let refused = HandshakeError::Rejected(Box::new(herald::handshake::Response::text(
            herald::http::StatusCode::UNAUTHORIZED,
            "no",
        )));
        assert_eq!(Exit::of_connect_error(&refused.into()), Exit::Refused);
        let io = Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(Exit::of_connect_error(&io), Exit::ConnectFailed);
        let bad = Error::Handshake(HandshakeError::InvalidResponse("wrong accept"));
        assert_eq!(Exit::of_connect_error(&bad), Exit::Protocol);
    }
}
