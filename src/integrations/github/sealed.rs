//! Users' GitHub tokens at rest: sealed with XChaCha20-Poly1305 (RustCrypto's AEAD) under a
//! key derived from `SECRET_KEY` by HKDF-SHA256, with the owning user's id as associated
//! data, so a sealed token read from a backup is useless and cannot be moved to another
//! user's row. `SECRET_KEY_PREVIOUS` still opens tokens sealed before a key rotation.

use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

/// Names the format and the key's purpose; a new format gets a new prefix.
const VERSION: &str = "v1:";
const KEY_INFO: &[u8] = b"codesherpa github user token v1";
const NONCE_BYTES: usize = 24;

pub struct Sealer {
    current: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
}

fn cipher(secret: &str) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(KEY_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

fn aad(user_id: i64) -> String {
    format!("user:{user_id}")
}

impl Sealer {
    pub fn new(secret_key: &str, previous: Option<&str>) -> Self {
        Sealer {
            current: cipher(secret_key),
            previous: previous.map(cipher),
        }
    }

    /// `v1:` + hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, user_id: i64, token: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(user_id);
        let sealed = self
            .current
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message this size");
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}", hex::encode(out))
    }

    /// The token, or `None` when the text was not sealed for this user with either key.
    pub fn open(&self, user_id: i64, sealed: &str) -> Option<String> {
        self.open_checked(user_id, sealed).map(|(token, _)| token)
    }

    /// The token, and whether it was sealed with `SECRET_KEY_PREVIOUS` (then it should be
    /// sealed again with the current key before the previous one is retired).
    pub fn open_checked(&self, user_id: i64, sealed: &str) -> Option<(String, bool)> {
        let bytes = hex::decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_BYTES);
        let aad = aad(user_id);
        let payload = || Payload {
            msg: body,
            aad: aad.as_bytes(),
        };
        let nonce = XNonce::from_slice(nonce);
        let (plain, stale) = match self.current.decrypt(nonce, payload()) {
            Ok(plain) => (plain, false),
            Err(_) => (
                self.previous.as_ref()?.decrypt(nonce, payload()).ok()?,
                true,
            ),
        };
        Some((String::from_utf8(plain).ok()?, stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-secret-key-that-is-at-least-32-bytes-long";

    #[test]
    fn sealed_tokens_open_only_for_their_user_and_key() {
        let sealer = Sealer::new(KEY, None);
        let sealed = sealer.seal(7, "gho_secret");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("gho_secret"));
        assert_ne!(
            sealed,
            sealer.seal(7, "gho_secret"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(7, &sealed).as_deref(), Some("gho_secret"));
        assert_eq!(sealer.open(8, &sealed), None, "bound to its user");
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(sealer.open(7, &tampered), None);
        assert_eq!(
            Sealer::new("another-key-of-at-least-32-bytes!!", None).open(7, &sealed),
            None
        );
        let rotated = Sealer::new("the-new-key-of-at-least-32-bytes-long", Some(KEY));
        assert_eq!(
            rotated.open_checked(7, &sealed),
            Some(("gho_secret".to_owned(), true))
        );
        let resealed = rotated.seal(7, "gho_secret");
        assert_eq!(
            rotated.open_checked(7, &resealed),
            Some(("gho_secret".to_owned(), false))
        );
        assert_eq!(sealer.open(7, "v1:00"), None);
        assert_eq!(sealer.open(7, "plain"), None);
    }
}
