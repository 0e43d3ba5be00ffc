//! Where a [`crate::Host`] keeps its pairings: any [`PairingStore`]; the SQLite
//! [`CtrlStore`] of the `xrcp-host` program by default.

use xrcp::crypto::KeyHash;
use xrcp::pairing::CtrlPairing;

use crate::error::PairingStoreError;
use crate::store::CtrlStore;

/// What a host needs from a pairing store (spec/xrcp.md §9: a pairing is kept after each
/// session that reached HELLO, with the controller's new DH key). Object-safe: the host holds
/// a `Box<dyn PairingStore>`.
pub trait PairingStore: Send {
    /// The stored pairing of the controller whose CA fingerprint is `ctrl_ca` (the one in a
    /// link), with its id.
    fn find(&self, ctrl_ca: &KeyHash) -> Result<Option<(i64, CtrlPairing)>, PairingStoreError>;
    /// Every stored pairing, for multicast discovery.
    fn known(&self) -> Result<Vec<(i64, CtrlPairing)>, PairingStoreError>;
    /// Keeps the pairing after a session reached HELLO (new controller, or the updated
    /// pairing of a known one); gives its id.
    fn save(&mut self, device_name: &str, pairing: &CtrlPairing) -> Result<i64, PairingStoreError>;
}

impl PairingStore for CtrlStore {
    fn find(&self, ctrl_ca: &KeyHash) -> Result<Option<(i64, CtrlPairing)>, PairingStoreError> {
        Ok(self
            .find_by_fingerprint(ctrl_ca)?
            .map(|r| (r.id, r.pairing)))
    }

    fn known(&self) -> Result<Vec<(i64, CtrlPairing)>, PairingStoreError> {
        Ok(CtrlStore::known(self)?)
    }

    fn save(&mut self, device_name: &str, pairing: &CtrlPairing) -> Result<i64, PairingStoreError> {
        Ok(self.upsert(device_name, pairing)?)
    }
}
