//! Session decoders never panic on arbitrary input, and encodings round-trip.

mod session_common;

use proptest::prelude::*;
use session_common::pair;
use xrcp::session::{
    owsf_to_tagged, rc_error_from_json, AppVersion, BodyHeadReader, CtrlAppInfo, FileDecryptor,
    FileDigest, HostAppInfo, RemoteCommand, RemoteProtocolError, RemoteResponse,
};

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z_]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("_owsf".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn body_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600),
                                 cut in 0usize..600) {
        let (mut ctrl, mut host) = pair(false);
        let _ = host.decode_command(&bytes);
        let _ = ctrl.decode_response(&bytes);
        let (mut ctrl_z, mut host_z) = pair(true);
        let _ = host_z.decode(&bytes);
        let _ = ctrl_z.decode(&bytes);
        for sigs in [false, true] {
            let mut r = BodyHeadReader::new(sigs);
            let cut = cut.min(bytes.len());
            let ok = r.push(&bytes[..cut]).and_then(|_| r.push(&bytes[cut..]));
            if ok.is_ok() {
                let _ = r.finish();
            }
        }
    }

    #[test]
    fn file_decryptor_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300),
                                   size in 0u32..400) {
        let (mut ctrl, _) = pair(false);
        let key = ctrl.keys_mut().snd_keys().unwrap().keys.file;
        let mut dec = FileDecryptor::new(&key, size, FileDigest([0; 64]));
        let mut out = Vec::new();
        let mut failed = false;
        for chunk in bytes.chunks(7) {
            match dec.push(chunk, &mut out) {
                Ok(n) => prop_assert!(n <= chunk.len()),
                Err(_) => { failed = true; break; }
            }
        }
        if !failed {
            prop_assert!(dec.finish().is_err());
        }
    }

    #[test]
    fn json_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200),
                                 v in arb_json()) {
        let _ = RemoteCommand::from_json_bytes(&bytes);
        let _ = RemoteResponse::from_json_bytes(&bytes);
        let text = serde_json::to_vec(&v).unwrap();
        let _ = RemoteCommand::from_json_bytes(&text);
        let _ = RemoteResponse::from_json_value(owsf_to_tagged(v.clone()));
        let _ = RemoteProtocolError::from_json(&v);
        let _ = rc_error_from_json(&v);
        let _ = CtrlAppInfo::from_json(&v);
        let _ = HostAppInfo::from_json(&v);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = s.parse::<AppVersion>();
        }
    }

}

proptest! {
    // Each case builds sessions, signs and verifies (slow unoptimised): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A request with one bit flipped anywhere is refused, for the reason its place in the
    /// body dictates (spec/xrcp.md §10.2): a flip under the signatures (corrId, ct, ssig,
    /// idsig) is `CTRL_AUTH`; a flipped signature length byte is a framing error; a flipped
    /// `ctLen` misframes the body (framing error) or shifts the signed span (`CTRL_AUTH`).
    /// Every refusal comes before the id window moves: the unmodified body still decodes
    /// afterwards. With the signature check removed, flips in ct end as `DECRYPT` after
    /// using up the id, and flips in the signatures are accepted.
    #[test]
    fn mutated_requests_are_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut ctrl, mut host) = pair(false);
        let cmd = RemoteCommand::Send { command: "/u".into(), retry_number: 1 };
        let body = ctrl.encode_command(&cmd).unwrap().bytes;
        let ct_len = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
        let ssig_len_at = 8 + ct_len;
        let idsig_len_at = ssig_len_at + 65;
        prop_assert_eq!(body.len(), idsig_len_at + 65);
        let i = pos.index(body.len());
        let mut mutated = body.clone();
        mutated[i] ^= 1 << bit;
        let err = match host.decode_command(&mutated) {
            Ok((got, _, _)) => {
                return Err(TestCaseError::fail(format!(
                    "byte {i} bit {bit} flipped, accepted as {got:?}"
                )))
            }
            Err(e) => e,
        };
        let framing = matches!(
            err,
            RemoteProtocolError::InvalidBody(_) | RemoteProtocolError::InvalidSize
        );
        match i {
            4..=7 => prop_assert!(
                framing || err == RemoteProtocolError::CTRL_AUTH,
                "ctLen flip at {}: {:?}", i, err
            ),
            _ if i == ssig_len_at || i == idsig_len_at => {
                prop_assert!(framing, "signature length flip at {}: {:?}", i, err)
            }
            _ => prop_assert_eq!(err, RemoteProtocolError::CTRL_AUTH, "flip at {}", i),
        }
        // The refused body did not use up its id.
        let (got, _, rest) = host.decode_command(&body).unwrap();
        prop_assert_eq!(got, cmd);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn commands_round_trip(text in ".{0,40}", retry in any::<i64>(), wait in any::<i64>()) {
        let (mut ctrl, mut host) = pair(true);
        for cmd in [
            RemoteCommand::Send { command: text.clone(), retry_number: retry },
            RemoteCommand::Recv { wait },
        ] {
            let body = ctrl.encode_command(&cmd).unwrap();
            let (got, _, rest) = host.decode_command(&body.bytes).unwrap();
            prop_assert_eq!(got, cmd);
            prop_assert!(rest.is_empty());
        }
    }
}
