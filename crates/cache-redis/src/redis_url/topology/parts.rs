//! A multi-server URL's text split into parts, and the parts a user writes by hand (the user
//! info, each `host[:port]` of the list) read as `url` reads them in a single-server URL.

use std::net::IpAddr;

use cache_core::Result;
use url::Host;

use super::super::invalid;

/// A multi-server URL after its scheme, split into parts, none of them decoded.
pub(super) struct Parts<'a> {
    pub(super) userinfo: Option<&'a str>,
    pub(super) hosts: &'a str,
    pub(super) path: Option<&'a str>,
    pub(super) query: Option<&'a str>,
    pub(super) fragment: Option<&'a str>,
}

impl<'a> Parts<'a> {
    pub(super) fn of(rest: &'a str) -> Self {
        // The last `@` before the first `/`, so that a password keeps an `@`, `?` or `#` that
        // was not percent-encoded (rather than have it read as the query and named in an error).
        let authority = rest.find('/').map_or(rest, |slash| &rest[..slash]);
        let (userinfo, rest) = match authority.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (rest, fragment) = split_off(rest, '#');
        let (rest, query) = split_off(rest, '?');
        let (hosts, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], Some(&rest[slash..])),
            None => (rest, None),
        };
        Self {
            userinfo,
            hosts,
            path,
            query,
            fragment,
        }
    }
}

/// `text` before and after the first `separator`.
fn split_off(text: &str, separator: char) -> (&str, Option<&str>) {
    match text.split_once(separator) {
        Some((before, after)) => (before, Some(after)),
        None => (text, None),
    }
}

/// One `host[:port]` of the list, or what is wrong with it, to follow "the 2nd node of the url".
pub(super) fn address(
    entry: &str,
    default_port: u16,
) -> std::result::Result<(String, u16), &'static str> {
    const INVALID_HOST: &str = "has an invalid host; give a host name or an ip address (an \
                                ipv6 address in brackets, as in [::1]:7000)";
    const INVALID_PORT: &str = "has an invalid port; give a number from 1 to 65535";
    if entry.is_empty() {
        return Err("is empty");
    }
    let (host, port) = if entry.starts_with('[') {
        let end = entry.find(']').ok_or(INVALID_HOST)?;
        entry.split_at(end + 1)
    } else if entry.matches(':').count() > 1 {
        // An ipv6 address without brackets.
        return Err(INVALID_HOST);
    } else {
        entry.split_at(entry.find(':').unwrap_or(entry.len()))
    };
    let port = match port {
        "" => default_port,
        port => port
            .strip_prefix(':')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u16>().ok())
            .filter(|&port| port != 0)
            .ok_or(INVALID_PORT)?,
    };
    if host.is_empty() {
        return Err("has no host");
    }
    // The parser `url` uses for the host of a `redis://` URL (not a special scheme's).
    let host = match Host::parse_opaque(host).map_err(|_| INVALID_HOST)? {
        Host::Domain(name) => name,
        Host::Ipv4(ip) => ip.to_string(),
        // Without brackets, as redis-rs writes it.
        Host::Ipv6(ip) => ip.to_string(),
    };
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Err(
            "is a wildcard address (0.0.0.0 or ::), which cannot be connected to; give the \
             server's address",
        );
    }
    Ok((host, port))
}

/// The user name and password of `user[:password]`, each percent-decoded; an empty one is none,
/// as for the single-server form.
pub(super) fn credentials(
    userinfo: &str,
    scheme: &str,
) -> Result<(Option<String>, Option<String>)> {
    let (username, password) = split_off(userinfo, ':');
    let username = percent_decoded(username).ok_or_else(|| {
        invalid(format!(
            "the user name in the {scheme} url is not valid UTF-8 once percent-decoded"
        ))
    })?;
    let password = password
        .map(|password| {
            percent_decoded(password).ok_or_else(|| {
                invalid(format!(
                    "the password in the {scheme} url is not valid UTF-8 once percent-decoded"
                ))
            })
        })
        .transpose()?;
    let present = |text: String| Some(text).filter(|text| !text.is_empty());
    Ok((present(username), password.and_then(present)))
}

/// `text` with each `%XX` turned into its byte, as redis-rs (`percent_encoding::percent_decode`)
/// decodes the user info `url` keeps encoded: a `%` not followed by two hex digits stays.
/// `None` when the bytes are not UTF-8. (Written out because `percent-encoding` is not a
/// dependency of this crate, only of `url` and redis-rs.)
pub(super) fn percent_decoded(text: &str) -> Option<String> {
    let hex = |byte: Option<&u8>| byte.and_then(|&byte| char::from(byte).to_digit(16));
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%'
            && let (Some(high), Some(low)) = (hex(bytes.get(index + 1)), hex(bytes.get(index + 2)))
            && let Ok(byte) = u8::try_from(high * 16 + low)
        {
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}
