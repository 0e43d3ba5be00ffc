//! Block framing and the HELLO exchange (spec/xrcp.md §7).
//!
//! Right after TLS, each side sends exactly one 16384-byte block: the host its encrypted HELLO
//! (its DH key, the KEM public key, its CA fingerprint and app info), the controller either its
//! HELLO (the KEM ciphertext and an empty JSON object sealed under the first key of its send
//! chain) or an ERROR. Inner JSON is padded to 12288 bytes inside the box.

use serde::Deserialize;
use serde_json::Value;

use crate::codec::json::to_aeson_string;
use crate::codec::text::{base64url_decode, base64url_encode};
use crate::codec::{pad, unpad, Encoder, Parser, Version};
use crate::crypto::secretbox::{open_padded, seal_padded};
use crate::crypto::{
    BoxKey, CryptoError, KemCiphertext, KemPublicKey, KeyHash, Nonce, X25519PublicKey, TAG_LEN,
};
use crate::error::RcError;

/// Every XRCP block is exactly this long.
pub const BLOCK_SIZE: usize = 16384;
/// The HELLO JSON is padded to this size inside its box.
pub const HELLO_PAD: usize = 12288;

/// Pads block content to [`BLOCK_SIZE`]; content that does not fit is `BLOCK_SIZE`.
pub fn encode_block(content: &[u8]) -> Result<Vec<u8>, RcError> {
    pad(content, BLOCK_SIZE).map_err(|_| RcError::BlockSize)
}

/// The content of one block; a wrong length or length prefix is `BLOCK_SIZE`.
pub fn decode_block(block: &[u8]) -> Result<&[u8], RcError> {
    if block.len() != BLOCK_SIZE {
        return Err(RcError::BlockSize);
    }
    unpad(block).map_err(|_| RcError::BlockSize)
}

fn crypto_to_rc(e: CryptoError) -> RcError {
    match e {
        CryptoError::LargeMessage => RcError::BlockSize,
        _ => RcError::Decrypt,
    }
}

/// The host's HELLO, before encryption.
#[derive(Clone, Debug, PartialEq)]
pub struct HostHello {
    /// The protocol version the host chose from the invitation's range.
    pub version: Version,
    /// SHA-256 of the host's CA certificate; must equal the one presented in TLS.
    pub ca: KeyHash,
    /// The host's app info (app version, device name, encoding, compression).
    pub app: Value,
    /// The host's sntrup761 public key for this session.
    pub kem: KemPublicKey,
}

#[derive(Deserialize)]
struct HostHelloJson {
    v: u16,
    ca: String,
    #[serde(default)]
    app: Value,
    kem: String,
}

impl HostHello {
    /// JSON with fields in the reference's declaration order and `v` as a number.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"v\":{},\"ca\":\"{}\",\"app\":{},\"kem\":\"{}\"}}",
            self.version,
            self.ca.to_text(),
            to_aeson_string(&self.app),
            base64url_encode(self.kem.as_bytes())
        )
    }

    /// Missing `app` becomes null and unknown fields are ignored, as in the reference.
    pub fn from_json(json: &[u8]) -> Result<HostHello, RcError> {
        let h: HostHelloJson = serde_json::from_slice(json)
            .map_err(|e| RcError::syntax(format!("host HELLO: {e}")))?;
        let kem = KemPublicKey::from_bytes(&base64url_decode(&h.kem)?)
            .map_err(|_| RcError::syntax("host HELLO: bad KEM key"))?;
        Ok(HostHello {
            version: Version(h.v),
            ca: KeyHash::from_text(&h.ca)?,
            app: h.app,
            kem,
        })
    }
}

/// `"HELLO " ‖ host DH key ‖ nonce ‖ box(pad(json, 12288))` — the host's block content.
#[derive(Clone, Debug, PartialEq)]
pub struct HostEncHello {
    /// The host's fresh X25519 key for this session; with the invitation's `dh` it keys the box.
    pub dh_key: X25519PublicKey,
    /// The box's nonce.
    pub nonce: Nonce,
    /// `box(K1, nonce, pad(json, 12288))`, tag first (spec/xrcp.md §7.2).
    pub ciphertext: Vec<u8>,
}

/// Why a host HELLO did not open ([`HostEncHello::open_proving`]).
#[derive(Debug)]
pub struct HelloOpenError {
    /// The error to report (`DECRYPT`, `SYNTAX`, …).
    pub error: RcError,
    /// The box authenticated: its sender held the key.
    pub authenticated: bool,
}

impl HostEncHello {
    /// Seals `hello` under `key` = X25519(invitation dh, host DH key), whose public half
    /// `dh_key` goes in clear.
    pub fn seal(
        hello: &HostHello,
        key: &BoxKey,
        dh_key: X25519PublicKey,
        nonce: Nonce,
    ) -> Result<HostEncHello, RcError> {
        let ciphertext = seal_padded(key, &nonce, hello.to_json().as_bytes(), HELLO_PAD)
            .map_err(crypto_to_rc)?;
        Ok(HostEncHello {
            dh_key,
            nonce,
            ciphertext,
        })
    }

    /// Opens the box with `key` and parses the HELLO JSON.
    pub fn open(&self, key: &BoxKey) -> Result<HostHello, RcError> {
        self.open_proving(key).map_err(|refused| refused.error)
    }

    /// [`open`](Self::open), also telling whether the box authenticated under `key`: a HELLO
    /// whose box authenticates was sealed by someone holding the key (the invitation's DH key
    /// is needed for it), whatever is wrong with its content.
    pub fn open_proving(&self, key: &BoxKey) -> Result<HostHello, HelloOpenError> {
        let json = open_padded(key, &self.nonce, &self.ciphertext).map_err(|e| HelloOpenError {
            authenticated: !matches!(e, CryptoError::Decrypt),
            error: crypto_to_rc(e),
        })?;
        HostHello::from_json(&json).map_err(|error| HelloOpenError {
            error,
            authenticated: true,
        })
    }

    /// The block content: `"HELLO " ‖ 2c ‖ SPKI(dh_key) ‖ nonce ‖ ciphertext`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(6 + 45 + 24 + self.ciphertext.len());
        e.raw(b"HELLO ");
        self.dh_key.encode(&mut e);
        e.raw(&self.nonce.0).raw(&self.ciphertext);
        e.finish()
    }

    /// Parses a block's content (after the block's own length and padding are removed).
    pub fn decode(content: &[u8]) -> Result<HostEncHello, RcError> {
        let mut p = Parser::new(content);
        p.literal(b"HELLO ")?;
        let dh_key = X25519PublicKey::decode(&mut p)?;
        let nonce = Nonce(p.array()?);
        Ok(HostEncHello {
            dh_key,
            nonce,
            ciphertext: p.tail().to_vec(),
        })
    }
}

/// The controller's reply block content.
/// The controller's block content: its HELLO, or an ERROR that tells the host why it was
/// refused (spec/xrcp.md §7.3, §7.4).
#[derive(Clone, Debug, PartialEq)]
pub enum CtrlEncHello {
    /// `"HELLO " ‖ Large(KEM ciphertext) ‖ box(pad("{}", 12288))`; the box key and nonce are
    /// the first step of the controller's send chain, so no nonce travels.
    Hello {
        /// Boxed: 1039 bytes would make every `CtrlEncHello` that large.
        kem_ciphertext: Box<KemCiphertext>,
        /// `box(pad("{}", 12288))` under chain A's first step, tag first.
        ciphertext: Vec<u8>,
    },
    /// `"ERROR " ‖ nonce ‖ box(text)` under the HELLO DH key. The reference defines but never
    /// sends it; we send it to say why a host was refused.
    Error {
        /// The box's nonce (sent in clear).
        nonce: Nonce,
        /// `box(K1, nonce, pad(text, 12288))`, tag first.
        ciphertext: Vec<u8>,
    },
}

impl CtrlEncHello {
    /// The controller HELLO; `(key, nonce)` is the first step of the send chain.
    pub fn seal_hello(
        kem_ciphertext: KemCiphertext,
        key: &BoxKey,
        nonce: &Nonce,
    ) -> Result<CtrlEncHello, RcError> {
        let ciphertext = seal_padded(key, nonce, b"{}", HELLO_PAD).map_err(crypto_to_rc)?;
        Ok(CtrlEncHello::Hello {
            kem_ciphertext: Box::new(kem_ciphertext),
            ciphertext,
        })
    }

    /// An ERROR block with `message` padded to [`HELLO_PAD`] and sealed under the HELLO DH
    /// key (the host opens it with the padded box, like the HELLO). Over-long messages are
    /// cut at a character boundary.
    pub fn seal_error(message: &str, hello_key: &BoxKey, nonce: Nonce) -> CtrlEncHello {
        let mut end = message.len().min(HELLO_PAD - 2);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let ciphertext = seal_padded(hello_key, &nonce, &message.as_bytes()[..end], HELLO_PAD)
            .expect("the message was cut to fit the pad");
        CtrlEncHello::Error { nonce, ciphertext }
    }

    /// Checks the controller HELLO's box (a JSON object inside) with the first step of the
    /// host's receive chain.
    pub fn open_hello(ciphertext: &[u8], key: &BoxKey, nonce: &Nonce) -> Result<Value, RcError> {
        let json = open_padded(key, nonce, ciphertext).map_err(crypto_to_rc)?;
        let v: Value = serde_json::from_slice(&json)
            .map_err(|e| RcError::syntax(format!("controller HELLO: {e}")))?;
        if !v.is_object() {
            return Err(RcError::syntax("controller HELLO is not an object"));
        }
        Ok(v)
    }

    /// The text of an ERROR block; undecryptable → `DECRYPT`.
    pub fn open_error(
        ciphertext: &[u8],
        hello_key: &BoxKey,
        nonce: &Nonce,
    ) -> Result<String, RcError> {
        let text = open_padded(hello_key, nonce, ciphertext).map_err(crypto_to_rc)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// The block content (`HELLO ` or `ERROR ` form); a KEM ciphertext over 65535 bytes is refused.
    pub fn encode(&self) -> Result<Vec<u8>, RcError> {
        let mut e = Encoder::new();
        match self {
            CtrlEncHello::Hello {
                kem_ciphertext,
                ciphertext,
            } => {
                e.raw(b"HELLO ").large(kem_ciphertext.as_bytes())?;
                e.raw(ciphertext);
            }
            CtrlEncHello::Error { nonce, ciphertext } => {
                e.raw(b"ERROR ").raw(&nonce.0).raw(ciphertext);
            }
        }
        Ok(e.finish())
    }

    /// Parses a block's content: the `HELLO ` or the `ERROR ` form.
    pub fn decode(content: &[u8]) -> Result<CtrlEncHello, RcError> {
        let mut p = Parser::new(content);
        match p.take(6)? {
            b"HELLO " => {
                let kem_ciphertext = Box::new(
                    KemCiphertext::from_bytes(p.large()?)
                        .map_err(|_| RcError::syntax("bad KEM ciphertext length"))?,
                );
                let ciphertext = p.tail().to_vec();
                if ciphertext.len() < TAG_LEN {
                    return Err(RcError::syntax("controller HELLO too short"));
                }
                Ok(CtrlEncHello::Hello {
                    kem_ciphertext,
                    ciphertext,
                })
            }
            b"ERROR " => {
                let nonce = Nonce(p.array()?);
                Ok(CtrlEncHello::Error {
                    nonce,
                    ciphertext: p.tail().to_vec(),
                })
            }
            _ => Err(RcError::syntax("expected HELLO or ERROR")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{chain_init, HybridSecret, KemKeyPair, KemSharedSecret, X25519SecretKey};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn arr(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn alice_bob() -> (X25519SecretKey, X25519SecretKey) {
        (
            X25519SecretKey::from_bytes(arr(
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            )),
            X25519SecretKey::from_bytes(arr(
                "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
            )),
        )
    }

    fn model_host_hello() -> HostHello {
        let kem: Vec<u8> = (0..1158).map(|i| (i % 256) as u8).collect();
        HostHello {
            version: Version(1),
            ca: KeyHash(core::array::from_fn(|i| i as u8 + 32)),
            app: serde_json::json!({"deviceName": "My Phone"}),
            kem: KemPublicKey::from_bytes(&kem).unwrap(),
        }
    }

    /// The model values of spec/vectors/gen.py (spec/xrcp.md §14.7).
    #[test]
    fn host_hello_block_model() {
        let (alice, bob) = alice_bob();
        let k1 = bob.dh(&alice.public()).unwrap();
        let hello = model_host_hello();
        assert_eq!(hello.to_json().len(), 1644);
        let nonce = Nonce(core::array::from_fn(|i| i as u8 + 100));
        let enc = HostEncHello::seal(&hello, &k1, bob.public(), nonce).unwrap();
        let content = enc.encode();
        assert_eq!(content.len(), 12379);
        let block = encode_block(&content).unwrap();
        assert_eq!(hex::encode(&block[..8]), "305b48454c4c4f20");
        assert_eq!(
            hex::encode(Sha256::digest(&block)),
            "4590b9eafc1b722e2c1d254b9867486e02595743eff32683af9bbcd4dca4b303"
        );
        let back = HostEncHello::decode(decode_block(&block).unwrap()).unwrap();
        assert_eq!(back, enc);
        assert_eq!(back.open(&k1).unwrap(), hello);
    }

    #[test]
    fn ctrl_hello_block_model() {
        let dh = BoxKey::from_bytes(arr(
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
        ));
        let hybrid = HybridSecret::new(&dh, &KemSharedSecret::from_bytes([0x42; 32]));
        let (mut a, _) = chain_init(&hybrid);
        let (key, nonce) = a.advance();
        let ct: Vec<u8> = (0..1039).map(|i| ((7 * i) % 256) as u8).collect();
        let hello = CtrlEncHello::seal_hello(KemCiphertext::from_bytes(&ct).unwrap(), &key, &nonce)
            .unwrap();
        let content = hello.encode().unwrap();
        assert_eq!(content.len(), 13351);
        let block = encode_block(&content).unwrap();
        assert_eq!(hex::encode(&block[..10]), "342748454c4c4f20040f");
        assert_eq!(
            hex::encode(Sha256::digest(&block)),
            "e79e4be9c1f52a33ba15e026296cf3a61541b7231fbb4a2d53a7110188a13fc9"
        );
        match CtrlEncHello::decode(decode_block(&block).unwrap()).unwrap() {
            CtrlEncHello::Hello { ciphertext, .. } => {
                assert_eq!(
                    CtrlEncHello::open_hello(&ciphertext, &key, &nonce).unwrap(),
                    serde_json::json!({})
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn error_block_round_trip() {
        let k = BoxKey::from_bytes([4; 32]);
        let e = CtrlEncHello::seal_error("busy", &k, Nonce([1; 24]));
        let back = CtrlEncHello::decode(&e.encode().unwrap()).unwrap();
        match back {
            CtrlEncHello::Error { nonce, ciphertext } => {
                assert_eq!(
                    CtrlEncHello::open_error(&ciphertext, &k, &nonce).unwrap(),
                    "busy"
                );
                let wrong = BoxKey::from_bytes([5; 32]);
                assert_eq!(
                    CtrlEncHello::open_error(&ciphertext, &wrong, &nonce).unwrap_err(),
                    RcError::Decrypt
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn block_errors() {
        assert_eq!(decode_block(&[0; 16383]).unwrap_err(), RcError::BlockSize);
        assert_eq!(decode_block(&[0; 16385]).unwrap_err(), RcError::BlockSize);
        let mut bad = vec![0u8; BLOCK_SIZE];
        bad[0] = 0x40; // claims 16384 bytes of content
        assert_eq!(decode_block(&bad).unwrap_err(), RcError::BlockSize);
        assert_eq!(encode_block(&[0; 16383]).unwrap_err(), RcError::BlockSize);
        assert_eq!(encode_block(&[0; 16382]).unwrap().len(), BLOCK_SIZE);
    }

    #[test]
    fn hello_errors_have_reference_kinds() {
        let (alice, bob) = alice_bob();
        let k1 = bob.dh(&alice.public()).unwrap();
        let enc =
            HostEncHello::seal(&model_host_hello(), &k1, bob.public(), Nonce([0; 24])).unwrap();
        // Wrong key → DECRYPT.
        let wrong = BoxKey::from_bytes([1; 32]);
        assert_eq!(enc.open(&wrong).unwrap_err(), RcError::Decrypt);
        // Bad JSON inside a valid box → SYNTAX.
        let junk = HostEncHello {
            ciphertext: seal_padded(&k1, &enc.nonce, b"{\"v\":\"1\"}", HELLO_PAD).unwrap(),
            ..enc.clone()
        };
        assert!(matches!(junk.open(&k1), Err(RcError::Syntax(_))));
        // JSON too large for the HELLO pad → BLOCK_SIZE.
        let mut big = model_host_hello();
        big.app = serde_json::json!({"x": "y".repeat(HELLO_PAD)});
        assert_eq!(
            HostEncHello::seal(&big, &k1, bob.public(), Nonce([0; 24])).unwrap_err(),
            RcError::BlockSize
        );
        // Missing app is null; unknown fields are ignored; `v` must be a number.
        let kem = KemKeyPair::generate();
        let json = format!(
            "{{\"v\":1,\"ca\":\"{}\",\"kem\":\"{}\",\"extra\":true}}",
            KeyHash([0; 32]).to_text(),
            base64url_encode(kem.public().as_bytes())
        );
        assert_eq!(
            HostHello::from_json(json.as_bytes()).unwrap().app,
            Value::Null
        );
        let short_kem = format!(
            "{{\"v\":1,\"ca\":\"{}\",\"kem\":\"AAAA\"}}",
            KeyHash([0; 32]).to_text()
        );
        assert!(matches!(
            HostHello::from_json(short_kem.as_bytes()),
            Err(RcError::Syntax(_))
        ));
        assert!(matches!(
            CtrlEncHello::decode(b"HELLO \x00\x01x"),
            Err(RcError::Syntax(_))
        ));
        assert!(matches!(
            CtrlEncHello::decode(b"HOLA  "),
            Err(RcError::Syntax(_))
        ));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = HostEncHello::decode(&buf);
            let _ = CtrlEncHello::decode(&buf);
            let _ = HostHello::from_json(&buf);
            let _ = decode_block(&buf);
            let mut b = b"HELLO ".to_vec();
            b.extend_from_slice(&buf);
            let _ = HostEncHello::decode(&b);
            let _ = CtrlEncHello::decode(&b);
        }
    }
}
