//! Where a [`crate::Controller`] keeps its pairings: any [`PairingStore`]; the SQLite
//! [`HostStore`] of the `xrcp-ctrl` program by default.

use xrcp::pairing::HostPairing;

use crate::error::PairingStoreError;
use crate::store::{Binding, HostStore};

/// What a controller needs from a pairing store (spec/xrcp.md §9: a pairing is kept after
/// each session that reached HELLO, with the host's new DH key). Object-safe: the controller
/// holds a `Box<dyn PairingStore>`.
pub trait PairingStore: Send {
    /// The pairing with host `id`, and the listening options its last session used.
    fn load(&self, id: i64) -> Result<Option<(HostPairing, Binding)>, PairingStoreError>;
    /// Keeps the pairing of a newly linked host; gives the id to reconnect with.
    fn insert(
        &mut self,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<i64, PairingStoreError>;
    /// Replaces host `id`'s pairing after a later session (its DH key changed).
    fn update(
        &mut self,
        id: i64,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<(), PairingStoreError>;
}

impl PairingStore for HostStore {
    fn load(&self, id: i64) -> Result<Option<(HostPairing, Binding)>, PairingStoreError> {
        Ok(self.get(id)?.map(|r| (r.pairing, r.binding)))
    }

    fn insert(
        &mut self,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<i64, PairingStoreError> {
        Ok(HostStore::insert(self, device_name, pairing, binding)?)
    }

    fn update(
        &mut self,
        id: i64,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<(), PairingStoreError> {
        Ok(self.update_after_session(id, device_name, pairing, binding)?)
    }
}
