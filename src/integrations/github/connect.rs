//! Connecting a user's GitHub account by the OAuth web flow (SPEC §6.2): a single-use
//! `state` bound to the user, GitHub's code exchanged for the user's token, the identity
//! read with it (`GET /user`) and kept with the token sealed. Then the user's projects are
//! checked with it.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{access, client::Credential, identity, GithubError};
use crate::{
    auth::AuthUser,
    error::{
        created, ok,
        responses::{envelope_schema, Authenticated, EmptyResponse, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::Query,
    projects::store as projects,
    state::AppState,
};

pub const CALLBACK_PATH: &str = "/api/v1/integrations/github/callback";
/// Where the browser lands once connected: the console's account screen.
const CONSOLE_AFTER_CONNECT: &str = "/#/account?github=connected";
const STATE_BYTES: usize = 32;
const NOT_CONFIGURED: &str =
    "GitHub sign-in is not configured on this server (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)";

/// Where to send the user to authorize CodeSherpa on GitHub.
#[derive(Debug, Serialize, ToSchema)]
pub struct Authorization {
    /// Open this in the browser; GitHub sends the user back to the callback.
    #[schema(
        example = "https://github.com/login/oauth/authorize?client_id=Iv1.abc&state=5f2c…&redirect_uri=https%3A%2F%2Fcodesherpa.example%2Fapi%2Fv1%2Fintegrations%2Fgithub%2Fcallback"
    )]
    pub authorize_url: String,
    /// The `state` in the URL works once, until then.
    pub expires_at: DateTime<Utc>,
}

envelope_schema!(GithubAuthorizationResponse, Authorization);
envelope_schema!(GithubIdentityResponse, identity::GithubIdentity);

#[utoipa::path(post, path = "/api/v1/user/github/connect", tag = "integrations", security(("bearer" = [])),
    responses(
        (status = 201, description = "Open `authorize_url` in the browser within 10 minutes", body = GithubAuthorizationResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn connect(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<impl IntoResponse> {
    let config = &state.config.github;
    let oauth = config
        .oauth
        .as_ref()
        .ok_or(Error::NotConfigured(NOT_CONFIGURED))?;
    let mut bytes = [0u8; STATE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let flow_state = hex::encode(bytes);
    let expires_at = identity::create_state(&state.db, user.id, &flow_state).await?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &oauth.client_id)
        .append_pair("state", &flow_state)
        .append_pair("redirect_uri", &redirect_uri(&state));
    if let Some(scope) = &config.oauth_scope {
        query.append_pair("scope", scope);
    }
    let authorize_url = format!(
        "{}/login/oauth/authorize?{}",
        config.web_url,
        query.finish()
    );
    Ok(created(
        Authorization {
            authorize_url,
            expires_at,
        },
        "Open authorize_url to connect GitHub",
    ))
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.config.github.public_url)
}

/// What GitHub appends to the callback URL.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code (absent when the user declined).
    #[param(max_length = 200)]
    pub code: Option<String>,
    /// The `state` of `authorize_url`.
    #[param(max_length = 200)]
    pub state: Option<String>,
    /// Set by GitHub when the user declined (`access_denied`).
    #[param(max_length = 200)]
    pub error: Option<String>,
    #[param(max_length = 1000)]
    pub error_description: Option<String>,
    #[param(max_length = 1000)]
    pub error_uri: Option<String>,
}

#[derive(Deserialize)]
struct TokenGrant {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct GithubUser {
    login: String,
    id: i64,
}

#[utoipa::path(get, path = "/api/v1/integrations/github/callback", tag = "integrations",
    params(CallbackParams),
    responses(
        (status = 302, description = "Connected: the browser goes on to the console's account screen"),
        (status = 400, description = "A wrong, expired or used state, a declined authorization or a code GitHub refused; nothing is stored", body = ErrorBody),
        (status = 502, description = "GitHub's answer could not be used", body = ErrorBody),
        (status = 503, description = "GitHub sign-in is not configured (`not_configured`), GitHub is unreachable, or the database is unavailable", body = ErrorBody),
        (status = 500, description = "Internal error (details are logged, never sent)", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    Query(params): Query<CallbackParams>,
) -> Result<Response> {
    let oauth = state
        .config
        .github
        .oauth
        .clone()
        .ok_or(Error::NotConfigured(NOT_CONFIGURED))?;
    let flow_state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::BadRequest("The callback has no state".into()))?;
    let user_id = identity::take_state(&state.db, flow_state)
        .await?
        .ok_or_else(|| {
            Error::BadRequest(
                "The state is not valid: it is wrong, expired or already used. Connect GitHub again."
                    .into(),
            )
        })?;
    if params.error.is_some() {
        return Err(Error::BadRequest(
            "GitHub authorization was declined; nothing was connected".into(),
        ));
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::BadRequest("The callback has no code".into()))?;
    let token = exchange(&state, &oauth, code).await?;
    let (me, _): (GithubUser, _) = state
        .github
        .get_json_as("/user", Credential::User(&token))
        .await
        .map_err(github_failure)?;
    let sealed = state.github_tokens.seal(user_id, &token);
    identity::save(&state.db, user_id, me.id, &me.login, &sealed).await?;
    tracing::info!(user_id, github_login = %me.login, "GitHub account connected");
    // The user's projects are checked with the new identity; not part of the answer.
    let background = state.clone();
    tokio::spawn(async move { recheck_all(&background, user_id).await });
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, CONSOLE_AFTER_CONNECT)],
    )
        .into_response())
}

/// `POST {GITHUB_WEB_URL}/login/oauth/access_token`: the code for the user's token.
async fn exchange(
    state: &AppState,
    oauth: &super::settings::GithubOAuth,
    code: &str,
) -> Result<String> {
    let url = format!("{}/login/oauth/access_token", state.config.github.web_url);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &oauth.client_id)
        .append_pair("client_secret", &oauth.client_secret)
        .append_pair("code", code)
        .append_pair("redirect_uri", &redirect_uri(state))
        .finish();
    let response = state
        .github
        .http()
        .post(url)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(error = %err.without_url(), "GitHub's token exchange is unreachable");
            Error::Unavailable("GitHub could not be reached; try again")
        })?;
    let status = response.status();
    // GitHub answers a refused code with 200 and `error` (sometimes a 4xx): either way the
    // code is no good. Anything else unreadable is GitHub's failure.
    let grant = response.json::<TokenGrant>().await.ok();
    match grant {
        Some(TokenGrant {
            access_token: Some(token),
            error: None,
        }) if status.is_success() && !token.is_empty() => Ok(token),
        Some(TokenGrant {
            error: Some(error), ..
        }) => {
            tracing::info!(%error, "GitHub refused an OAuth code");
            Err(Error::BadRequest(
                "GitHub did not accept the authorization code (wrong, expired or used); \
                 connect GitHub again"
                    .into(),
            ))
        }
        _ => {
            tracing::warn!(%status, "GitHub's token exchange answered something unusable");
            Err(Error::BadGateway("GitHub did not exchange the code".into()))
        }
    }
}

fn github_failure(err: GithubError) -> Error {
    tracing::warn!(error = %err, "reading the connected GitHub user failed");
    match err {
        GithubError::Transport(_) => Error::Unavailable("GitHub could not be reached; try again"),
        _ => Error::BadGateway("GitHub's user could not be read".into()),
    }
}

/// Asks GitHub to revoke the app's grant for the user (`DELETE /applications/{client_id}/
/// grant`, basic authentication with the client credentials), so the token forgotten here
/// stops working there too. Best effort: GitHub being away does not keep a user connected.
async fn revoke_grant(state: &AppState, user_id: i64) -> Result<()> {
    let (Some(oauth), Some(connected)) = (
        &state.config.github.oauth,
        identity::connected(&state.db, user_id).await?,
    ) else {
        return Ok(());
    };
    let Some(token) = state.github_tokens.open(user_id, &connected.token) else {
        return Ok(());
    };
    let revoked = state
        .github
        .revoke_grant(&oauth.client_id, &oauth.client_secret, &token)
        .await;
    if let Err(err) = revoked {
        tracing::warn!(error = %err, user_id, "GitHub did not revoke a grant");
    }
    Ok(())
}

async fn recheck_all(state: &AppState, user_id: i64) {
    let projects = match projects::on_github(&state.db, user_id).await {
        Ok(projects) => projects,
        Err(err) => {
            tracing::warn!(error = %err, user_id, "cannot list projects to check");
            return;
        }
    };
    for project in projects {
        if let Err(err) = access::check(state, project).await {
            tracing::warn!(error = %err, user_id, "repository access check failed");
        }
    }
}

#[utoipa::path(get, path = "/api/v1/user/github", tag = "integrations", security(("bearer" = [])),
    responses(
        (status = 200, description = "The connected GitHub account", body = GithubIdentityResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No GitHub account is connected", body = ErrorBody),
    ))]
pub async fn show(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<Response> {
    let identity = identity::get(&state.db, user.id)
        .await?
        .ok_or(Error::NotFound("GitHub account"))?;
    Ok(ok(identity, "GitHub account retrieved").into_response())
}

#[utoipa::path(delete, path = "/api/v1/user/github", tag = "integrations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Disconnected (also when none was connected): the identity and its token are forgotten, and the user's projects lose their verified access", body = EmptyResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn disconnect(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Response> {
    revoke_grant(&state, user.id).await?;
    // Verifications first: a crash in between leaves an identity without verified projects,
    // never verified projects resting on a forgotten identity.
    projects::unverify_all(
        &state.db,
        user.id,
        "the GitHub account was disconnected: connect GitHub, then check again",
    )
    .await?;
    identity::delete(&state.db, user.id).await?;
    Ok(ok(None::<()>, "GitHub account disconnected").into_response())
}
