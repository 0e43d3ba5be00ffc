//! The harnesses' fixed keys are the `spec/vectors` values: the vector messages must get past
//! every MAC and signature with them, or the seeds would only exercise the error paths.

use serde_json::Value;
use xrcp::message::{decode_block, Announcement, CtrlEncHello, HostEncHello};
use xrcp_fuzz::common::*;

fn messages() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/vectors/messages.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hexv(v.as_str().unwrap())
}

#[test]
fn vector_messages_open_with_the_harness_keys() {
    let m = messages();
    let f = fixed();

    let ann = Announcement::decode(&bytes(&m["announcement"]["datagram"])).unwrap();
    let (i, _, _) = ann.open([(&f.stranger, Some(&f.bob))]).unwrap();
    assert_eq!(i, 0);

    let block = bytes(&m["host_hello"]["block"]);
    let hello = HostEncHello::decode(decode_block(&block).unwrap()).unwrap();
    hello.open(&box_key(K1)).unwrap();

    let block = bytes(&m["ctrl_hello"]["block"]);
    match CtrlEncHello::decode(decode_block(&block).unwrap()).unwrap() {
        CtrlEncHello::Hello { ciphertext, .. } => {
            CtrlEncHello::open_hello(
                &ciphertext,
                &box_key(CTRL_HELLO_KEY),
                &nonce(CTRL_HELLO_NONCE),
            )
            .unwrap();
        }
        other => panic!("{other:?}"),
    }

    let req = &m["session_body"][0];
    let mut host = host_session(&hexv(TLS_UNIQUE), false);
    let wire = bytes(&req["body"]);
    let (body, rest) = host.decode(&wire).unwrap();
    assert_eq!(body.json, req["json"].as_str().unwrap().as_bytes());
    assert!(rest.is_empty());

    let resp = &m["session_body"][1];
    let mut ctrl = ctrl_session(&hexv(TLS_UNIQUE), false);
    let wire = bytes(&resp["body"]);
    let (body, _) = ctrl.decode(&wire).unwrap();
    assert_eq!(body.json, resp["json"].as_str().unwrap().as_bytes());
}

/// Every harness accepts the empty input and a few trivial ones.
#[test]
fn harnesses_run_on_trivial_inputs() {
    for (_, run) in xrcp_fuzz::TARGETS {
        for input in [
            &b""[..],
            b"\x00",
            b"\x01",
            b"\x02\x00",
            &[0u8; 64],
            &[0xff; 64],
        ] {
            run(input);
        }
    }
}
