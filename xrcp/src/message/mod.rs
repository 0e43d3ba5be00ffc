//! The XRCP messages as pure codecs (spec/xrcp.md §4, §5, §7): the invitation link, the
//! multicast announcement, and the blocks of the HELLO exchange.

pub mod announcement;
pub mod hello;
pub mod invitation;
pub mod transport_host;

pub use announcement::{Announcement, DhKeyUsed};
pub use hello::{
    decode_block, encode_block, CtrlEncHello, HelloOpenError, HostEncHello, HostHello, BLOCK_SIZE,
    HELLO_PAD,
};
pub use invitation::{Invitation, SignedInvitation};
pub use transport_host::TransportHost;
