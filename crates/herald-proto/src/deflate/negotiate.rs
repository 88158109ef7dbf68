//! RFC 7692 §5 and §7.1: offers, answers, and the checks on both.

use super::{DeflateConfig, DeflateParams, EXTENSION};
use crate::handshake::ExtensionOffer;

/// The client's offer: `permessage-deflate; client_max_window_bits[=N]` plus what it asks of
/// the server.
pub fn client_offer(config: &DeflateConfig) -> String {
    let asked = DeflateParams {
        server_max_window_bits: config.server_max_window_bits,
        client_max_window_bits: config.client_max_window_bits,
        server_no_context_takeover: config.server_no_context_takeover,
        client_no_context_takeover: config.client_no_context_takeover,
    };
    let mut out = asked.to_header();
    // Always say that we can limit our window: the server may then ask us to.
    if config.client_max_window_bits >= 15 {
        out.push_str("; client_max_window_bits");
    }
    out
}

/// The parameters of one offer or answer, each at most once, values checked.
#[derive(Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: Option<&str>) -> Option<u8> {
    // RFC 7692 §7.1.2: 1*DIGIT, 8 to 15, no leading zero.
    let value = value?;
    if value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

fn parse(ext: &ExtensionOffer) -> Option<Parsed> {
    if ext.name != EXTENSION {
        return None;
    }
    let mut p = Parsed::default();
    for (name, value) in &ext.params {
        let value = value.as_deref();
        match name.as_str() {
            "server_no_context_takeover" if value.is_none() && !p.server_no_context_takeover => {
                p.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if value.is_none() && !p.client_no_context_takeover => {
                p.client_no_context_takeover = true;
            }
            "server_max_window_bits" if p.server_max_window_bits.is_none() => {
                p.server_max_window_bits = Some(window_bits(value)?);
            }
            "client_max_window_bits" if p.client_max_window_bits.is_none() => {
                p.client_max_window_bits = Some(match value {
                    None => None,
                    Some(_) => Some(window_bits(value)?),
                });
            }
            _ => return None,
        }
    }
    Some(p)
}

/// The server's choice: the first permessage-deflate offer it can honour (RFC 7692 §5.1), as
/// parameters. Offers with unknown, repeated or malformed parameters are declined, never fatal.
pub(crate) fn negotiate_server(
    offers: &[ExtensionOffer],
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    offers.iter().filter_map(parse).next().map(|offer| {
        let server_bits = offer
            .server_max_window_bits
            .map_or(config.server_max_window_bits, |asked| {
                asked.min(config.server_max_window_bits)
            });
        // §7.1.2.2: the server may limit the client's window only if the client said it can.
        let client_bits = match offer.client_max_window_bits {
            None => 15,
            Some(None) => config.client_max_window_bits,
            Some(Some(limit)) => limit.min(config.client_max_window_bits),
        };
        DeflateParams {
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            server_no_context_takeover: offer.server_no_context_takeover
                || config.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || config.client_no_context_takeover,
        }
    })
}

/// The client's check of the server's answer to [`client_offer`] (RFC 7692 §7.1).
///
/// # Errors
/// The reason to fail the connection: an unknown or repeated parameter, window bits out of
/// range or above what was asked, or a refusal of `server_no_context_takeover` that was asked.
pub fn negotiate_client(
    answer: &ExtensionOffer,
    config: &DeflateConfig,
) -> Result<DeflateParams, &'static str> {
    let p = parse(answer).ok_or("invalid permessage-deflate parameters")?;
    if config.server_no_context_takeover && !p.server_no_context_takeover {
        return Err("server_no_context_takeover was not accepted");
    }
    let server_bits = p.server_max_window_bits.unwrap_or(15);
    if config.server_max_window_bits < 15 && server_bits > config.server_max_window_bits {
        return Err("server_max_window_bits above the offer");
    }
    let client_bits = match p.client_max_window_bits {
        None => 15,
        Some(None) => return Err("client_max_window_bits without a value"),
        Some(Some(bits)) if bits > config.client_max_window_bits => {
            return Err("client_max_window_bits above the offer");
        }
        Some(Some(bits)) => bits,
    };
    Ok(DeflateParams {
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover,
    })
}

#[cfg(test)]
mod tests {
    //! RFC 7692 §7.1: extension negotiation parameters.
    use super::*;

    fn offer(s: &str) -> ExtensionOffer {
        ExtensionOffer::parse(s).unwrap()
    }

    #[test]
    fn server_accepts_the_first_offer_it_can_honour() {
        let offers = [
            offer("permessage-deflate; unknown_param"),
            offer("permessage-deflate; client_max_window_bits=10; server_no_context_takeover"),
        ];
        let params = negotiate_server(&offers, &DeflateConfig::default()).unwrap();
        assert_eq!(params.client_max_window_bits, 10);
        assert!(params.server_no_context_takeover);
        assert_eq!(
            params.to_header(),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
        );
    }

    #[test]
    fn server_declines_malformed_offers_without_failing() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=1x",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(
                negotiate_server(&[offer(bad)], &DeflateConfig::default()),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn server_does_not_limit_a_client_window_that_was_not_offered_as_limitable() {
        let config = DeflateConfig {
            client_max_window_bits: 9,
            ..DeflateConfig::default()
        };
        let params = negotiate_server(&[offer("permessage-deflate")], &config).unwrap();
        assert_eq!(params.client_max_window_bits, 15);
        let params = negotiate_server(
            &[offer("permessage-deflate; client_max_window_bits")],
            &config,
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, 9);
    }

    #[test]
    fn client_rejects_answers_it_did_not_ask_for() {
        let config = DeflateConfig {
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        for bad in [
            "permessage-deflate; client_max_window_bits=13",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; mystery",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ] {
            assert!(negotiate_client(&offer(bad), &config).is_err(), "{bad}");
        }
        let ok = negotiate_client(
            &offer("permessage-deflate; server_max_window_bits=9"),
            &config,
        );
        assert_eq!(ok.unwrap().server_max_window_bits, 9);
    }

    #[test]
    fn client_offer_says_it_can_limit_its_window() {
        assert_eq!(
            client_offer(&DeflateConfig::default()),
            "permessage-deflate; client_max_window_bits"
        );
    }
}
