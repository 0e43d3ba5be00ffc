//! Protocol versions and version ranges (spec/xrcp.md §2.4), with the reference's
//! compatibility rule.

use std::fmt;

use crate::error::RcError;

/// One XRCP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

/// The versions this implementation speaks: 1 only, as the reference.
pub const SUPPORTED: VersionRange = VersionRange {
    min: Version(1),
    max: Version(1),
};

/// An inclusive range `min..=max` with `min <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    min: Version,
    max: Version,
}

impl VersionRange {
    /// The range `min..=max`; `None` when `min > max`.
    pub fn new(min: Version, max: Version) -> Option<Self> {
        (min <= max).then_some(VersionRange { min, max })
    }

    /// The range holding just `v`.
    pub fn single(v: Version) -> Self {
        VersionRange { min: v, max: v }
    }

    /// The lowest version in the range.
    pub fn min(&self) -> Version {
        self.min
    }

    /// The highest version in the range.
    pub fn max(&self) -> Version {
        self.max
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: Version) -> bool {
        self.min <= v && v <= self.max
    }

    /// The version two peers agree on: the smaller of the two maxima, provided each range's
    /// minimum is at most the other's maximum.
    pub fn compatible(&self, other: &VersionRange) -> Option<Version> {
        (self.min <= other.max && other.min <= self.max).then(|| self.max.min(other.max))
    }

    /// Text form: `1` when min = max, else `1-2`. Leading zeros and signs are refused.
    pub fn parse(s: &str) -> Result<Self, RcError> {
        // The peer's text, quoted and cut to a line's worth; whoever prints the error
        // escapes it for the terminal (crate::display).
        let bad = |t: &str| {
            let shown: String = t.chars().take(24).collect();
            let more = if shown.len() < t.len() { "…" } else { "" };
            RcError::syntax(format!("bad version '{shown}{more}'"))
        };
        let num = |t: &str| -> Result<Version, RcError> {
            let leading_zero = t.len() > 1 && t.starts_with('0');
            if t.is_empty() || leading_zero || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(t));
            }
            t.parse::<u16>().map(Version).map_err(|_| bad(t))
        };
        match s.split_once('-') {
            None => Ok(VersionRange::single(num(s)?)),
            Some((a, b)) => VersionRange::new(num(a)?, num(b)?)
                .ok_or_else(|| RcError::syntax("version range min > max")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(a: u16, b: u16) -> VersionRange {
        VersionRange::new(Version(a), Version(b)).unwrap()
    }

    #[test]
    fn text_forms() {
        assert_eq!(r(1, 1).to_string(), "1");
        assert_eq!(r(1, 2).to_string(), "1-2");
        assert_eq!(VersionRange::parse("1-2").unwrap(), r(1, 2));
        assert!(VersionRange::parse("2-1").is_err());
        assert!(VersionRange::parse("").is_err());
        assert!(VersionRange::parse("+1").is_err());
        assert!(VersionRange::parse("01").is_err());
        assert!(VersionRange::parse("1-02").is_err());
        assert!(VersionRange::parse("70000").is_err());
    }

    /// The peer's text is quoted as it is (no Rust escapes) and cut to a line's worth.
    #[test]
    fn bad_version_quotes_the_peer_text_plainly() {
        let e = VersionRange::parse("1-x\"y").unwrap_err();
        assert!(
            e.text_form().ends_with("bad version 'x\"y'"),
            "{}",
            e.text_form()
        );
        let long = "9".repeat(100);
        let e = VersionRange::parse(&long).unwrap_err().text_form();
        assert!(
            e.ends_with(&format!("bad version '{}…'", "9".repeat(24))),
            "{e}"
        );
    }

    #[test]
    fn compatibility_rule() {
        assert_eq!(r(1, 3).compatible(&r(2, 5)), Some(Version(3)));
        assert_eq!(r(2, 5).compatible(&r(1, 3)), Some(Version(3)));
        assert_eq!(r(1, 1).compatible(&r(2, 2)), None);
        assert_eq!(SUPPORTED.compatible(&r(1, 4)), Some(Version(1)));
        assert!(r(1, 3).contains(Version(2)));
        assert!(!r(1, 3).contains(Version(4)));
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u16>(), b in any::<u16>()) {
            let v = r(a.min(b), a.max(b));
            prop_assert_eq!(VersionRange::parse(&v.to_string()).unwrap(), v);
        }

        #[test]
        fn compatible_is_symmetric(a in 0u16..10, b in 0u16..10, c in 0u16..10, d in 0u16..10) {
            let x = r(a.min(b), a.max(b));
            let y = r(c.min(d), c.max(d));
            prop_assert_eq!(x.compatible(&y), y.compatible(&x));
            if let Some(v) = x.compatible(&y) { prop_assert!(x.contains(v) && y.contains(v)); }
        }
    }
}
