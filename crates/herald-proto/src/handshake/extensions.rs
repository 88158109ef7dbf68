//! `Sec-WebSocket-Extensions` values (RFC 6455 §9.1).

use http::HeaderMap;

/// One extension in a `Sec-WebSocket-Extensions` list, with its parameters in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters: name and value (`None` for a bare parameter); quotes removed.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// Parses every `Sec-WebSocket-Extensions` header in `headers`. An element that breaks the
    /// grammar is skipped, not fatal: an offer the server cannot read is simply not accepted.
    pub fn parse_all(headers: &HeaderMap) -> Vec<Self> {
        headers
            .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(split_outside_quotes)
            .filter_map(|element| Self::parse(&element))
            .collect()
    }

    /// Parses one element: `name *( ";" param [ "=" (token | quoted-string) ] )`.
    pub fn parse(element: &str) -> Option<Self> {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next().filter(|n| is_token(n))?.to_ascii_lowercase();
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
                None => (part, None),
            };
            if !is_token(key) {
                return None;
            }
            params.push((key.to_ascii_lowercase(), value));
        }
        Some(Self { name, params })
    }
}

fn split_outside_quotes(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

fn unquote(value: &str) -> Option<String> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    is_token(inner).then(|| inner.to_owned())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §9.1: extension negotiation grammar.
    use super::*;

    #[test]
    fn offers_with_parameters_are_parsed_in_order() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\""
                .parse()
                .unwrap(),
        );
        let offers = ExtensionOffer::parse_all(&headers);
        assert_eq!(offers.len(), 2);
        assert_eq!(
            offers[0].params,
            [("client_max_window_bits".to_owned(), None)]
        );
        assert_eq!(
            offers[1].params,
            [("server_max_window_bits".to_owned(), Some("10".to_owned()))]
        );
    }

    #[test]
    fn malformed_elements_are_skipped() {
        assert_eq!(ExtensionOffer::parse("x; a=\"b"), None);
        assert_eq!(ExtensionOffer::parse("; a"), None);
    }
}
