//! The `X-Hub-Signature-256` check shared by GitHub's and Meta's webhooks: `sha256=` and
//! the hex HMAC-SHA256 of the raw body, keyed with the shared secret.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// True when `header` is `sha256=<hex>` and the HMAC matches `body` under `secret`.
/// The comparison runs in constant time; a missing prefix (GitHub's legacy `sha1=`),
/// bad hex or a wrong length all fail.
pub fn verify_sha256(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(signature) = header
        .and_then(|value| value.trim().strip_prefix("sha256="))
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
    else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// What both webhooks check first: 503 `not_configured` when the secret is not set
/// (`missing` names the setting), 401 when `X-Hub-Signature-256` is missing or wrong.
pub fn verify_webhook(
    secret: Option<&str>,
    missing: &'static str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<()> {
    let secret = secret.ok_or(Error::NotConfigured(missing))?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok());
    if verify_sha256(secret.as_bytes(), body, signature) {
        Ok(())
    } else {
        Err(Error::Unauthorized(
            "Missing or invalid X-Hub-Signature-256",
        ))
    }
}

/// `sha256=<hex>` for `body`: what a sender puts in `X-Hub-Signature-256`.
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_right_sha256_signature() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let good = sign_sha256(b"secret", body);
        assert!(verify_sha256(b"secret", body, Some(&good)));
        assert!(!verify_sha256(b"other", body, Some(&good)));
        assert!(!verify_sha256(b"secret", b"tampered", Some(&good)));
        assert!(!verify_sha256(b"secret", body, None));
        assert!(!verify_sha256(b"secret", body, Some("sha1=0123")));
        assert!(!verify_sha256(b"secret", body, Some("sha256=zz")));
        assert!(!verify_sha256(
            b"secret",
            body,
            Some(&good[..good.len() - 2])
        ));
    }

    #[test]
    fn matches_a_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign_sha256(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
