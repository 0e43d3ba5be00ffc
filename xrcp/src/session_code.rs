//! The session code both users compare (spec/xrcp.md §6.3): the tls-unique bytes read as one
//! big-endian unsigned integer, written in decimal and grouped by five digits.

/// The code for display, e.g. `17807 31860 …`.
pub fn session_code(tls_unique: &[u8]) -> String {
    // Repeated division of the big-endian number by 10^5 gives the decimal digits in chunks.
    let mut num: Vec<u8> = tls_unique.to_vec();
    let mut chunks: Vec<u32> = Vec::new();
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 100_000) as u8;
            rem = cur % 100_000;
        }
        chunks.push(rem);
    }
    let mut digits = String::new();
    for (i, c) in chunks.iter().rev().enumerate() {
        if i == 0 {
            digits.push_str(&c.to_string());
        } else {
            digits.push_str(&format!("{c:05}"));
        }
    }
    if digits.is_empty() {
        digits.push('0');
    }
    let bytes = digits.as_bytes();
    bytes
        .chunks(5)
        .map(|g| std::str::from_utf8(g).expect("ASCII digits"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a code the user typed equals ours; only spaces (U+0020) are ignored, as in the
/// reference.
pub fn same_session_code(expected: &str, typed: &str) -> bool {
    let strip = |s: &str| s.chars().filter(|&c| c != ' ').collect::<String>();
    let (a, b) = (strip(expected), strip(typed));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_examples() {
        let seq: Vec<u8> = (0u8..32).collect();
        assert_eq!(session_code(&seq), "17807 31860 62770 00449 60722 56837 65922 00742 32963 73031 99754 54759 83699 79440 671");
        assert_eq!(session_code(&[0xff; 32]), "11579 20892 37316 19542 35709 85008 68790 78532 69984 66564 05640 39457 58400 79131 29639 935");
        assert_eq!(session_code(&[1, 0]), "256");
        assert_eq!(session_code(&[0, 0]), "0");
    }

    #[test]
    fn comparison_ignores_spaces_only() {
        let c = session_code(&[0xff; 32]);
        assert!(same_session_code(&c, &c.replace(' ', "")));
        assert!(same_session_code(&c, &format!("  {c} ")));
        assert!(!same_session_code(&c, &c.replace(' ', "-")));
        assert!(!same_session_code(&c, &c[..c.len() - 1]));
        assert!(!same_session_code("", ""));
    }

    proptest! {
        #[test]
        fn matches_u128_decimal(n in any::<u128>()) {
            let s = n.to_string();
            let grouped: Vec<&str> = s.as_bytes().chunks(5).map(|g| std::str::from_utf8(g).unwrap()).collect();
            prop_assert_eq!(session_code(&n.to_be_bytes()), grouped.join(" "));
        }
    }
}
