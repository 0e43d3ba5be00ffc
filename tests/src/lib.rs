//! Cross-crate test helpers.

pub mod cli;
pub mod fault_proxy;
pub mod hardening;
