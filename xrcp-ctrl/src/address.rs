//! Which local address goes into the invitation (spec/xrcp.md §4.3), following the
//! reference's rules: IPv4 only; no 0.0.0.0, broadcast or link-local; 127.0.0.1 last; a
//! preferred address, else a preferred interface, moved to the front. [`check`] is stricter,
//! for what a person typed: an address or interface this machine does not have is an error
//! rather than a silent fallback.

use std::net::Ipv4Addr;

use xrcp::RcError;

/// One usable local address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddress {
    /// The IPv4 address.
    pub address: Ipv4Addr,
    /// The interface that has it.
    pub interface: String,
}

/// What the user asked for with `addr=` / `iface=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPreference {
    /// `addr=` / `--addr`: this address.
    pub address: Option<Ipv4Addr>,
    /// `iface=` / `--iface`: the address of this interface.
    pub interface: Option<String>,
}

/// The addresses of the machine's interfaces, filtered and ordered like the reference's
/// `getLocalAddress` (before any preference).
pub fn local_addresses() -> Vec<LocalAddress> {
    let found = if_addrs::get_if_addrs().unwrap_or_default();
    order_candidates(
        found
            .into_iter()
            .filter_map(|i| match i.ip() {
                std::net::IpAddr::V4(a) => Some(LocalAddress {
                    address: a,
                    interface: i.name,
                }),
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
    )
}

/// Drops unusable addresses and moves the first 127.0.0.1 to the end.
pub fn order_candidates(addrs: Vec<LocalAddress>) -> Vec<LocalAddress> {
    let usable = addrs
        .into_iter()
        .filter(|a| {
            let o = a.address.octets();
            !(a.address.is_unspecified()
                || a.address.is_broadcast()
                || (o[0] == 169 && o[1] == 254))
        })
        .collect();
    last_local_host(usable)
}

fn last_local_host(mut addrs: Vec<LocalAddress>) -> Vec<LocalAddress> {
    if let Some(i) = addrs.iter().position(|a| a.address == Ipv4Addr::LOCALHOST) {
        let lh = addrs.remove(i);
        addrs.push(lh);
    }
    addrs
}

/// Moves the first entry with the preferred address — or, failing that, the preferred
/// interface — to the front; the rest keep their order.
pub fn prefer(pref: &AddressPreference, mut addrs: Vec<LocalAddress>) -> Vec<LocalAddress> {
    let by_addr = pref
        .address
        .and_then(|p| addrs.iter().position(|a| a.address == p));
    let by_iface = || {
        pref.interface
            .as_ref()
            .and_then(|p| addrs.iter().position(|a| &a.interface == p))
    };
    if let Some(i) = by_addr.or_else(by_iface) {
        let p = addrs.remove(i);
        addrs.insert(0, p);
    }
    addrs
}

/// The address to advertise and the others (the CLI lists them), or `NO_LOCAL_ADDR`.
pub fn choose(
    pref: &AddressPreference,
    candidates: Vec<LocalAddress>,
) -> Result<(LocalAddress, Vec<LocalAddress>), RcError> {
    let mut ordered = prefer(pref, candidates);
    if ordered.is_empty() {
        return Err(RcError::NoLocalAddress);
    }
    let first = ordered.remove(0);
    Ok((first, ordered))
}

/// Checks what the user typed with `addr=` / `iface=` against this machine's usable
/// addresses: an address it does not have, or an interface without a usable address, is an
/// error that lists what there is (the reference silently falls back to another address,
/// which puts an address nobody asked for into the link).
pub fn check(
    pref: &AddressPreference,
    candidates: &[LocalAddress],
) -> Result<(), crate::RemoteHostError> {
    if let Some(addr) = pref.address {
        if !candidates.iter().any(|c| c.address == addr) {
            return Err(crate::RemoteHostError::AddressNotLocal {
                addr,
                local: candidates.iter().map(|c| c.address).collect(),
            });
        }
    }
    if let Some(iface) = &pref.interface {
        if !candidates.iter().any(|c| &c.interface == iface) {
            let mut interfaces: Vec<String> = Vec::new();
            for c in candidates {
                if !interfaces.contains(&c.interface) {
                    interfaces.push(c.interface.clone());
                }
            }
            return Err(crate::RemoteHostError::UnknownInterface {
                iface: iface.clone(),
                interfaces,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(a: &str, i: &str) -> LocalAddress {
        LocalAddress {
            address: a.parse().unwrap(),
            interface: i.into(),
        }
    }

    fn pref(a: &str, i: &str) -> AddressPreference {
        AddressPreference {
            address: Some(a.parse().unwrap()),
            interface: Some(i.into()),
        }
    }

    fn addrs() -> Vec<LocalAddress> {
        vec![
            at("127.0.0.1", "lo"),
            at("10.20.30.40", "eth0"),
            at("10.20.30.42", "wlan0"),
        ]
    }

    /// The same cases as the reference's `testPreferAddress`.
    #[test]
    fn suppresses_localhost() {
        assert_eq!(
            order_candidates(addrs()),
            vec![
                at("10.20.30.40", "eth0"),
                at("10.20.30.42", "wlan0"),
                at("127.0.0.1", "lo")
            ]
        );
    }

    #[test]
    fn finds_by_address() {
        let ordered = order_candidates(addrs());
        assert_eq!(prefer(&pref("127.0.0.1", "lo23"), ordered.clone()), addrs());
        assert_eq!(
            prefer(&pref("10.20.30.42", "wlp2s0"), ordered),
            vec![
                at("10.20.30.42", "wlan0"),
                at("10.20.30.40", "eth0"),
                at("127.0.0.1", "lo")
            ]
        );
    }

    #[test]
    fn finds_by_interface() {
        let ordered = order_candidates(addrs());
        assert_eq!(prefer(&pref("127.1.2.3", "lo"), ordered.clone()), addrs());
        assert_eq!(prefer(&pref("0.0.0.0", "eth0"), ordered.clone()), ordered);
    }

    #[test]
    fn survives_duplicates() {
        let ordered = order_candidates(addrs());
        let mut addr_dups = vec![at("10.20.30.40", "eth1")];
        addr_dups.extend(ordered.clone());
        assert_eq!(
            prefer(&pref("0.0.0.0", "eth1"), addr_dups.clone()),
            addr_dups
        );
        let mut iface_dups = vec![at("10.20.30.41", "eth0")];
        iface_dups.extend(ordered);
        assert_eq!(
            prefer(&pref("0.0.0.0", "eth0"), iface_dups.clone()),
            iface_dups
        );
    }

    #[test]
    fn typed_addresses_and_interfaces_must_exist() {
        let ordered = order_candidates(addrs());
        assert!(check(&pref("10.20.30.42", "wlan0"), &ordered).is_ok());
        assert!(check(&AddressPreference::default(), &ordered).is_ok());
        let e = check(&pref("10.9.9.9", "eth0"), &ordered).unwrap_err();
        assert!(matches!(
            e,
            crate::RemoteHostError::AddressNotLocal { ref local, .. } if local.len() == 3
        ));
        let only_iface = AddressPreference {
            address: None,
            interface: Some("nosuch".into()),
        };
        match check(&only_iface, &ordered).unwrap_err() {
            crate::RemoteHostError::UnknownInterface { interfaces, .. } => {
                assert_eq!(interfaces, ["eth0", "wlan0", "lo"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_unusable_and_reports_no_address() {
        let got = order_candidates(vec![
            at("0.0.0.0", "x"),
            at("255.255.255.255", "x"),
            at("169.254.3.4", "x"),
            at("192.168.0.2", "y"),
        ]);
        assert_eq!(got, vec![at("192.168.0.2", "y")]);
        assert_eq!(
            choose(&AddressPreference::default(), vec![]).unwrap_err(),
            RcError::NoLocalAddress
        );
        // The machine running the tests has at least loopback.
        assert!(local_addresses().iter().any(|a| a.address.is_loopback()));
    }
}
