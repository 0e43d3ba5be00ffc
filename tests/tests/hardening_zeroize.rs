//! Hardening: secrets are wiped on drop and never shown by `Debug`.
//!
//! Without `unsafe` (forbidden here) a test cannot read freed memory, so wiping is shown
//! through the type system: the key types our wrappers hold, the public fields that carry
//! secrets, and the copies the API hands out must implement [`zeroize::ZeroizeOnDrop`].
//! The check is an autoref-specialisation probe, so a missing implementation fails the test
//! at run time (with the list of offenders) instead of breaking the build. x25519-dalek 2
//! still uses `#[zeroize(drop)]` (a `Drop` that calls `zeroize`, no marker); for its types
//! `Zeroize + Drop` is what is checked.
//!
//! The wrappers' fields are private, so which wrapper wipes is read from the source
//! (`secret_holders_are_derived_from_the_source`): the type definitions of `xrcp`,
//! `xrcp-host` and `xrcp-ctrl` are parsed, every type holding a wiping leaf type (one the
//! probe checks: `Zeroizing`, x25519-dalek's `StaticSecret`/`SharedSecret`, ed25519-dalek's
//! `SigningKey`, sntrup761's `DecapsulationKey`) is a holder, and so, transitively, is every
//! type holding a holder. Each wrapper the API exposes must be such a holder, and no type may
//! keep bytes under a secret's name (`key`, `secret`, `seed`, `priv`, `unique`) in a plain
//! `[u8; N]`, `Vec<u8>` or `String`. The dependency checks fail if a crate's `zeroize` feature
//! is dropped.
//!
//! `Debug` is checked on a value of every secret-bearing type the API exposes, against
//! every encoding of the secret bytes it holds.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::Ipv4Addr;

use xrcp::crypto::{
    BoxKey, ChainKey, Ed25519SecretKey, HybridSecret, KemKeyPair, KeyHash, Nonce, X25519SecretKey,
};
use xrcp::handshake::{ControllerHandshake, ControllerKeys, HostHandshake, HostKeys};
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::session::{RemoteSession, RemoteSignatures, SessionSecrets};
use xrcp::tls::{
    self, CaRole, Pin, RecoveredFinished, SessionCredentials, TlsIdentity, TlsSession,
};
use xrcp_ctrl::remote::open_session;
use xrcp_host::remote::prepare_session;
use xrcp_tests::hardening::{find_leaks, start_controller, LinkSettings};
use zeroize::Zeroizing;

// --- the ZeroizeOnDrop probe --------------------------------------------------------------

struct Probe<T: ?Sized>(PhantomData<T>);

trait Wiped {
    fn wiped(&self) -> bool {
        true
    }
}
impl<T: zeroize::ZeroizeOnDrop + ?Sized> Wiped for Probe<T> {}

trait NotWiped {
    fn wiped(&self) -> bool {
        false
    }
}
impl<T: ?Sized> NotWiped for &Probe<T> {}

/// The older way, `#[zeroize(drop)]` (x25519-dalek 2): `Zeroize` plus a `Drop` of its own,
/// which calls `zeroize`, without the `ZeroizeOnDrop` marker.
trait DropsZeroized {
    fn drops_zeroized(&self) -> bool {
        true
    }
}
#[allow(drop_bounds)]
impl<T: zeroize::Zeroize + Drop> DropsZeroized for Probe<T> {}

trait NotDropsZeroized {
    fn drops_zeroized(&self) -> bool {
        false
    }
}
impl<T: ?Sized> NotDropsZeroized for &Probe<T> {}

/// Whether the probed type implements `ZeroizeOnDrop` (the concrete type must be known at
/// the call site).
macro_rules! wiped {
    ($probe:expr) => {
        (&$probe).wiped()
    };
}

/// Whether the probed type implements `Zeroize` and `Drop` itself.
macro_rules! drops_zeroized {
    ($probe:expr) => {
        (&$probe).drops_zeroized()
    };
}

fn of_type<T: ?Sized>() -> Probe<T> {
    Probe(PhantomData)
}

fn of_value<T>(_: &T) -> Probe<T> {
    Probe(PhantomData)
}

/// The type of a field, from an accessor.
fn of_field<S, F>(_: fn(&S) -> &F) -> Probe<F> {
    Probe(PhantomData)
}

#[test]
fn the_probe_tells_wiped_from_plain_types() {
    assert!(wiped!(of_type::<Zeroizing<Vec<u8>>>()));
    assert!(!wiped!(of_type::<Vec<u8>>()));
    assert!(!wiped!(of_type::<[u8; 32]>()));
    assert!(!wiped!(of_type::<String>()));
    assert!(drops_zeroized!(of_type::<x25519_dalek::StaticSecret>()));
    // Zeroize without a Drop of its own. (The check is a heuristic: `Vec` has both and does
    // not wipe on drop; it is only applied to types whose Drop is known to zeroize.)
    assert!(!drops_zeroized!(of_type::<[u8; 32]>()));
}

#[test]
fn secret_material_is_held_in_types_that_zeroize_on_drop() {
    let x = X25519SecretKey::generate();
    let ed = Ed25519SecretKey::generate();
    let ca = TlsIdentity::generate(CaRole::Host).unwrap();
    let checks: Vec<(&str, bool)> = vec![
        // What the wrappers hold (field types from the source; fails if a crate's `zeroize`
        // feature is turned off).
        (
            "x25519_dalek::StaticSecret (in X25519SecretKey; `#[zeroize(drop)]`)",
            wiped!(of_type::<x25519_dalek::StaticSecret>())
                || drops_zeroized!(of_type::<x25519_dalek::StaticSecret>()),
        ),
        (
            "x25519_dalek::SharedSecret (X25519SecretKey::dh; `#[zeroize(drop)]`)",
            drops_zeroized!(of_type::<x25519_dalek::SharedSecret>()),
        ),
        (
            "ed25519_dalek::SigningKey (in Ed25519SecretKey)",
            wiped!(of_type::<ed25519_dalek::SigningKey>()),
        ),
        (
            "sntrup761::DecapsulationKey (in KemKeyPair)",
            wiped!(of_type::<sntrup761::DecapsulationKey>()),
        ),
        (
            "Zeroizing<[u8; 32]> (in ChainKey, HybridSecret, BoxKey, KemSharedSecret)",
            wiped!(of_type::<Zeroizing<[u8; 32]>>()),
        ),
        // Public fields that carry secrets.
        (
            "TlsSession::tls_unique",
            wiped!(of_field(|s: &TlsSession| &s.tls_unique)),
        ),
        (
            "RecoveredFinished::verify_data",
            wiped!(of_field(|r: &RecoveredFinished| &r.verify_data)),
        ),
        // Copies of secrets handed out by the API.
        (
            "X25519SecretKey::to_bytes()",
            wiped!(of_value(&x.to_bytes())),
        ),
        (
            "Ed25519SecretKey::to_bytes()",
            wiped!(of_value(&ed.to_bytes())),
        ),
        (
            "TlsIdentity::to_der_parts().0 (PKCS#8 key)",
            wiped!(of_value(&ca.to_der_parts().0)),
        ),
    ];
    let failed: Vec<&str> = checks.iter().filter(|c| !c.1).map(|c| c.0).collect();

    for (name, ok) in &checks {
        println!("ZeroizeOnDrop {ok:5} {name}");
    }
    assert!(failed.is_empty(), "not ZeroizeOnDrop: {failed:?}");
}

// --- which types hold secrets, from the source ---------------------------------------------

/// Leaf types that wipe their bytes on drop (each checked by the probe above).
const WIPING_LEAVES: [&str; 5] = [
    "Zeroizing",
    "StaticSecret",
    "SharedSecret",
    "SigningKey",
    "DecapsulationKey",
];

/// The secret-bearing wrapper types of the API. Each must hold a wiping type according to
/// its definition in the source; replacing the `Zeroizing` (or dalek, or sntrup761) field of
/// any of them with plain bytes fails the test.
const WRAPPERS: [&str; 22] = [
    "X25519SecretKey",
    "Ed25519SecretKey",
    "ChainKey",
    "HybridSecret",
    "BoxKey",
    "KemKeyPair",
    "KemSharedSecret",
    "SbKeyNonce",
    "MessageKeys",
    "SessionKeys",
    "ControllerKeys",
    "HostKeys",
    "SessionSecrets",
    "RemoteSignatures",
    "RemoteCrypto",
    "RemoteKeys",
    "TlsIdentity",
    "SessionCredentials",
    "TlsSession",
    "RecoveredFinished",
    "StoredHostPairing",
    "StoredCtrlPairing",
];

/// Fields with a secret's name in a plain type, reviewed: (type, field, why it may stay).
const PLAIN_FIELDS_REVIEWED: [(&str, &str, &str); 1] = [(
    "CryptoFileArgs",
    "file_key",
    "the chat application's key of a local file, relayed as text inside command JSON (which \
     is plain text as a whole); no XRCP key material",
)];

/// Every `struct`/`enum` definition (name → bodies) in the crates' sources, comments removed.
fn type_definitions() -> Vec<(String, String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = ["xrcp/src", "xrcp-host/src", "xrcp-ctrl/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() > 20,
        "sources not found under {}",
        root.display()
    );
    let mut defs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let src: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let bytes = src.as_bytes();
        let mut at = 0;
        while let Some(found) = next_item(&src, at) {
            let (name, open) = found;
            at = open + 1;
            let (o, c) = if bytes[open] == b'{' {
                (b'{', b'}')
            } else {
                (b'(', b')')
            };
            let mut depth = 1;
            let mut i = open + 1;
            while depth > 0 && i < bytes.len() {
                if bytes[i] == o {
                    depth += 1;
                } else if bytes[i] == c {
                    depth -= 1;
                }
                i += 1;
            }
            defs.push((
                name,
                src[open + 1..i - 1].to_owned(),
                path.display().to_string(),
            ));
        }
    }
    defs
}

/// The next `struct Name …{` / `struct Name(` / `enum Name …{` from `at`: the name and the
/// position of the opening bracket (unit structs, `struct X;`, are skipped).
fn next_item(src: &str, mut at: usize) -> Option<(String, usize)> {
    loop {
        let rest = &src[at..];
        let found = ["struct ", "enum "]
            .iter()
            .filter_map(|kw| rest.find(kw).map(|i| (i, kw.len())))
            .min()?;
        let start = at + found.0;
        at = start + found.1;
        let preceded_ok = start == 0 || !src.as_bytes()[start - 1].is_ascii_alphanumeric();
        let name: String = src[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !preceded_ok || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let after = at + name.len();
        let open = src[after..].find(['{', '(', ';'])? + after;
        if src.as_bytes()[open] == b';' {
            continue;
        }
        return Some((name, open));
    }
}

fn mentions(body: &str, word: &str) -> bool {
    body.match_indices(word).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn secret_holders_are_derived_from_the_source() {
    let defs = type_definitions();
    // Holders: types holding a wiping leaf, then, until nothing changes, types holding those.
    let mut holders: std::collections::BTreeSet<String> = Default::default();
    let mut secret: Vec<String> = WIPING_LEAVES.iter().map(|s| s.to_string()).collect();
    loop {
        let before = holders.len();
        for (name, body, _) in &defs {
            if !holders.contains(name) && secret.iter().any(|w| mentions(body, w)) {
                holders.insert(name.clone());
                secret.push(name.clone());
            }
        }
        if holders.len() == before {
            break;
        }
    }
    let mut problems = Vec::new();
    for w in WRAPPERS {
        assert!(
            defs.iter().any(|(n, _, _)| n == w),
            "{w}: no definition found in the sources (renamed? update WRAPPERS)"
        );
        if !holders.contains(w) {
            problems.push(format!("{w} holds no type that wipes on drop"));
        }
    }
    for (name, body, path) in &defs {
        for field in body.split(',') {
            let Some((fname, ty)) = field.split_once(':').filter(|(_, t)| !t.starts_with(':'))
            else {
                continue;
            };
            let fname = fname.split_whitespace().last().unwrap_or("").to_lowercase();
            let secretish = ["key", "secret", "seed", "priv", "unique"]
                .iter()
                .any(|w| fname.contains(w));
            let plain = ["[u8", "Vec<u8>", "String"].iter().any(|t| ty.contains(t))
                && !ty.contains("Zeroizing");
            let reviewed = PLAIN_FIELDS_REVIEWED
                .iter()
                .any(|(t, f, _)| t == name && *f == fname);
            if secretish && plain && !reviewed {
                problems.push(format!(
                    "{name}::{fname} ({path}) keeps a secret in a plain `{}`",
                    ty.trim()
                ));
            }
        }
    }
    println!(
        "types holding wiped secrets ({}): {holders:?}",
        holders.len()
    );
    assert!(
        problems.is_empty(),
        "secrets that are not wiped:\n{}",
        problems.join("\n")
    );
}

// --- Debug ---------------------------------------------------------------------------------

fn random(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 24);
    while out.len() < n {
        out.extend_from_slice(&Nonce::random().0);
    }
    out.truncate(n);
    out
}

fn random32() -> [u8; 32] {
    random(32).try_into().unwrap()
}

fn ed25519_seed(pkcs8: &[u8]) -> Vec<u8> {
    let at = pkcs8
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .expect("PKCS#8 Ed25519 private key");
    pkcs8[at + 4..at + 36].to_vec()
}

fn b64(s: &str) -> Vec<u8> {
    xrcp::codec::text::base64url_decode(s).unwrap()
}

/// Collects `Debug` findings (both `{:?}` and `{:#?}`) of `value` against `secrets`.
struct DebugAudit {
    problems: Vec<String>,
    checked: Vec<String>,
}

impl DebugAudit {
    fn new() -> Self {
        DebugAudit {
            problems: Vec::new(),
            checked: Vec::new(),
        }
    }

    fn check(&mut self, name: &str, value: &dyn Debug, secrets: &[(&str, &[u8])]) {
        let secrets: Vec<(String, Vec<u8>)> = secrets
            .iter()
            .map(|(n, s)| ((*n).to_owned(), s.to_vec()))
            .collect();
        for form in [format!("{value:?}"), format!("{value:#?}")] {
            for leak in find_leaks(form.as_bytes(), &secrets) {
                let shown: String = form.chars().take(160).collect();
                self.problems
                    .push(format!("{name}: {leak}\n    Debug output: {shown}…"));
            }
        }
        self.checked.push(name.to_owned());
    }
}

/// One handshake without I/O (the unit tests' way), with a chosen tls-unique.
fn sans_io_handshake(tls_unique: &[u8]) -> (ControllerKeys, HostKeys, HostPairing, CtrlPairing) {
    let ctrl = ControllerHandshake::new(
        HostPairing::new().unwrap(),
        Ipv4Addr::LOCALHOST,
        5000,
        serde_json::json!({"deviceName": "desk"}),
        1_700_000_000,
    )
    .unwrap();
    let host = HostHandshake::new(ctrl.invitation().clone(), None).unwrap();
    let host_ca: KeyHash = host.ca_fingerprint();
    let hello = host
        .hello_block(serde_json::json!({"deviceName": "phone"}))
        .unwrap();
    let out = ctrl
        .handle_host_hello(&hello, host_ca, tls_unique)
        .map_err(|r| r.error)
        .unwrap();
    let (hk, cp) = host.handle_ctrl_hello(&out.reply, tls_unique).unwrap();
    (out.keys, hk, out.pairing, cp)
}

/// The message keys a chain yields for its first `n` steps.
fn message_keys(chain: &ChainKey, n: usize) -> Vec<[u8; 32]> {
    let mut c = ChainKey::from_bytes(*chain.as_bytes());
    (0..n).map(|_| *c.advance().0.as_bytes()).collect()
}

#[tokio::test]
async fn debug_output_of_secret_types_reveals_no_key_bytes() {
    let mut audit = DebugAudit::new();

    // Key types.
    let x = X25519SecretKey::generate();
    audit.check(
        "X25519SecretKey",
        &x,
        &[("private key", x.to_bytes().as_slice())],
    );
    let ed = Ed25519SecretKey::generate();
    audit.check(
        "Ed25519SecretKey",
        &ed,
        &[("private key", ed.to_bytes().as_slice())],
    );
    let bytes = random32();
    audit.check(
        "ChainKey",
        &ChainKey::from_bytes(bytes),
        &[("chain key", &bytes[..])],
    );
    audit.check(
        "HybridSecret",
        &HybridSecret::from_bytes(bytes),
        &[("hybrid secret", &bytes[..])],
    );
    audit.check(
        "BoxKey",
        &BoxKey::from_bytes(bytes),
        &[("box key", &bytes[..])],
    );
    let kem_secret = random(sntrup761::SECRET_KEY_SIZE);
    let kem = KemKeyPair::from_secret_bytes(&kem_secret).unwrap();
    audit.check("KemKeyPair", &kem, &[("KEM secret key", &kem_secret[..])]);

    // TLS identities and credentials.
    let ca = TlsIdentity::generate(CaRole::Controller).unwrap();
    let (pkcs8, cert) = ca.to_der_parts();
    let seed = ed25519_seed(&pkcs8);
    audit.check("TlsIdentity", &ca, &[("CA key", &seed[..])]);
    let creds = SessionCredentials::from_parts(vec![cert], pkcs8.clone());
    audit.check("SessionCredentials", &creds, &[("leaf key", &seed[..])]);
    let verify_data = random(32);
    let recovered = RecoveredFinished {
        verify_data: Zeroizing::new(verify_data.clone()),
        client_hellos: 1,
        records: 3,
    };
    audit.check(
        "RecoveredFinished",
        &recovered,
        &[("verify_data", &verify_data[..])],
    );

    // A real TLS session over an in-memory pipe.
    let host_ca = TlsIdentity::generate(CaRole::Host).unwrap();
    let server = tls::server_config(&ca.session_credentials().unwrap(), Pin::Any).unwrap();
    let client = tls::client_config(
        &host_ca.session_credentials().unwrap(),
        Pin::Fingerprint(ca.fingerprint()),
    )
    .unwrap();
    let (a, b) = tokio::io::duplex(1 << 16);
    let (c, s) = tokio::join!(tls::connect(a, &client), tls::accept(b, &server));
    let ((client_stream, session), (server_stream, _)) = (c.unwrap(), s.unwrap());
    let tls_unique = session.tls_unique.to_vec();
    audit.check("TlsSession", &session, &[("tls-unique", &tls_unique[..])]);
    audit.check(
        "TlsStream (client)",
        &client_stream,
        &[("tls-unique", &tls_unique[..])],
    );
    audit.check(
        "TlsStream (server)",
        &server_stream,
        &[("tls-unique", &tls_unique[..])],
    );

    // Handshake results and pairings.
    let tls_unique = random(32);
    let (ck, hk, hp, cp) = sans_io_handshake(&tls_unique);
    let send = *ck.keys.send_chain().as_bytes();
    let recv = *ck.keys.recv_chain().as_bytes();
    let session_key = ck.session_key.to_bytes();
    let identity_key = ck.identity_key.to_bytes();
    let mut keys: Vec<(&str, &[u8])> = vec![
        ("tls-unique", &tls_unique[..]),
        ("send chain", &send[..]),
        ("receive chain", &recv[..]),
        ("session signing key", session_key.as_slice()),
        ("identity key", identity_key.as_slice()),
    ];
    audit.check("SessionKeys", &ck.keys, &keys);
    audit.check("ControllerKeys", &ck, &keys);
    audit.check("HostKeys", &hk, &keys);
    let hs = hp.to_stored();
    let (hp_ca, hp_id) = (ed25519_seed(&b64(&hs.ca_key)), b64(&hs.id_key));
    audit.check(
        "HostPairing",
        &hp,
        &[
            ("controller CA key", &hp_ca[..]),
            ("controller identity key", &hp_id[..]),
        ],
    );
    let cs = cp.to_stored();
    let (cp_ca, cp_dh) = (ed25519_seed(&b64(&cs.ca_key)), b64(&cs.dh_priv_key));
    audit.check(
        "CtrlPairing",
        &cp,
        &[("host CA key", &cp_ca[..]), ("host DH key", &cp_dh[..])],
    );

    // Session layer: secrets, keys, the session's crypto state and per-message keys.
    let mk = message_keys(ck.keys.send_chain(), 4);
    for k in &mk {
        keys.push(("message key", k.as_slice()));
    }
    let secrets = SessionSecrets::new(
        ck.keys,
        RemoteSignatures::Sign {
            session_key: ck.session_key,
            identity_key: ck.identity_key,
        },
    );
    audit.check("SessionSecrets", &secrets, &keys);
    audit.check("RemoteSignatures", secrets.signatures(), &keys);
    let mut session = RemoteSession::new(secrets, false).unwrap();
    audit.check("RemoteSession", &session, &keys);
    audit.check("RemoteCrypto", session.crypto(), &keys);
    audit.check("RemoteKeys", session.keys(), &keys);
    let snd = session.keys_mut().snd_keys().unwrap();
    audit.check("SndKeys", &snd, &keys);
    audit.check("MessageKeys", &snd.keys, &keys);
    audit.check("SbKeyNonce", &snd.keys.body, &keys);
    let encoded = session.encode(b"{}").unwrap();
    audit.check("EncodedBody", &encoded, &keys);

    // The connected objects of both roles, and their sessions, from a loopback session.
    let settings = LinkSettings::default();
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &settings)
        .await
        .unwrap();
    let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
    let opts = settings.host_options(&inv, None).unwrap();
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let code = pending.session_code().to_owned();
    let host = pending.verify(&code).await.unwrap();
    let ctrl = ctrl.await.unwrap().unwrap();
    let tls_unique = ctrl.keys.keys.tls_unique().to_vec();
    let send = *ctrl.keys.keys.send_chain().as_bytes();
    let recv = *ctrl.keys.keys.recv_chain().as_bytes();
    let sk = ctrl.keys.session_key.to_bytes();
    let keys: Vec<(&str, &[u8])> = vec![
        ("tls-unique", &tls_unique[..]),
        ("session code", code.as_bytes()),
        ("send chain", &send[..]),
        ("receive chain", &recv[..]),
        ("session signing key", sk.as_slice()),
    ];
    audit.check("xrcp_ctrl::Connected", &ctrl, &keys);
    audit.check("xrcp_host::Connected", &host, &keys);
    let remote = open_session(ctrl, &settings.ctrl_app).await.unwrap();
    audit.check("RemoteHost", &remote, &keys);
    let (served, _) = prepare_session(host, &settings.host_app).unwrap();
    audit.check("ServedSession", &served, &keys);
    drop(remote);
    drop(served);

    println!("Debug checked for: {}", audit.checked.join(", "));
    println!(
        "no Debug impl (cannot leak through Debug): KemSharedSecret, StoredHostPairing, \
         StoredCtrlPairing, HelloOutcome, RemoteHostClient"
    );
    assert!(
        audit.problems.is_empty(),
        "secret bytes in Debug output:\n{}",
        audit.problems.join("\n")
    );
}
