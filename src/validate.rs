//! Field validation that collects every problem before answering 422.

use crate::error::{Error, FieldError, Result};

pub const PASSWORD_MIN_CHARS: usize = 8;
/// bcrypt ignores bytes past 72; longer passwords are refused rather than truncated.
pub const PASSWORD_MAX_BYTES: usize = 72;

/// PostgreSQL cannot store NUL in text, so it is refused on every database alike (the
/// OpenAPI patterns exclude `\x00`).
pub const NUL_REFUSED: &str = "must not contain NUL characters";

#[derive(Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Whether `field` already has a problem.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|error| error.field == field)
    }

    /// Trims `value` and checks its length in characters: `min` on the trimmed text, `max`
    /// on the text as sent (what the OpenAPI `maxLength` measures); returns the trimmed text.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let trimmed = value.trim();
        if value.contains('\0') {
            self.add(field, NUL_REFUSED);
        } else if trimmed.chars().count() < min {
            self.add(
                field,
                if min == 1 {
                    "must not be empty".into()
                } else {
                    format!("must be at least {min} characters")
                },
            );
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
        trimmed.to_owned()
    }

    /// Text kept exactly as sent (code, diffs): at most `max` characters, no NUL.
    pub fn raw_text(&mut self, field: &str, value: &str, max: usize) {
        if value.contains('\0') {
            self.add(field, NUL_REFUSED);
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// Like `text` for an optional field; blank text becomes `None`.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = self.text(field, value?, 0, max);
        (!value.is_empty()).then_some(value)
    }

    pub fn email(&mut self, field: &str, value: &str) -> String {
        let email = normalize_email(value);
        if !is_plausible_email(&email) {
            self.add(field, "must be a valid email address");
        }
        email
    }

    /// At least 8 characters (the OpenAPI `minLength`) and at most 72 bytes of UTF-8.
    pub fn password(&mut self, field: &str, value: &str) {
        if value.chars().count() < PASSWORD_MIN_CHARS {
            self.add(
                field,
                format!("must be at least {PASSWORD_MIN_CHARS} characters"),
            );
        } else if value.len() > PASSWORD_MAX_BYTES {
            self.add(field, format!("must be at most {PASSWORD_MAX_BYTES} bytes"));
        }
    }

    pub fn http_url(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let url = self.optional_text(field, value, 500)?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && !url.contains(char::is_whitespace) => {}
            _ => self.add(field, "must be an http(s) URL"),
        }
        Some(url)
    }

    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

pub fn normalize_email(value: &str) -> String {
    value.trim().to_lowercase()
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// WhatsApp numbers are stored as `+` and 8 to 15 digits (E.164); spaces, dashes and
/// brackets are accepted on input.
pub fn normalize_phone(value: &str) -> Option<String> {
    let digits: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = digits.strip_prefix('+').unwrap_or(&digits);
    let valid = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_plausible_email(good), "{good}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b..co",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn passwords_are_measured_in_bytes() {
        let mut v = Violations::default();
        v.password("password", &"é".repeat(36)); // 72 bytes
        assert!(v.finish().is_ok());
        let mut v = Violations::default();
        v.password("password", &"é".repeat(37)); // 74 bytes
        assert!(v.finish().is_err());
        let mut v = Violations::default();
        v.password("password", "short");
        assert!(v.finish().is_err());
    }

    #[test]
    fn phones() {
        assert_eq!(
            normalize_phone("+91 98765-43210").as_deref(),
            Some("+919876543210")
        );
        assert_eq!(
            normalize_phone("14155550100").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(normalize_phone("12345"), None);
        assert_eq!(normalize_phone("+1415555O100"), None);
    }

    #[test]
    fn urls() {
        let mut v = Violations::default();
        assert_eq!(
            v.http_url("repo_url", Some(" https://github.com/a/b "))
                .as_deref(),
            Some("https://github.com/a/b")
        );
        assert_eq!(v.http_url("repo_url", Some("  ")), None);
        assert!(v.finish().is_ok());
        for bad in ["ftp://x", "https://", "github.com/a", "http://a b"] {
            let mut v = Violations::default();
            v.http_url("repo_url", Some(bad));
            assert!(v.finish().is_err(), "{bad}");
        }
    }
}
