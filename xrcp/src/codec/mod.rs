//! Byte- and text-level encodings shared by every XRCP message (spec/xrcp.md §2).
//!
//! Everything here is pure: no I/O, no clock, no randomness.

pub mod binary;
pub mod json;
pub mod pad;
pub mod text;
pub mod version;

pub use binary::{Encoder, Parser};
pub use pad::{pad, unpad, PadError};
pub use version::{Version, VersionRange};
