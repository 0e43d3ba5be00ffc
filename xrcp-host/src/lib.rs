//! XRCP host role.
