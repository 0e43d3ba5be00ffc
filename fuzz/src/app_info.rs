//! `app_info`: the app-info JSON of both sides (`CtrlAppInfo`, `HostAppInfo`), app versions
//! and the version checks.
//!
//! Input: JSON (parsed as app info of either side, and its `app` member if any) and, as text,
//! up to three space- or newline-separated app versions.
//!
//! Invariants:
//! - app info that parses re-serializes with `to_json` to a value that parses back equal;
//! - a parsed range has `min <= max`;
//! - `compatible` is symmetric; when it answers, the version lies in both ranges and is the
//!   lower maximum; `CtrlAppInfo::check` fails exactly when the ranges do not overlap and
//!   reports the controller's maximum;
//! - `HostAppInfo::check` fails with `BadVersion` exactly when the version is outside the
//!   range, with `IncompatibleEncoding` exactly for a Kotlin host and a Swift controller;
//! - versions: `parse(display(v)) == v`, display is then stable, ordering is total,
//!   antisymmetric and equal to the ordering of the numeric components.

use std::cmp::Ordering;

use serde_json::Value;
use xrcp::session::{
    AppInfoError, AppVersion, AppVersionRange, CtrlAppInfo, HostAppInfo, PlatformEncoding,
};

pub fn run(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        json(&v);
        if let Some(app) = v.get("app") {
            json(app);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        versions(text);
    }
}

fn json(v: &Value) {
    let ours = AppVersionRange::supported();
    if let Ok(c) = CtrlAppInfo::from_json(v) {
        let back = CtrlAppInfo::from_json(&c.to_json()).expect("to_json output parses");
        assert_eq!(back, c);
        check_range(&c.app_version_range);
        check_ranges(&ours, &c.app_version_range);
        match c.check(&ours) {
            Ok(ver) => {
                assert!(ours.contains(&ver) && c.app_version_range.contains(&ver));
            }
            Err(AppInfoError::BadVersion { app_version }) => {
                assert_eq!(&app_version, c.app_version_range.max_version());
                assert!(ours.compatible(&c.app_version_range).is_none());
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    if let Ok(h) = HostAppInfo::from_json(v) {
        let back = HostAppInfo::from_json(&h.to_json()).expect("to_json output parses");
        assert_eq!(back, h);
        check_host(&h, &ours);
        // Against a range of exactly the host's version.
        let exact = AppVersionRange::new(h.app_version.clone(), h.app_version.clone())
            .expect("a one-version range is valid");
        check_host(&h, &exact);
    }
}

fn check_host(h: &HostAppInfo, range: &AppVersionRange) {
    for local in [PlatformEncoding::Swift, PlatformEncoding::Kotlin] {
        let inside = range.contains(&h.app_version);
        let clash = h.encoding == PlatformEncoding::Kotlin && local == PlatformEncoding::Swift;
        match h.check(range, local) {
            Ok(()) => assert!(inside && !clash),
            Err(AppInfoError::BadVersion { app_version }) => {
                assert!(!inside);
                assert_eq!(app_version, h.app_version);
            }
            Err(AppInfoError::IncompatibleEncoding) => assert!(inside && clash),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

fn check_range(r: &AppVersionRange) {
    assert!(r.min_version() <= r.max_version());
    assert!(r.contains(r.min_version()) && r.contains(r.max_version()));
}

fn check_ranges(a: &AppVersionRange, b: &AppVersionRange) {
    let ab = a.compatible(b);
    assert_eq!(ab, b.compatible(a), "compatible is not symmetric");
    let overlap = a.min_version() <= b.max_version() && b.min_version() <= a.max_version();
    assert_eq!(ab.is_some(), overlap);
    if let Some(v) = ab {
        assert!(a.contains(&v) && b.contains(&v));
        assert_eq!(&v, a.max_version().min(b.max_version()));
    }
}

fn versions(text: &str) {
    let vs: Vec<AppVersion> = text
        .split([' ', '\n'])
        .take(3)
        .filter_map(|s| s.parse::<AppVersion>().ok())
        .collect();
    for v in &vs {
        assert!(!v.components().is_empty());
        let shown = v.to_string();
        let back: AppVersion = shown
            .parse()
            .unwrap_or_else(|e| panic!("display output does not parse: {e}"));
        assert_eq!(&back, v);
        assert_eq!(back.to_string(), shown, "display is not stable");
        assert_eq!(v.cmp(v), Ordering::Equal);
        assert_eq!(AppVersion::new(v.components()).as_ref(), Some(v));
        // Through JSON, as inside app info.
        let j = serde_json::to_value(v).expect("serializes");
        assert_eq!(
            &serde_json::from_value::<AppVersion>(j).expect("deserializes"),
            v
        );
    }
    for a in &vs {
        for b in &vs {
            let ord = a.cmp(b);
            assert_eq!(ord, b.cmp(a).reverse());
            assert_eq!(ord, a.components().cmp(b.components()));
            assert_eq!(ord == Ordering::Equal, a == b);
            let r = AppVersionRange::new(a.clone(), b.clone());
            assert_eq!(r.is_some(), a <= b);
            if let Some(r) = r {
                check_range(&r);
                check_ranges(&r, &AppVersionRange::supported());
                for c in &vs {
                    assert_eq!(r.contains(c), a <= c && c <= b);
                }
                let ctrl = CtrlAppInfo {
                    app_version_range: r.clone(),
                    device_name: String::new(),
                    compression: false,
                };
                let back = CtrlAppInfo::from_json(&ctrl.to_json()).expect("own app info parses");
                assert_eq!(back, ctrl);
            }
        }
    }
}
