//! UTF-8 for text messages (RFC 6455 §5.6, §8.1): a validated zero-copy string type and an
//! incremental validator that fails as soon as a sequence is certainly invalid.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// Bytes known to be valid UTF-8: the payload of a text message, shareable without copying.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// An empty string.
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// A string from a `&'static str`, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// Checks `bytes` and wraps them.
    ///
    /// # Errors
    /// Returns the bytes back when they are not valid UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Bytes> {
        match simdutf8::basic::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(bytes),
        }
    }

    /// Wraps bytes that the caller has already validated.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        unchecked::as_str(&self.0)
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Unwraps the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[allow(unsafe_code)]
mod unchecked {
    /// Views bytes that a [`super::Utf8Bytes`] constructor validated as `str`.
    pub(super) fn as_str(bytes: &[u8]) -> &str {
        // SAFETY: only called on the contents of a `Utf8Bytes`, whose every constructor either
        // validates its input or takes it from a `str`/`String`; the bytes are immutable.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// Validates a UTF-8 stream that arrives in pieces.
///
/// A piece may end inside a code point; the validator keeps at most three bytes of it and
/// completes it with the next piece. It reports an error as soon as the bytes seen so far cannot
/// be the start of any valid sequence (so `0xF4 0x90` fails at once, without waiting for more).
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The stream is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the stream.
    ///
    /// # Errors
    /// [`InvalidUtf8`] when the stream so far is certainly invalid.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            input = self.complete_partial(input)?;
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                // An incomplete but so far valid sequence at the end: keep it.
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Declares the end of the stream.
    ///
    /// # Errors
    /// [`InvalidUtf8`] when the stream ends inside a code point.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Moves bytes from `input` into the kept partial code point until it is complete or `input`
    /// runs out, and returns the rest of `input`.
    fn complete_partial<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.partial_len);
        let need = sequence_len(self.partial[0]).ok_or(InvalidUtf8)?;
        let take = (need - have).min(input.len());
        self.partial[have..have + take].copy_from_slice(&input[..take]);
        let now = have + take;
        match simdutf8::compat::from_utf8(&self.partial[..now]) {
            Ok(_) => self.partial_len = 0,
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(_) => self.partial_len = now as u8,
        }
        Ok(&input[take..])
    }
}

/// The length of the sequence that `lead` starts, if it can start one.
fn sequence_len(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7f => Some(1),
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §8.1: text is UTF-8, judged incrementally and failing fast.
    use super::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn code_point_split_across_pieces_is_valid() {
        let s = "κόσμε €𝄞".as_bytes();
        for i in 0..s.len() {
            for j in i..s.len() {
                assert_eq!(feed_all(&[&s[..i], &s[i..j], &s[j..]]), Ok(()), "{i} {j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time_is_valid() {
        let s = "Hello-µ@ßöäüàá-UTF-8!! 𝄞".as_bytes();
        let pieces: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(feed_all(&pieces), Ok(()));
    }

    #[test]
    fn code_point_above_u10ffff_fails_at_its_second_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ab\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn surrogate_fails_before_the_sequence_completes() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
    }

    #[test]
    fn stream_ending_inside_a_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn invalid_lead_byte_fails_at_once() {
        assert_eq!(Utf8Validator::new().feed(b"\xff"), Err(InvalidUtf8));
        assert_eq!(Utf8Validator::new().feed(b"\xc0\xaf"), Err(InvalidUtf8));
    }

    #[test]
    fn utf8_bytes_rejects_invalid_input() {
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xce\xba\xe1")).is_err());
        assert_eq!(
            Utf8Bytes::try_from_bytes(Bytes::from_static(b"ok")).unwrap(),
            "ok"
        );
    }
}
