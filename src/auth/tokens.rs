//! JWT access and refresh tokens (HS256 only).

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{
    decode, encode, get_current_timestamp, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(rename = "type")]
    pub kind: TokenKind,
    /// The refresh-token family (one per login), for reuse detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

impl Claims {
    pub fn user_id(&self) -> Result<i64> {
        self.sub
            .parse()
            .map_err(|_| Error::Unauthorized("Invalid token"))
    }
}

/// What a request needs of a verified access token: whose it is and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub user_id: i64,
    /// Unix seconds.
    pub exp: i64,
}

/// How many verified access tokens an instance remembers (~250 bytes each).
const VERIFIED_CAPACITY: usize = 16_384;

pub struct Issued {
    pub token: String,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// `SECRET_KEY_PREVIOUS`: tokens signed before a key rotation still verify.
    previous: Option<DecodingKey>,
    validation: Validation,
    /// Access tokens verified before, by their text. Whether a token's signature,
    /// algorithm, kind and subject check out never changes for a given text and keys, so
    /// each is decoded and its HMAC computed once per instance; its expiry is still
    /// checked on every use. Only tokens that verified enter, so made-up tokens cannot
    /// crowd out real ones.
    verified: Cache<Box<str>, Verified>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenKeys {
    pub fn new(
        secret: &str,
        previous: Option<&str>,
        access_minutes: i64,
        refresh_days: i64,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expired means expired (SPEC §7): every instance issues and checks with the same
        // clock source, so there is no skew to forgive.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            previous: previous.map(|key| DecodingKey::from_secret(key.as_bytes())),
            validation,
            verified: Cache::new(VERIFIED_CAPACITY),
            access_ttl: Duration::minutes(access_minutes),
            refresh_ttl: Duration::days(refresh_days),
        }
    }

    pub fn issue(&self, user_id: i64, kind: TokenKind, family: Option<&str>) -> Result<Issued> {
        let now = Utc::now();
        let expires_at = now
            + match kind {
                TokenKind::Access => self.access_ttl,
                TokenKind::Refresh => self.refresh_ttl,
            };
        let jti = Uuid::new_v4().simple().to_string();
        let claims = Claims {
            sub: user_id.to_string(),
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            jti: jti.clone(),
            kind,
            fam: family.map(str::to_owned),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)?;
        Ok(Issued {
            token,
            jti,
            expires_at,
        })
    }

    /// An access token's user and expiry, after [`TokenKeys::verify`]'s checks (the
    /// expiry against the clock on every call, the rest once per token).
    pub fn verify_access(&self, token: &str) -> Result<Verified> {
        let verified = match self.verified.get(token) {
            Some(verified) => verified,
            None => {
                let claims = self.verify(token, TokenKind::Access)?;
                let verified = Verified {
                    user_id: claims.user_id()?,
                    exp: claims.exp,
                };
                self.verified.insert(token.into(), verified);
                verified
            }
        };
        // `Validation`'s own test, with no leeway: expired once `exp` has passed.
        if verified.exp < get_current_timestamp() as i64 {
            return Err(Error::Unauthorized("Token has expired"));
        }
        Ok(verified)
    }

    /// Verifies signature, algorithm, expiry and the token's kind.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        let mut decoded = decode::<Claims>(token, &self.decoding, &self.validation);
        if let (Err(err), Some(previous)) = (&decoded, &self.previous) {
            // Only a signature mismatch may mean "signed with the previous key"; every
            // other check (algorithm, expiry, shape) failed for that key as well.
            if *err.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature {
                decoded = decode::<Claims>(token, previous, &self.validation);
            }
        }
        let claims = decoded
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthorized("Token has expired")
                }
                _ => Error::Unauthorized("Invalid token"),
            })?
            .claims;
        if claims.kind != kind {
            return Err(Error::Unauthorized("Invalid token type"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new("k".repeat(32).as_str(), None, 30, 7)
    }

    #[test]
    fn round_trip_and_kind_check() {
        let keys = keys();
        let access = keys.issue(7, TokenKind::Access, None).unwrap();
        let claims = keys.verify(&access.token, TokenKind::Access).unwrap();
        assert_eq!(claims.user_id().unwrap(), 7);
        assert_eq!(claims.jti, access.jti);
        assert!(keys.verify(&access.token, TokenKind::Refresh).is_err());
    }

    #[test]
    fn other_secret_is_rejected() {
        let token = keys().issue(7, TokenKind::Access, None).unwrap().token;
        let other = TokenKeys::new("o".repeat(32).as_str(), None, 30, 7);
        assert!(other.verify(&token, TokenKind::Access).is_err());
    }

    #[test]
    fn verified_access_tokens_are_remembered_but_still_expire() {
        let keys = keys();
        let now = get_current_timestamp() as i64;
        let signed = |exp: i64, kind: TokenKind| {
            let claims = Claims {
                sub: "7".into(),
                exp,
                iat: now,
                jti: "j".into(),
                kind,
                fam: None,
            };
            encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
        };
        let soon = signed(now + 1, TokenKind::Access);
        let expected = Verified {
            user_id: 7,
            exp: now + 1,
        };
        assert_eq!(keys.verify_access(&soon).unwrap(), expected);
        assert_eq!(keys.verified.len(), 1);
        assert_eq!(keys.verify_access(&soon).unwrap(), expected, "from memory");

        // Refused tokens are not remembered.
        let mut tampered = soon.clone();
        tampered.pop();
        for refused in [tampered, signed(now + 600, TokenKind::Refresh)] {
            assert!(keys.verify_access(&refused).is_err());
        }
        assert_eq!(keys.verified.len(), 1);

        // A remembered token stops working once its `exp` has passed.
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        assert!(matches!(
            keys.verify_access(&soon),
            Err(Error::Unauthorized("Token has expired"))
        ));
    }

    #[test]
    fn previous_secret_still_verifies() {
        let old = "o".repeat(32);
        let token = TokenKeys::new(&old, None, 30, 7)
            .issue(7, TokenKind::Access, None)
            .unwrap()
            .token;
        let rotated = TokenKeys::new("k".repeat(32).as_str(), Some(&old), 30, 7);
        assert!(rotated.verify(&token, TokenKind::Access).is_ok());
        let fresh = rotated.issue(7, TokenKind::Access, None).unwrap().token;
        let previous_only = TokenKeys::new(&old, None, 30, 7);
        assert!(
            previous_only.verify(&fresh, TokenKind::Access).is_err(),
            "new tokens are signed with the new key"
        );
    }

    #[test]
    fn expired_is_rejected() {
        let keys = TokenKeys::new("k".repeat(32).as_str(), None, -1, 7);
        let token = keys.issue(7, TokenKind::Access, None).unwrap().token;
        assert!(matches!(
            keys.verify(&token, TokenKind::Access),
            Err(Error::Unauthorized("Token has expired"))
        ));
    }
}
