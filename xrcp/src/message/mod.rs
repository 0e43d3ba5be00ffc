//! XRCP messages.
