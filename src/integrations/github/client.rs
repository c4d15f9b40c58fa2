//! The GitHub REST client: `GITHUB_API_URL` (github.com or Enterprise `/api/v3`), a
//! personal/installation token or GitHub App authentication (an RS256 JWT exchanged for an
//! installation token, cached until shortly before it expires and renewed on a 401), the
//! standard headers, and rate limits turned into a retry delay for the job queue.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::Mutex;

use super::settings::Settings;
use crate::{jobs::Stop, projects::repo_url::linked_repository};

const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("CodeSherpa/", env!("CARGO_PKG_VERSION"));
pub const JSON: &str = "application/vnd.github+json";
/// An installation token is renewed this long before GitHub says it expires.
const TOKEN_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// GitHub's advice for a secondary rate limit that names no wait: at least a minute.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Why a GitHub call did not succeed, classified for the queue.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub rate limit; retry in {}s", .0.as_secs())]
    RateLimited(Duration),
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    #[error("GitHub sent a response that could not be read: {0}")]
    BadResponse(String),
    #[error("{0}")]
    Config(&'static str),
}

impl GithubError {
    /// 5xx, 408, 429, rate limits and network errors pass; other 4xx and bad configuration
    /// never will.
    pub fn is_permanent(&self) -> bool {
        match self {
            GithubError::Status { status, .. } => {
                !(*status >= 500 || *status == 408 || *status == 429)
            }
            GithubError::Config(_) => true,
            GithubError::RateLimited(_)
            | GithubError::Transport(_)
            | GithubError::BadResponse(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Rate limits wait as told; other transient failures retry with backoff.
impl From<GithubError> for Stop {
    fn from(err: GithubError) -> Self {
        match err {
            GithubError::RateLimited(wait) => Stop::Retry {
                reason: err.to_string(),
                after: Some(wait),
            },
            err if err.is_permanent() => Stop::failed(err.to_string()),
            err => Stop::retry(err.to_string()),
        }
    }
}

/// Whose credentials a call carries.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// The server's own: an installation token (App mode, when the installation is
    /// known), else `GITHUB_TOKEN`. Only for verified projects (SPEC §6.2).
    Server(Option<i64>),
    /// A connected user's OAuth token.
    User(&'a str),
    /// None: what anyone on the internet may read.
    Anonymous,
}

#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_url: String,
    token: Option<String>,
    app: Option<App>,
    /// The server's own login (comments it wrote carry it), once asked.
    identity: tokio::sync::OnceCell<Option<String>>,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

/// An item GitHub lists with its author: an issue comment, a pull-request review.
#[derive(Deserialize)]
struct Authored {
    body: Option<String>,
    user: Option<Login>,
}

#[derive(Deserialize)]
struct AppInfo {
    slug: String,
}

struct App {
    id: String,
    key: jsonwebtoken::EncodingKey,
    /// Installation id → (token, renew after).
    tokens: Mutex<HashMap<i64, (String, DateTime<Utc>)>>,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: DateTime<Utc>,
}

impl GithubClient {
    pub fn new(config: &Settings) -> Self {
        // Redirects are followed (renamed repositories, tarballs); reqwest drops the
        // Authorization header when a redirect leaves the API's host.
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the TLS backend is compiled in");
        let app = config.app.as_ref().map(|app| App {
            id: app.id.clone(),
            // Checked when the configuration was read.
            key: jsonwebtoken::EncodingKey::from_rsa_pem(app.private_key_pem.as_bytes())
                .expect("GITHUB_APP_PRIVATE_KEY was validated at start-up"),
            tokens: Mutex::default(),
        });
        GithubClient {
            inner: Arc::new(Inner {
                http,
                api_url: config.api_url.clone(),
                token: config.token.clone(),
                app,
                identity: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// True when calls are authenticated (a token or an App).
    pub fn has_credentials(&self) -> bool {
        self.inner.token.is_some() || self.inner.app.is_some()
    }

    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// `owner/repo` when a project's `repo_url` names a repository this GitHub serves
    /// ([`linked_repository`]).
    pub fn repository_of(&self, repo_url: Option<&str>) -> Option<String> {
        linked_repository(repo_url?, &self.inner.api_url)
    }

    /// Sends `method path` (a path under the API, or an absolute URL) with the standard
    /// headers, and credentials when the URL is the API's; a 401 in App mode renews the
    /// installation token once.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        installation: Option<i64>,
        accept: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GithubError> {
        self.send_as(method, path, Credential::Server(installation), accept, body)
            .await
    }

    /// [`send`](Self::send) with the given credential.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        accept: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GithubError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.inner.api_url)
        };
        let mut renewed = false;
        loop {
            let mut request = self
                .inner
                .http
                .request(method.clone(), &url)
                .header(header::ACCEPT, accept)
                .header("X-GitHub-Api-Version", API_VERSION);
            // Credentials go to the API only, never to another host named by a caller.
            if url.starts_with(&format!("{}/", self.inner.api_url)) {
                let token = match credential {
                    Credential::Server(installation) => self.credential(installation).await?,
                    Credential::User(token) => Some(token.to_owned()),
                    Credential::Anonymous => None,
                };
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = execute(request).await?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                if let (Some(app), Credential::Server(Some(id))) = (&self.inner.app, credential) {
                    app.tokens.lock().await.remove(&id);
                    renewed = true;
                    continue;
                }
            }
            return check(response).await;
        }
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        installation: Option<i64>,
    ) -> Result<(T, Option<String>), GithubError> {
        self.get_json_as(path, Credential::Server(installation))
            .await
    }

    /// [`get_json`](Self::get_json) with the given credential.
    pub async fn get_json_as<T: DeserializeOwned>(
        &self,
        path: &str,
        credential: Credential<'_>,
    ) -> Result<(T, Option<String>), GithubError> {
        let response = self
            .send_as(Method::GET, path, credential, JSON, None)
            .await?;
        let next = next_link(response.headers());
        Ok((read_json(response).await?, next))
    }

    /// A raw GET (an API path or URL, e.g. a tarball), redirects followed; credentials
    /// are sent only to `GITHUB_API_URL` (reqwest drops them when a redirect leaves it).
    pub async fn get_raw(
        &self,
        url: &str,
        credential: Credential<'_>,
    ) -> Result<Response, GithubError> {
        self.send_as(Method::GET, url, credential, "*/*", None)
            .await
    }

    /// Whether the server's own identity wrote one of the items listed from `first_page`
    /// on (issue comments, pull-request reviews; paged) whose body carries `marker`. When
    /// GitHub will not tell the server's login, any item carrying the marker counts.
    pub async fn posted_by_us(
        &self,
        first_page: String,
        marker: &str,
        installation: Option<i64>,
    ) -> Result<bool, GithubError> {
        let own_login = self.own_login().await?;
        let mut next = Some(first_page);
        while let Some(page) = next.take() {
            let (listed, link): (Vec<Authored>, _) = self.get_json(&page, installation).await?;
            let ours = listed.iter().any(|item| {
                item.body.as_deref().is_some_and(|b| b.contains(marker))
                    && match (own_login, &item.user) {
                        (Some(own), Some(author)) => author.login.eq_ignore_ascii_case(own),
                        (None, _) => true,
                        (Some(_), None) => false,
                    }
            });
            if ours {
                return Ok(true);
            }
            next = link;
        }
        Ok(false)
    }

    /// The login the server's own comments carry: `{slug}[bot]` for a GitHub App (`GET
    /// /app` with its JWT), else the owner of `GITHUB_TOKEN` (`GET /user`). Asked once;
    /// `None` when GitHub will not say (a permanent 4xx), and callers fall back on the
    /// comments they recorded posting.
    pub async fn own_login(&self) -> Result<Option<&str>, GithubError> {
        let login = self
            .inner
            .identity
            .get_or_try_init(|| async {
                let asked = match &self.inner.app {
                    Some(app) => {
                        let request = self.as_app(app, Method::GET, "/app")?;
                        async {
                            let info: AppInfo =
                                read_json(check(execute(request).await?).await?).await?;
                            Ok(format!("{}[bot]", info.slug))
                        }
                        .await
                    }
                    None => self
                        .get_json::<Login>("/user", None)
                        .await
                        .map(|(me, _)| me.login),
                };
                match asked {
                    Ok(login) => Ok(Some(login)),
                    Err(err) if err.is_permanent() => {
                        tracing::warn!(error = %err, "GitHub does not tell the server's own login");
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            })
            .await?;
        Ok(login.as_deref())
    }

    /// In App mode, the installation of the App on `repository` (`GET /repos/{o}/{r}/
    /// installation` with the App's JWT), for work no webhook named one for (a sync asked
    /// for by its owner); `None` without an App or when it is not installed there.
    pub async fn installation_for(&self, repository: &str) -> Result<Option<i64>, GithubError> {
        let Some(app) = &self.inner.app else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Installation {
            id: i64,
        }
        let path = format!("/repos/{repository}/installation");
        let request = self.as_app(app, Method::GET, &path)?;
        match check(execute(request).await?).await {
            Ok(response) => Ok(Some(read_json::<Installation>(response).await?.id)),
            Err(GithubError::Status { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Revokes the OAuth client's grant for the user whose `token` this is (`DELETE
    /// /applications/{client_id}/grant`, basic authentication with the client's
    /// credentials): the token and every other of that user for this client stop working.
    pub async fn revoke_grant(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<(), GithubError> {
        let request = self
            .api_request(Method::DELETE, &format!("/applications/{client_id}/grant"))
            .basic_auth(client_id, Some(client_secret))
            .json(&serde_json::json!({ "access_token": token }))
            .timeout(Duration::from_secs(5));
        check(execute(request).await?).await.map(drop)
    }

    /// `method path` on the API with GitHub's standard headers and no credential yet.
    fn api_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.inner
            .http
            .request(method, format!("{}{path}", self.inner.api_url))
            .header(header::ACCEPT, JSON)
            .header("X-GitHub-Api-Version", API_VERSION)
    }

    /// `method path` signed as the App itself (its JWT), as `/app/…` routes want.
    fn as_app(&self, app: &App, method: Method, path: &str) -> Result<RequestBuilder, GithubError> {
        Ok(self.api_request(method, path).bearer_auth(app_jwt(app)?))
    }

    /// The HTTP client, for GitHub's web host (the OAuth code exchange).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The bearer credential: an installation token (App mode), else `GITHUB_TOKEN`.
    async fn credential(&self, installation: Option<i64>) -> Result<Option<String>, GithubError> {
        match (&self.inner.app, installation) {
            (Some(app), Some(id)) => self.installation_token(app, id).await.map(Some),
            _ => Ok(self.inner.token.clone()),
        }
    }

    async fn installation_token(
        &self,
        app: &App,
        installation: i64,
    ) -> Result<String, GithubError> {
        let mut tokens = app.tokens.lock().await;
        if let Some((token, renew_after)) = tokens.get(&installation) {
            if Utc::now() < *renew_after {
                return Ok(token.clone());
            }
        }
        let path = format!("/app/installations/{installation}/access_tokens");
        let request = self.as_app(app, Method::POST, &path)?;
        let issued: InstallationToken = read_json(check(execute(request).await?).await?).await?;
        tokens.insert(
            installation,
            (issued.token.clone(), issued.expires_at - TOKEN_MARGIN),
        );
        Ok(issued.token)
    }
}

/// The App's JWT: RS256, issued 60 s in the past (clock drift), valid 9 minutes.
fn app_jwt(app: &App) -> Result<String, GithubError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = AppClaims {
        iat: now.saturating_sub(60),
        exp: now + 540,
        iss: &app.id,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &app.key,
    )
    .map_err(|_| GithubError::Config("cannot sign the GitHub App JWT"))
}

pub async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, GithubError> {
    response
        .json()
        .await
        .map_err(|err| GithubError::BadResponse(err.without_url().to_string()))
}

async fn execute(request: RequestBuilder) -> Result<Response, GithubError> {
    request.send().await.map_err(|err| {
        // Without the URL: an error must not carry a token-bearing redirect target.
        GithubError::Transport(err.without_url().to_string())
    })
}

/// Passes 2xx/3xx through; turns the rest into a classified error.
async fn check(response: Response) -> Result<Response, GithubError> {
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    if let Some(wait) = rate_limit_wait(status, &headers, &body) {
        return Err(GithubError::RateLimited(wait));
    }
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    Err(GithubError::Status {
        status: status.as_u16(),
        message,
    })
}

/// GitHub's rate limits: `retry-after` (secondary limits, 429), an exhausted primary
/// limit (`x-ratelimit-remaining: 0` → until `x-ratelimit-reset`), or a 403/429 that
/// says "rate limit" with neither (at least a minute).
fn rate_limit_wait(
    status: StatusCode,
    headers: &header::HeaderMap,
    body: &str,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds.max(1)));
    }
    if number("x-ratelimit-remaining") == Some(0) {
        if let Some(reset) = number("x-ratelimit-reset") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS || body.to_ascii_lowercase().contains("rate limit") {
        return Some(SECONDARY_LIMIT_WAIT);
    }
    None
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &header::HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Outcome;

    /// What the queue makes of an error, through the one mapping in `jobs`.
    trait QueueOutcome {
        fn outcome(self) -> Outcome;
    }

    impl QueueOutcome for GithubError {
        fn outcome(self) -> Outcome {
            Stop::from(self).into()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> header::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn rate_limits_become_waits() {
        let retry_after = headers(&[("retry-after", "30")]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &retry_after, ""),
            Some(Duration::from_secs(30))
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = (now + 120).to_string();
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &primary, "").unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers(&[]),
                r#"{"message":"You have exceeded a secondary rate limit"}"#
            ),
            Some(SECONDARY_LIMIT_WAIT)
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers(&[]),
                r#"{"message":"Resource not accessible by integration"}"#
            ),
            None
        );
        assert_eq!(
            rate_limit_wait(StatusCode::NOT_FOUND, &retry_after, ""),
            None
        );
    }

    #[test]
    fn errors_are_classified_for_the_queue() {
        let status = |status| GithubError::Status {
            status,
            message: "x".into(),
        };
        assert!(matches!(
            status(502).outcome(),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(status(408).outcome(), Outcome::Retry { .. }));
        assert!(matches!(status(404).outcome(), Outcome::Failed(_)));
        assert!(matches!(status(422).outcome(), Outcome::Failed(_)));
        assert_eq!(
            GithubError::RateLimited(Duration::from_secs(9)).outcome(),
            Outcome::retry_after("GitHub rate limit; retry in 9s", Duration::from_secs(9))
        );
    }

    #[test]
    fn finds_the_next_page() {
        let link = headers(&[(
            "link",
            r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#,
        )]);
        assert_eq!(
            next_link(&link).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        let last = headers(&[("link", r#"<https://api.github.com/x?page=1>; rel="prev""#)]);
        assert_eq!(next_link(&last), None);
    }
}
