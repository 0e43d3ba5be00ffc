//! Cross-crate test helpers.

pub mod bodies;
pub mod cli;
pub mod fault_proxy;
pub mod hardening;
pub mod memscan;
pub mod netns;
pub mod ssh;
