//! The invitation's `host` field: where the host dials (spec/xrcp.md §4.1, §4.3).
//!
//! The reference types it as a transport host with three forms, tried in this order when
//! parsing: an IPv4 address (four decimal parts), a Tor `.onion` name, and otherwise a domain
//! name, which is every byte up to one of `:` `#` `,` `;` `/` or a space. A reference host
//! resolves a domain name through the system and tries each address it gets. Its controller
//! only ever advertises one of its own IPv4 addresses, but a controller reachable through a
//! relay may advertise the relay's name; the host pins the controller's CA from the link
//! either way, so the name only decides where the TCP connection goes.

use std::fmt;
use std::net::Ipv4Addr;

use crate::error::RcError;

/// Longest domain name (RFC 1035 §2.3.4, in its text form).
pub const MAX_DOMAIN_LEN: usize = 253;

/// Where the host dials the controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransportHost {
    /// Dotted decimal, as the reference's controllers advertise.
    Ipv4(Ipv4Addr),
    /// A Tor onion service name (ending in `.onion`). Kept so that such links parse as they
    /// do in the reference; our host cannot dial them.
    Onion(String),
    /// A domain name, resolved by the host through the system.
    Domain(String),
}

impl TransportHost {
    /// Parses the host of a link by the reference's rules, with two stricter checks
    /// (spec/xrcp.md §13.2): an IPv4 part above 255 is refused instead of wrapped, and a
    /// name must be printable ASCII of at most [`MAX_DOMAIN_LEN`] bytes.
    pub fn parse(text: &str) -> Result<TransportHost, RcError> {
        if text.is_empty() {
            return Err(RcError::syntax("empty host"));
        }
        if let Some(ip) = ipv4_form(text)? {
            return Ok(TransportHost::Ipv4(ip));
        }
        if text.len() > MAX_DOMAIN_LEN {
            return Err(RcError::syntax("host name too long"));
        }
        if let Some(bad) = text.bytes().find(|b| !is_name_byte(*b)) {
            return Err(RcError::syntax(format!(
                "host name contains a byte that is not allowed (0x{bad:02x})"
            )));
        }
        // The reference's onion alternative reads up to the first '.' and then ".onion"; it
        // does not backtrack once that matched, so anything after ".onion" fails there.
        let first_label = text.split('.').next().unwrap_or_default();
        match text[first_label.len()..].strip_prefix(".onion") {
            Some("") => Ok(TransportHost::Onion(text.to_owned())),
            Some(_) => Err(RcError::syntax("text after .onion in the host")),
            None => Ok(TransportHost::Domain(text.to_owned())),
        }
    }

    /// A name or address for the controller to advertise: an IPv4 address, or a DNS host
    /// name of letters, digits, `-` and `.` (what resolvers accept everywhere).
    pub fn for_advertising(text: &str) -> Result<TransportHost, RcError> {
        let host = TransportHost::parse(text)?;
        if let TransportHost::Domain(name) = &host {
            let labels_ok = name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
            // A name of digits and dots only would be read as an (odd) IPv4 address by
            // resolvers, and one the reference parses as IPv4 first would not survive.
            let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if !labels_ok || numeric {
                return Err(RcError::syntax(
                    "not a host name: use letters, digits, '-' and '.' (e.g. relay.example.com)",
                ));
            }
        }
        if matches!(host, TransportHost::Onion(_)) {
            return Err(RcError::syntax(
                "onion addresses cannot be advertised: hosts dial the link's address directly",
            ));
        }
        Ok(host)
    }

    /// The IPv4 address, for the forms that are one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match self {
            TransportHost::Ipv4(ip) => Some(*ip),
            _ => None,
        }
    }
}

impl From<Ipv4Addr> for TransportHost {
    fn from(ip: Ipv4Addr) -> Self {
        TransportHost::Ipv4(ip)
    }
}

impl std::str::FromStr for TransportHost {
    type Err = RcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransportHost::parse(s)
    }
}

/// The link's text form, as the reference writes it.
impl fmt::Display for TransportHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportHost::Ipv4(ip) => write!(f, "{ip}"),
            TransportHost::Onion(name) | TransportHost::Domain(name) => f.write_str(name),
        }
    }
}

/// Bytes the reference takes into a name (anything but `:#,;/` and space), less what would
/// never be a name and would reach a terminal or resolver raw: controls, DEL, non-ASCII.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b":#,;/".contains(&b)
}

/// The reference's IPv4 alternative: `d.d.d.d` with decimal parts. `Ok(None)` when the text
/// does not start that way (it is then a name). Text that starts with that shape but goes on
/// (`1.2.3.4.5`, `1.2.3.4x`) fails in the reference, which does not backtrack once the
/// address matched, so it is an error here too; so is a part above 255, which the reference
/// would silently wrap into another address, and a leading zero, which some resolvers read
/// as octal.
fn ipv4_form(text: &str) -> Result<Option<Ipv4Addr>, RcError> {
    let parts: Vec<&str> = text.splitn(4, '.').collect();
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 4 || !parts[..3].iter().all(digits) {
        return Ok(None);
    }
    let last_len = parts[3].bytes().take_while(u8::is_ascii_digit).count();
    if last_len == 0 {
        return Ok(None);
    }
    if last_len != parts[3].len() {
        return Err(RcError::syntax("text after the IPv4 address in the host"));
    }
    let mut octets = [0u8; 4];
    for (octet, part) in octets.iter_mut().zip(&parts) {
        if part.len() > 1 && part.starts_with('0') {
            return Err(RcError::syntax("IPv4 address with a leading zero"));
        }
        *octet = part
            .parse()
            .map_err(|_| RcError::syntax("IPv4 address part above 255"))?;
    }
    Ok(Some(Ipv4Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print_back() {
        for (text, expected) in [
            (
                "192.168.1.10",
                TransportHost::Ipv4(Ipv4Addr::new(192, 168, 1, 10)),
            ),
            (
                "relay.example.com",
                TransportHost::Domain("relay.example.com".into()),
            ),
            ("localhost", TransportHost::Domain("localhost".into())),
            (
                "123.example.com",
                TransportHost::Domain("123.example.com".into()),
            ),
            ("1.2.3", TransportHost::Domain("1.2.3".into())),
            (
                "abcdefghij234567.onion",
                TransportHost::Onion("abcdefghij234567.onion".into()),
            ),
        ] {
            let got = TransportHost::parse(text).unwrap();
            assert_eq!(got, expected, "{text}");
            assert_eq!(got.to_string(), text);
        }
    }

    #[test]
    fn stricter_than_the_reference_where_it_would_mislead() {
        assert!(
            TransportHost::parse("300.1.1.1").is_err(),
            "wraps in the reference"
        );
        assert!(
            TransportHost::parse("010.1.1.1").is_err(),
            "octal to some resolvers"
        );
        assert!(TransportHost::parse("").is_err());
        // Where the reference's parser fails outright (it does not backtrack).
        assert!(TransportHost::parse("1.2.3.4.5").is_err());
        assert!(TransportHost::parse("1.2.3.4x").is_err());
        assert!(TransportHost::parse("a.onion.example").is_err());
        assert!(TransportHost::parse("evil\u{1b}[2J.com").is_err());
        assert!(TransportHost::parse("caf\u{e9}.example").is_err());
        assert!(TransportHost::parse(&"a".repeat(254)).is_err());
        assert!(TransportHost::parse(&"a".repeat(253)).is_ok());
    }

    #[test]
    fn what_may_be_advertised() {
        assert!(TransportHost::for_advertising("relay.example.com").is_ok());
        assert!(TransportHost::for_advertising("203.0.113.7").is_ok());
        assert!(TransportHost::for_advertising("relay.test").is_ok());
        for bad in [
            "under_score.example",
            "-lead.example",
            "a..b",
            "x.onion",
            "1.2.3",
            "a@b.c",
            "percent%2e.example",
        ] {
            assert!(TransportHost::for_advertising(bad).is_err(), "{bad}");
        }
    }
}
