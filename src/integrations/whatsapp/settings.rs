//! WhatsApp's settings (SPEC §6.3): the webhook's secrets, the Graph API, the budget of
//! failed link attempts, and the number and template review notifications go out with.

use std::fmt;

use crate::env::{from_str, ConfigError, Env};

#[derive(Clone)]
pub struct Settings {
    /// `WHATSAPP_VERIFY_TOKEN`: what Meta echoes in the webhook verification handshake.
    pub verify_token: Option<String>,
    /// `WHATSAPP_APP_SECRET`: the key of the `X-Hub-Signature-256` HMAC.
    pub app_secret: Option<String>,
    /// `WHATSAPP_ACCESS_TOKEN`: the bearer token replies are sent with.
    pub access_token: Option<String>,
    /// `WHATSAPP_API_URL`, without a trailing slash.
    pub api_url: String,
    /// `WHATSAPP_API_VERSION`, e.g. `v21.0`.
    pub api_version: String,
    /// `WHATSAPP_LINK_ATTEMPTS_PER_MINUTE`: failed `link <code>` attempts a minute across
    /// every number (0 disables this budget; each number also has the auth budget).
    pub link_attempts_per_minute: u32,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the business number notifications are sent from
    /// (replies always go out from the number the message came to).
    pub phone_number_id: Option<String>,
    /// `WHATSAPP_NOTIFY_TEMPLATE`: the approved template a review notification uses outside
    /// the 24-hour window (unset: such notifications are skipped).
    pub notify_template: Option<String>,
    /// `WHATSAPP_NOTIFY_TEMPLATE_LANGUAGE`: the template's language code (default `en`).
    pub notify_template_language: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("api_url", &self.api_url)
            .field("api_version", &self.api_version)
            .field("link_attempts_per_minute", &self.link_attempts_per_minute)
            .field("phone_number_id", &self.phone_number_id)
            .field("notify_template", &self.notify_template)
            .field("notify_template_language", &self.notify_template_language)
            .finish()
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            verify_token: env.non_empty("WHATSAPP_VERIFY_TOKEN"),
            app_secret: env.non_empty("WHATSAPP_APP_SECRET"),
            access_token: env.non_empty("WHATSAPP_ACCESS_TOKEN"),
            api_url: env.http_url("WHATSAPP_API_URL", "https://graph.facebook.com".into())?,
            api_version: env
                .non_empty("WHATSAPP_API_VERSION")
                .unwrap_or_else(|| "v21.0".into())
                .trim_matches('/')
                .to_owned(),
            link_attempts_per_minute: env.parse(
                "WHATSAPP_LINK_ATTEMPTS_PER_MINUTE",
                60,
                from_str,
            )?,
            phone_number_id: env.non_empty("WHATSAPP_PHONE_NUMBER_ID"),
            notify_template: env.non_empty("WHATSAPP_NOTIFY_TEMPLATE"),
            notify_template_language: env
                .non_empty("WHATSAPP_NOTIFY_TEMPLATE_LANGUAGE")
                .unwrap_or_else(|| "en".into()),
        })
    }

    /// No secrets (the webhook answers 503); the Graph API points at a closed port.
    pub fn for_tests() -> Self {
        Settings {
            verify_token: None,
            app_secret: None,
            access_token: None,
            api_url: "http://127.0.0.1:9".into(),
            api_version: "v21.0".into(),
            link_attempts_per_minute: 0,
            phone_number_id: None,
            notify_template: None,
            notify_template_language: "en".into(),
        }
    }
}
