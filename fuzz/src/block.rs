//! `block`: block framing (`decode_block`, `encode_block`) and the padding codec (`pad`,
//! `unpad`).
//!
//! Input: any bytes. They are used as a padded buffer (`unpad`), as a block (`decode_block`,
//! as given and also resized to `BLOCK_SIZE` so short inputs reach the length check), and as
//! a message to pad to several sizes.
//!
//! Invariants:
//! - `unpad` returns exactly the announced prefix and never reads past the buffer;
//! - `pad` output has exactly the requested size, fails only when the message does not fit,
//!   and `unpad(pad(m, n)) == m`;
//! - `decode_block` accepts only `BLOCK_SIZE` inputs, its content is at most
//!   `BLOCK_SIZE - 2` bytes, re-encoding reproduces the block up to the fill, and all its
//!   errors are `BLOCK_SIZE`.

use xrcp::codec::pad::MAX_PADDED_MESSAGE;
use xrcp::codec::{pad, unpad};
use xrcp::message::announcement::ANNOUNCEMENT_PAD;
use xrcp::message::{decode_block, encode_block, BLOCK_SIZE, HELLO_PAD};
use xrcp::RcError;

pub fn run(data: &[u8]) {
    check_unpad(data);
    check_block(data);
    if data.len() != BLOCK_SIZE {
        let mut b = data.to_vec();
        b.resize(BLOCK_SIZE, b'#');
        check_block(&b);
    }
    for size in [
        data.len() + 2,
        data.len() + 1,
        ANNOUNCEMENT_PAD,
        HELLO_PAD,
        BLOCK_SIZE,
    ] {
        check_pad(data, size);
    }
    match encode_block(data) {
        Ok(b) => {
            assert_eq!(b.len(), BLOCK_SIZE);
            assert_eq!(decode_block(&b).expect("encode_block output decodes"), data);
        }
        Err(e) => {
            assert_eq!(e, RcError::BlockSize);
            assert!(data.len() + 2 > BLOCK_SIZE);
        }
    }
}

fn check_unpad(data: &[u8]) {
    match unpad(data) {
        Ok(m) => {
            let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
            assert_eq!(m.len(), len);
            assert_eq!(m, &data[2..2 + len]);
            let again = pad(m, data.len()).expect("what unpads must pad to the same size");
            assert_eq!(&again[..2 + len], &data[..2 + len]);
        }
        Err(_) => {
            assert!(
                data.len() < 2
                    || usize::from(u16::from_be_bytes([data[0], data[1]])) > data.len() - 2
            );
        }
    }
}

fn check_pad(msg: &[u8], size: usize) {
    match pad(msg, size) {
        Ok(p) => {
            assert_eq!(p.len(), size);
            assert_eq!(unpad(&p).expect("pad output unpads"), msg);
        }
        Err(_) => assert!(msg.len() + 2 > size || msg.len() > MAX_PADDED_MESSAGE),
    }
}

fn check_block(b: &[u8]) {
    match decode_block(b) {
        Ok(content) => {
            assert_eq!(b.len(), BLOCK_SIZE);
            assert!(content.len() <= BLOCK_SIZE - 2);
            let again = encode_block(content).expect("a decoded block's content fits a block");
            assert_eq!(&again[..2 + content.len()], &b[..2 + content.len()]);
        }
        Err(e) => assert_eq!(e, RcError::BlockSize),
    }
}
