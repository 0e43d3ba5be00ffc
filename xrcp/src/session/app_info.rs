//! The application info both sides exchange during the handshake, and the app-version checks
//! that decide whether a session may start (spec/xrcp.md §10.4; the reference's
//! `CtrlAppInfo`, `HostAppInfo` and its app-version and compatibility checks
//! `connectRemoteCtrl.checkAppVersion`, `startRemoteHost.parseHostAppInfo`).
//!
//! - The controller puts [`CtrlAppInfo`] into the invitation's `app` parameter.
//! - The host answers with [`HostAppInfo`] in its HELLO's `app` field.
//!
//! App versions are SimpleX Chat release numbers (`6.5.6.1`), unrelated to the XRCP protocol
//! version. They are compared numerically component by component, like Haskell's
//! `Data.Version`, so `6.10 > 6.9` and `6.5 < 6.5.0`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A dotted numeric version such as `6.5.6.1`. A trailing `-tag` list (which Haskell's
/// `parseVersion` accepts) is kept for display but ignored when comparing, as in
/// `Data.Version`'s ordering.
#[derive(Clone, Debug)]
pub struct AppVersion {
    branch: Vec<u64>,
    tags: Vec<String>,
}

impl AppVersion {
    /// A version from its numeric components; `None` when empty.
    pub fn new(branch: &[u64]) -> Option<Self> {
        (!branch.is_empty()).then(|| AppVersion {
            branch: branch.to_vec(),
            tags: Vec::new(),
        })
    }

    /// The numeric components (`6.5.6.1` → `[6, 5, 6, 1]`).
    pub fn components(&self) -> &[u64] {
        &self.branch
    }
}

impl PartialEq for AppVersion {
    fn eq(&self, other: &Self) -> bool {
        self.branch == other.branch
    }
}

impl Eq for AppVersion {}

impl PartialOrd for AppVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AppVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.branch.cmp(&other.branch)
    }
}

impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.branch.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        for t in &self.tags {
            write!(f, "-{t}")?;
        }
        Ok(())
    }
}

impl FromStr for AppVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad AppVersion: {s}");
        let mut parts = s.split('-');
        let numbers = parts.next().ok_or_else(bad)?;
        let branch = numbers
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                p.parse::<u64>().map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tags = parts
            .map(|t| {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Err(bad())
                } else {
                    Ok(t.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AppVersion { branch, tags })
    }
}

impl Serialize for AppVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AppVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An inclusive range of app versions; JSON `{"minVersion": "…", "maxVersion": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppVersionRange {
    min_version: AppVersion,
    max_version: AppVersion,
}

impl AppVersionRange {
    /// `None` unless `min <= max`.
    pub fn new(min_version: AppVersion, max_version: AppVersion) -> Option<Self> {
        (min_version <= max_version).then_some(AppVersionRange {
            min_version,
            max_version,
        })
    }

    /// The SimpleX Chat releases this implementation interoperates with, used as our own app
    /// version range by default (either role).
    ///
    /// - **max 6.5.6.1**: the newest reference release whose session layer spec/xrcp.md
    ///   describes (§10.4; chain-key bodies, `retryNumber`, zstd compression) and that we
    ///   mirror. Reporting it as our version keeps the host's answer
    ///   (`min(host max, controller max)`) inside every current reference range.
    /// - **min 6.5.0.12**: the reference's own `minRemoteCtrlVersion`/`minRemoteHostVersion`
    ///   at 6.5.6.1. Earlier releases (6.4.6.0 upstream) render the invitation's `ssig`
    ///   differently inside the text `idsig` signs (spec/xrcp.md §4.2, §10.4), and our
    ///   invitation code uses the new rendering, so older peers could not pair with us even
    ///   though their session bodies are the same. Advertising 6.4.6.0 would only turn a
    ///   clear "bad version" answer into a signature failure.
    pub fn supported() -> Self {
        AppVersionRange {
            min_version: AppVersion {
                branch: vec![6, 5, 0, 12],
                tags: Vec::new(),
            },
            max_version: AppVersion {
                branch: vec![6, 5, 6, 1],
                tags: Vec::new(),
            },
        }
    }

    /// The lowest app version of the range.
    pub fn min_version(&self) -> &AppVersion {
        &self.min_version
    }

    /// The highest app version of the range.
    pub fn max_version(&self) -> &AppVersion {
        &self.max_version
    }

    /// `isAppCompatible`.
    pub fn contains(&self, v: &AppVersion) -> bool {
        &self.min_version <= v && v <= &self.max_version
    }

    /// `compatibleAppVersion`: when the ranges overlap, the lower of the two maxima.
    pub fn compatible(&self, other: &AppVersionRange) -> Option<AppVersion> {
        let overlap =
            self.min_version <= other.max_version && other.min_version <= self.max_version;
        overlap.then(|| self.max_version.clone().min(other.max_version.clone()))
    }
}

impl<'de> Deserialize<'de> for AppVersionRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            min_version: AppVersion,
            max_version: AppVersion,
        }
        let r = Raw::deserialize(d)?;
        AppVersionRange::new(r.min_version, r.max_version)
            .ok_or_else(|| serde::de::Error::custom("invalid version range"))
    }
}

/// How a side's chat core encodes sum types in JSON (`PlatformEncoding`): `"kotlin"` (tagged
/// objects) or `"swift"` (single-field objects marked `_owsf`). This implementation encodes
/// like Kotlin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformEncoding {
    /// `"swift"`: single-field objects (the iOS app).
    Swift,
    /// `"kotlin"`: objects tagged by `"type"` (the Android and desktop apps, the terminal CLI; ours).
    Kotlin,
}

/// Our own encoding: the tagged form.
pub const LOCAL_ENCODING: PlatformEncoding = PlatformEncoding::Kotlin;

/// Tolerant boolean (`BoolDef`): a missing field reads as `false`.
fn bool_def<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// Controller → host, in the invitation's `app` parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CtrlAppInfo {
    /// The app versions the controller accepts from a host.
    pub app_version_range: AppVersionRange,
    /// The controller's name, shown on the host (peer-supplied: escape before display).
    pub device_name: String,
    /// Whether the controller is willing to compress; missing = false.
    #[serde(default, deserialize_with = "bool_def")]
    pub compression: bool,
}

/// Host → controller, in the host HELLO's `app` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAppInfo {
    /// The version the host chose: `min(host max, controller max)`.
    pub app_version: AppVersion,
    /// The host's name, shown on the controller (peer-supplied: escape before display).
    pub device_name: String,
    /// How the host writes its JSON (`kotlin`: tagged objects; `swift`: single-field objects).
    pub encoding: PlatformEncoding,
    /// The host's `/_files_encrypt` setting: whether files are encrypted at rest.
    pub encrypt_files: bool,
    /// Missing = false.
    #[serde(default, deserialize_with = "bool_def")]
    pub compression: bool,
}

/// Why an app info is refused. The reference reports these through chat-level errors:
/// host side `RCEBadInvitation`/`RCEBadVersion`, controller side
/// `RHEProtocolError (RPEInvalidJSON …)`/`RHEBadVersion`/`RPEIncompatibleEncoding`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppInfoError {
    /// The JSON does not parse as app info.
    #[error("bad app info: {0}")]
    Invalid(String),
    /// No common version; carries the peer's version (host side: the controller's max).
    #[error("bad app version {app_version}")]
    BadVersion {
        /// The peer's version (the controller's max on the host side).
        app_version: AppVersion,
    },
    /// A Kotlin-encoding host cannot serve a Swift-encoding controller.
    #[error("incompatible JSON encoding")]
    IncompatibleEncoding,
}

impl CtrlAppInfo {
    /// Parses the invitation's `app` JSON; unknown fields are ignored.
    pub fn from_json(v: &Value) -> Result<Self, AppInfoError> {
        CtrlAppInfo::deserialize(v).map_err(|e| AppInfoError::Invalid(e.to_string()))
    }

    /// The JSON written into the invitation's `app` parameter.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Host side (`checkAppVersion`): the controller's range must overlap ours; the result is
    /// the version the host reports back (`min(our max, controller max)`).
    pub fn check(&self, host_range: &AppVersionRange) -> Result<AppVersion, AppInfoError> {
        host_range
            .compatible(&self.app_version_range)
            .ok_or_else(|| AppInfoError::BadVersion {
                app_version: self.app_version_range.max_version.clone(),
            })
    }
}

impl HostAppInfo {
    /// Parses the host HELLO's `app` JSON; unknown fields are ignored.
    pub fn from_json(v: &Value) -> Result<Self, AppInfoError> {
        HostAppInfo::deserialize(v).map_err(|e| AppInfoError::Invalid(e.to_string()))
    }

    /// The JSON written into the host HELLO's `app` field.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Controller side (`parseHostAppInfo`): the host's version must lie in our range, and a
    /// Kotlin host cannot serve a Swift controller.
    pub fn check(
        &self,
        ctrl_range: &AppVersionRange,
        local_encoding: PlatformEncoding,
    ) -> Result<(), AppInfoError> {
        if !ctrl_range.contains(&self.app_version) {
            return Err(AppInfoError::BadVersion {
                app_version: self.app_version.clone(),
            });
        }
        if self.encoding == PlatformEncoding::Kotlin && local_encoding == PlatformEncoding::Swift {
            return Err(AppInfoError::IncompatibleEncoding);
        }
        Ok(())
    }
}

/// Whether bodies are compressed: both this side's setting and the peer's advertised flag
/// must be on (spec/xrcp.md §10.4). Both sides reach the same answer.
pub fn use_compression(own: bool, peer: bool) -> bool {
    own && peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> AppVersion {
        s.parse().unwrap()
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(v("6.10") > v("6.9"));
        assert!(v("6.5") < v("6.5.0"));
        assert!(v("6.5.0.12") < v("6.5.6.1"));
        assert_eq!(v("06.5"), v("6.5"));
        assert_eq!(v("6.5.6.1").to_string(), "6.5.6.1");
        assert_eq!(v("1.2-beta").to_string(), "1.2-beta");
        assert_eq!(v("1.2-beta"), v("1.2"));
        for bad in ["", "6.", ".6", "6..5", "a.b", "6.5-", "6,5", "-1"] {
            assert!(bad.parse::<AppVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn app_info_json() {
        let c = CtrlAppInfo {
            app_version_range: AppVersionRange::supported(),
            device_name: "SimpleX CLI".into(),
            compression: true,
        };
        assert_eq!(
            c.to_json(),
            json!({"appVersionRange": {"minVersion": "6.5.0.12", "maxVersion": "6.5.6.1"},
                   "deviceName": "SimpleX CLI", "compression": true})
        );
        let old = json!({"appVersionRange": {"minVersion": "6.4.6.0", "maxVersion": "6.4.6.0"},
                         "deviceName": "My Desktop"});
        let parsed = CtrlAppInfo::from_json(&old).unwrap();
        assert!(!parsed.compression);
        let inverted = json!({"appVersionRange": {"minVersion": "6.5", "maxVersion": "6.4"},
                              "deviceName": "x"});
        assert!(CtrlAppInfo::from_json(&inverted).is_err());

        let h = HostAppInfo {
            app_version: v("6.5.6.1"),
            device_name: "Mobile".into(),
            encoding: PlatformEncoding::Kotlin,
            encrypt_files: false,
            compression: true,
        };
        assert_eq!(
            h.to_json(),
            json!({"appVersion": "6.5.6.1", "deviceName": "Mobile", "encoding": "kotlin",
                   "encryptFiles": false, "compression": true})
        );
        assert_eq!(HostAppInfo::from_json(&h.to_json()).unwrap(), h);
        assert!(
            HostAppInfo::from_json(&json!({"appVersion": "6.5", "deviceName": "x",
            "encoding": "kotlin"}))
            .is_err()
        );
    }

    #[test]
    fn version_checks() {
        let ours = AppVersionRange::supported();
        let newer = CtrlAppInfo {
            app_version_range: AppVersionRange::new(v("6.5.0.12"), v("6.6.0")).unwrap(),
            device_name: "d".into(),
            compression: false,
        };
        assert_eq!(newer.check(&ours).unwrap(), v("6.5.6.1"));
        let older = CtrlAppInfo {
            app_version_range: AppVersionRange::new(v("6.4.6.0"), v("6.4.6.0")).unwrap(),
            ..newer.clone()
        };
        assert_eq!(
            older.check(&ours).unwrap_err(),
            AppInfoError::BadVersion {
                app_version: v("6.4.6.0")
            }
        );
        let mut host = HostAppInfo {
            app_version: v("6.5.6.1"),
            device_name: "m".into(),
            encoding: PlatformEncoding::Kotlin,
            encrypt_files: true,
            compression: true,
        };
        assert!(host.check(&ours, LOCAL_ENCODING).is_ok());
        assert_eq!(
            host.check(&ours, PlatformEncoding::Swift).unwrap_err(),
            AppInfoError::IncompatibleEncoding
        );
        host.app_version = v("6.5.7");
        assert!(matches!(
            host.check(&ours, LOCAL_ENCODING),
            Err(AppInfoError::BadVersion { .. })
        ));
        assert!(use_compression(true, true));
        assert!(!use_compression(true, false));
        assert!(!use_compression(false, true));
    }
}
