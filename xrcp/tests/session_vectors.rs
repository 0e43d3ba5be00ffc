//! Known-answer vectors for session bodies: `spec/vectors/session.json`, written by
//! `spec/vectors/gen.py` (a Python model of spec/xrcp.md §8 and §10.2, checked against
//! libsodium, `cryptography` and libzstd). Nothing here writes that file.
//!
//! For every case the code under test derives the keys of the case's corrId, encodes the
//! case's JSON and must produce the recorded body and attachment byte for byte (Ed25519 is
//! deterministic; a compressed JSON this short is one raw zstd block, which libzstd at the
//! reference's level 3 emits as well). The receiving side must then decode the recorded bytes
//! back to the JSON and the file.

mod session_common;

use serde_json::Value;
use session_common::pair_with;
use xrcp::session::{FileDecryptor, FileDigest, FileEncryptor, RemoteSession};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/vectors/session.json");

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn sessions(inputs: &Value, compression: bool) -> (RemoteSession, RemoteSession) {
    let hybrid: [u8; 32] = unhex(&inputs["hybrid_secret"]).try_into().unwrap();
    let unique = unhex(&inputs["tls_unique"]);
    pair_with(hybrid, &unique, &unique, compression, compression)
}

#[test]
fn session_vectors() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let inputs = &doc["inputs"];
    // The seeds the shared test sessions sign with must be the ones the vectors were made with.
    assert_eq!(inputs["session_key_seed"], session_common::SESSION_KEY);
    assert_eq!(inputs["identity_key_seed"], session_common::IDENTITY_KEY);
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);

    for compression in [false, true] {
        let expected: Vec<&Value> = cases
            .iter()
            .filter(|c| c["compression"] == compression)
            .collect();
        assert!(!expected.is_empty());
        // Each compression setting is one fresh session, its cases in sending order.
        let (mut ctrl, mut host) = sessions(inputs, compression);
        for case in expected {
            let name = case["name"].as_str().unwrap();
            let json = case["json"].as_str().unwrap();
            let request = match case["direction"].as_str().unwrap() {
                "controller_to_host" => true,
                "host_to_controller" => false,
                other => panic!("{name}: direction {other}"),
            };

            // Sending side: keys, body and attachment, byte for byte.
            let sender = if request { &mut ctrl } else { &mut host };
            let snd = sender.keys_mut().snd_keys().unwrap();
            assert_eq!(
                u64::from(snd.corr_id),
                case["corr_id"].as_u64().unwrap(),
                "{name}: corrId"
            );
            let hexed = |b: &[u8]| Value::from(hex::encode(b));
            assert_eq!(
                hexed(snd.keys.body.key.as_bytes()),
                case["body_key"],
                "{name}: body key"
            );
            assert_eq!(
                hexed(&snd.keys.body.nonce.0),
                case["body_nonce"],
                "{name}: body nonce"
            );
            assert_eq!(
                hexed(snd.keys.file.key.as_bytes()),
                case["file_key"],
                "{name}: file key"
            );
            assert_eq!(
                hexed(&snd.keys.file.nonce.0),
                case["file_nonce"],
                "{name}: file nonce"
            );
            let body = sender
                .crypto()
                .encrypt_encode_body(snd.corr_id, &snd.keys.body, json.as_bytes())
                .unwrap();
            assert_eq!(hexed(&body), case["body"], "{name}: body bytes");
            if let Some(file) = case.get("file") {
                let data = unhex(file);
                let announced: Value = serde_json::from_str(json).unwrap();
                assert_eq!(
                    announced["fileDigest"],
                    FileDigest::of(&data).to_text().as_str(),
                    "{name}: file digest text"
                );
                let mut enc = FileEncryptor::new(&snd.keys.file, data.len() as u32).unwrap();
                let mut wire = enc.header().to_vec();
                let mut buf = data.clone();
                enc.encrypt(&mut buf).unwrap();
                wire.extend_from_slice(&buf);
                wire.extend_from_slice(&enc.finish().unwrap());
                assert_eq!(hexed(&wire), case["attachment"], "{name}: attachment bytes");
            }

            // Receiving side: the recorded bytes decode to the JSON and the file.
            let receiver = if request { &mut host } else { &mut ctrl };
            let recorded = unhex(&case["body"]);
            let (decoded, rest) = receiver.decode(&recorded).unwrap();
            assert!(rest.is_empty(), "{name}");
            assert_eq!(decoded.json, json.as_bytes(), "{name}: decoded JSON");
            assert_eq!(
                u64::from(decoded.corr_id),
                case["corr_id"].as_u64().unwrap()
            );
            if let Some(att) = case.get("attachment") {
                let data = unhex(&case["file"]);
                let wire = unhex(att);
                let mut dec =
                    FileDecryptor::new(&decoded.file_key, data.len() as u32, FileDigest::of(&data));
                let mut out = Vec::new();
                assert_eq!(dec.push(&wire, &mut out).unwrap(), wire.len());
                dec.finish().unwrap();
                assert_eq!(out, data, "{name}: decoded file");
            }
        }
    }
}
