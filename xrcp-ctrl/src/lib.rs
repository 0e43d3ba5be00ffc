//! XRCP ctrl role.
