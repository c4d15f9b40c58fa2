//! GitHub's settings (SPEC §6.2): the webhook secret, the REST API and its credentials (a
//! token or a GitHub App), review limits, and the OAuth client users connect through.

use std::fmt;

use crate::env::{positive, ConfigError, Env};

#[derive(Clone)]
pub struct Settings {
    /// Unset: the webhook answers 503.
    pub webhook_secret: Option<String>,
    /// `https://api.github.com`, or `https://host/api/v3` for GitHub Enterprise.
    pub api_url: String,
    pub token: Option<String>,
    /// A GitHub App: its id and private key (PEM); preferred over `token` when set.
    pub app: Option<GithubApp>,
    pub review_max_diff_bytes: usize,
    /// Reviews run at once in one instance.
    pub review_concurrency: usize,
    /// `https://github.com`, or the Enterprise host: where users authorize (OAuth web flow).
    pub web_url: String,
    /// The GitHub App's or OAuth App's client credentials; unset: connecting answers 503.
    pub oauth: Option<GithubOAuth>,
    /// Scopes asked for in the OAuth web flow (`repo` for an OAuth App that must see
    /// private repositories; a GitHub App needs none).
    pub oauth_scope: Option<String>,
    /// This server's address as browsers reach it: GitHub sends them back to
    /// `{public_url}/api/v1/integrations/github/callback`.
    pub public_url: String,
}

#[derive(Clone)]
pub struct GithubOAuth {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone)]
pub struct GithubApp {
    pub id: String,
    pub private_key_pem: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("api_url", &self.api_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("app_id", &self.app.as_ref().map(|app| &app.id))
            .field("web_url", &self.web_url)
            .field(
                "client_id",
                &self.oauth.as_ref().map(|oauth| &oauth.client_id),
            )
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let api_url = env.http_url("GITHUB_API_URL", "https://api.github.com".into())?;
        let web_url = env.http_url("GITHUB_WEB_URL", "https://github.com".into())?;
        // The default public address follows the port the server listens on.
        let port = env.non_empty("PORT").unwrap_or_else(|| "8000".into());
        let public_url = env.http_url("PUBLIC_URL", format!("http://localhost:{port}"))?;
        let oauth = github_oauth(env)?;
        let app = github_app(env)?;
        Ok(Settings {
            webhook_secret: env.non_empty("GITHUB_WEBHOOK_SECRET"),
            api_url,
            token: env.non_empty("GITHUB_TOKEN"),
            app,
            review_max_diff_bytes: env.parse(
                "GITHUB_REVIEW_MAX_DIFF_BYTES",
                400 * 1024,
                positive,
            )?,
            web_url,
            oauth,
            oauth_scope: env.non_empty("GITHUB_OAUTH_SCOPE"),
            public_url,
            review_concurrency: env.parse("GITHUB_REVIEW_CONCURRENCY", 4, positive)?,
        })
    }

    /// No credentials; GitHub's URLs point at a closed port.
    pub fn for_tests() -> Self {
        Settings {
            webhook_secret: None,
            api_url: "http://127.0.0.1:9".into(),
            token: None,
            app: None,
            review_max_diff_bytes: 400 * 1024,
            review_concurrency: 4,
            web_url: "http://127.0.0.1:9".into(),
            oauth: None,
            oauth_scope: None,
            public_url: "http://localhost:8000".into(),
        }
    }
}

/// A GitHub App: `GITHUB_APP_ID` with its private key (PEM text or file), both or neither.
fn github_app(env: &Env) -> Result<Option<GithubApp>, ConfigError> {
    let private_key_pem = match (
        env.non_empty("GITHUB_APP_PRIVATE_KEY"),
        env.non_empty("GITHUB_APP_PRIVATE_KEY_FILE"),
    ) {
        // Environment files often carry a PEM on one line with literal \n.
        (Some(pem), _) => Some(pem.replace("\\n", "\n")),
        (None, Some(path)) => Some(std::fs::read_to_string(&path).map_err(|err| ConfigError {
            name: "GITHUB_APP_PRIVATE_KEY_FILE",
            reason: format!("cannot read {path}: {err}"),
        })?),
        (None, None) => None,
    };
    Ok(match (env.non_empty("GITHUB_APP_ID"), private_key_pem) {
        (Some(id), Some(pem)) => {
            if jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                return Err(ConfigError {
                    name: "GITHUB_APP_PRIVATE_KEY",
                    reason: "is not an RSA private key in PEM form".into(),
                });
            }
            Some(GithubApp {
                id,
                private_key_pem: pem,
            })
        }
        (Some(_), None) => {
            return Err(ConfigError {
                name: "GITHUB_APP_PRIVATE_KEY",
                reason: "GITHUB_APP_ID is set: set GITHUB_APP_PRIVATE_KEY or \
                         GITHUB_APP_PRIVATE_KEY_FILE too"
                    .into(),
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                name: "GITHUB_APP_ID",
                reason: "a GitHub App private key is set without its app id".into(),
            })
        }
        (None, None) => None,
    })
}

/// GitHub's OAuth client (`GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET`): both or neither.
fn github_oauth(env: &Env) -> Result<Option<GithubOAuth>, ConfigError> {
    match (
        env.non_empty("GITHUB_CLIENT_ID"),
        env.non_empty("GITHUB_CLIENT_SECRET"),
    ) {
        (Some(client_id), Some(client_secret)) => Ok(Some(GithubOAuth {
            client_id,
            client_secret,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError {
            name: "GITHUB_CLIENT_SECRET",
            reason: "GITHUB_CLIENT_ID is set: set its client secret too".into(),
        }),
        (None, Some(_)) => Err(ConfigError {
            name: "GITHUB_CLIENT_ID",
            reason: "a client secret is set without its client id".into(),
        }),
    }
}
