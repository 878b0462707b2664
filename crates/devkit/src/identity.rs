//! A local managed-identity token endpoint, speaking the App Service protocol that
//! `azure_identity::ManagedIdentityCredential` 1.0 uses when `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` are set, so the real credential code runs in tests.
//!
//! The protocol, as the 1.0 SDK speaks it: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=R`
//! (+ `client_id=`, `object_id=` or `msi_res_id=` for a user-assigned identity) with headers
//! `X-IDENTITY-HEADER: {IDENTITY_HEADER}` and `metadata: true`. `R` is the scope minus
//! `/.default`. The SDK needs `access_token`, `expires_on` (Unix seconds *as a string*),
//! `token_type` and `resource` in the answer, maps a 400 to "identity not assigned", and reads
//! `IDENTITY_ENDPOINT` once when the credential is built but `IDENTITY_HEADER` on every request.
//!
//! Tokens are unsigned JWTs (`alg: none`): Azurite's `--oauth basic` and the Sentinel simulator
//! check `aud`, `iss`, `iat`/`nbf`/`exp`, never the signature.

use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
/// The simulator's token builder, so issued tokens are exactly what it decodes.
pub use sentinel_sim::unsigned_jwt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

/// The API version the SDK's App Service credential sends.
pub const API_VERSION: &str = "2019-08-01";
/// The header carrying the `IDENTITY_HEADER` secret.
pub const SECRET_HEADER: &str = "x-identity-header";
/// The path the endpoint serves (App Service uses `/msi/token` too).
pub const TOKEN_PATH: &str = "/msi/token";

/// Fixed ids, so test expectations and reports are stable across runs.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-0000-4000-8000-00000000c0de";
/// The default object (principal) id of the identity.
pub const DEFAULT_OBJECT_ID: &str = "0b1d0000-0000-4000-8000-0000000000b1";

/// How the endpoint behaves. `Default` accepts any identity and issues one-hour tokens.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The `IDENTITY_HEADER` value the caller must present. Default: a random uuid.
    pub header_secret: String,
    /// `tid` and the tenant in `iss`.
    pub tenant_id: String,
    /// `oid` and `sub` of the identity.
    pub object_id: String,
    /// Lifetime of issued tokens. The SDK refreshes a cached token when 5 minutes or less remain,
    /// so a lifetime of 5 minutes or less makes every `get_token` call reach this endpoint.
    pub token_lifetime: Duration,
    /// When set, only these user-assigned client ids get tokens; any other gets the 400 the real
    /// endpoint returns for an identity not assigned to the app.
    pub allowed_client_ids: Option<Vec<String>>,
    /// Whether a request without `client_id`/`object_id`/`msi_res_id` (system-assigned) gets a
    /// token. Only consulted when `allowed_client_ids` is set.
    pub allow_system_assigned: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            header_secret: uuid::Uuid::new_v4().to_string(),
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            object_id: DEFAULT_OBJECT_ID.to_string(),
            token_lifetime: Duration::from_secs(3600),
            allowed_client_ids: None,
            allow_system_assigned: true,
        }
    }
}

/// One token request as the endpoint saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `resource` query parameter (the scope without `/.default`).
    pub resource: Option<String>,
    /// `client_id` query parameter (user-assigned identity by client id).
    pub client_id: Option<String>,
    /// `object_id` query parameter.
    pub object_id: Option<String>,
    /// `msi_res_id` query parameter.
    pub msi_res_id: Option<String>,
    /// `api-version` query parameter.
    pub api_version: Option<String>,
    /// The HTTP status the endpoint answered.
    pub status: u16,
    /// When the request arrived.
    pub at: OffsetDateTime,
}

struct Shared {
    config: Mutex<IdentityConfig>,
    requests: Mutex<Vec<TokenRequest>>,
    /// Statuses to answer instead of a token, consumed one per request (fault tests).
    failures: Mutex<Vec<u16>>,
}

/// A running token endpoint. Stops when dropped.
pub struct IdentityEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for IdentityEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityEndpoint")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl IdentityEndpoint {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start(config: IdentityConfig) -> Result<IdentityEndpoint> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the identity endpoint")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            requests: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
        });
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "identity endpoint stopped");
            }
        });
        Ok(IdentityEndpoint {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// The value for `IDENTITY_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}{}", self.addr, TOKEN_PATH)
    }

    /// The value for `IDENTITY_HEADER`.
    pub fn header_secret(&self) -> String {
        lock(&self.shared.config).header_secret.clone()
    }

    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, ready for a child's environment.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("IDENTITY_ENDPOINT".to_string(), self.endpoint()),
            ("IDENTITY_HEADER".to_string(), self.header_secret()),
        ]
    }

    /// The tenant id in issued tokens.
    pub fn tenant_id(&self) -> String {
        lock(&self.shared.config).tenant_id.clone()
    }

    /// Every request received so far, in order (rejected ones included).
    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The `resource` of every request that got a token, in order.
    pub fn issued_resources(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| r.resource)
            .collect()
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.config).token_lifetime = lifetime;
    }

    /// Makes the next requests fail with these statuses, one per request, before tokens flow again.
    pub fn fail_next(&self, statuses: &[u16]) {
        lock(&self.shared.failures).extend(statuses.iter().rev());
    }

    /// Stops serving (also done on drop).
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl Drop for IdentityEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The endpoint's router, separate so tests can drive it without a socket.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(TOKEN_PATH, get(token))
        .route(&format!("{TOKEN_PATH}/"), get(token))
        .with_state(shared)
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (status, response) = answer(&shared, &query, &headers, now);
    lock(&shared.requests).push(TokenRequest {
        resource: query.get("resource").cloned(),
        client_id: query.get("client_id").cloned(),
        object_id: query.get("object_id").cloned(),
        msi_res_id: query.get("msi_res_id").cloned(),
        api_version: query.get("api-version").cloned(),
        status: status.as_u16(),
        at: now,
    });
    response
}

fn answer(
    shared: &Shared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> (StatusCode, Response) {
    let config = lock(&shared.config).clone();
    let error = |status: StatusCode, message: &str| {
        let body = json!({"statusCode": status.as_u16(), "message": message});
        (status, (status, Json(body)).into_response())
    };

    // The real endpoint checks the secret before anything else.
    match headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()) {
        None => return error(StatusCode::BAD_REQUEST, "X-IDENTITY-HEADER is missing"),
        Some(v) if v != config.header_secret => {
            return error(StatusCode::UNAUTHORIZED, "X-IDENTITY-HEADER is invalid")
        }
        Some(_) => {}
    }
    if query.get("api-version").map(String::as_str) != Some(API_VERSION) {
        return error(
            StatusCode::BAD_REQUEST,
            "api-version is missing or unsupported",
        );
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "resource is missing");
    };
    if let Some(status) = lock(&shared.failures).pop() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "injected failure");
    }
    let client_id = query.get("client_id");
    if let Some(allowed) = &config.allowed_client_ids {
        let user_assigned = client_id.is_some()
            || query.contains_key("object_id")
            || query.contains_key("msi_res_id");
        let ok = match client_id {
            Some(id) => allowed.iter().any(|a| a.eq_ignore_ascii_case(id)),
            None => !user_assigned && config.allow_system_assigned,
        };
        if !ok {
            return error(
                StatusCode::BAD_REQUEST,
                "Unable to load the proper Managed Identity.",
            );
        }
    }

    let lifetime = i64::try_from(config.token_lifetime.as_secs()).unwrap_or(i64::MAX / 4);
    let iat = now.unix_timestamp() - 300; // Entra back-dates iat/nbf by 5 minutes for clock skew.
    let exp = now.unix_timestamp() + lifetime;
    // The app id of a system-assigned identity is not observable here; a fixed one stands in.
    let appid = client_id
        .cloned()
        .unwrap_or_else(|| "5ca1ab1e-0000-4000-8000-000000000000".to_string());
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", config.tenant_id),
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "appid": appid,
        "appidacr": "2",
        "idp": format!("https://sts.windows.net/{}/", config.tenant_id),
        "idtyp": "app",
        "oid": config.object_id,
        "sub": config.object_id,
        "tid": config.tenant_id,
        "ver": "1.0",
    });
    let mut body = json!({
        "access_token": unsigned_jwt(&claims),
        "expires_on": exp.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    if let Some(id) = client_id {
        body["client_id"] = json!(id);
    }
    (StatusCode::OK, Json(body).into_response())
}

/// The claims of a JWT, without any signature check (test assertions).
pub fn jwt_claims(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("a JWT has three parts")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("JWT payload is not base64url")?;
    serde_json::from_slice(&bytes).context("JWT payload is not JSON")
}

/// Poisoning only happens if a test panicked while holding the lock; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(ep: &IdentityEndpoint, query: &str, secret: Option<&str>) -> reqwest::RequestBuilder {
        crate::install_crypto_provider();
        let mut req = reqwest::Client::new().get(format!("{}?{query}", ep.endpoint()));
        if let Some(s) = secret {
            req = req.header("X-IDENTITY-HEADER", s);
        }
        req
    }

    #[tokio::test]
    async fn issues_a_token_for_the_requested_resource() {
        let ep = IdentityEndpoint::start(IdentityConfig::default())
            .await
            .unwrap();
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let rsp = get(
            &ep,
            "api-version=2019-08-01&resource=https://management.azure.com&client_id=abc",
            Some(&ep.header_secret()),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(rsp.status(), 200);
        let body: Value = rsp.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["resource"], "https://management.azure.com");
        let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
        assert!(expires_on >= before + 3600);
        let claims = jwt_claims(body["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://management.azure.com");
        assert_eq!(
            claims["iss"],
            format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")
        );
        assert_eq!(claims["oid"], DEFAULT_OBJECT_ID);
        assert_eq!(claims["tid"], DEFAULT_TENANT_ID);
        assert_eq!(claims["appid"], "abc");
        assert_eq!(claims["exp"], expires_on);
        assert!(claims["nbf"].as_i64().unwrap() <= before);

        let seen = ep.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].resource.as_deref(),
            Some("https://management.azure.com")
        );
        assert_eq!(seen[0].client_id.as_deref(), Some("abc"));
        assert_eq!(ep.issued_resources(), vec!["https://management.azure.com"]);
    }

    #[tokio::test]
    async fn rejects_a_missing_or_wrong_secret() {
        let ep = IdentityEndpoint::start(IdentityConfig::default())
            .await
            .unwrap();
        let q = "api-version=2019-08-01&resource=https://storage.azure.com";
        let missing = get(&ep, q, None).send().await.unwrap();
        assert_eq!(missing.status(), 400);
        let wrong = get(&ep, q, Some("nope")).send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        let no_resource = get(&ep, "api-version=2019-08-01", Some(&ep.header_secret()))
            .send()
            .await
            .unwrap();
        assert_eq!(no_resource.status(), 400);
        assert!(ep.issued_resources().is_empty());
        assert_eq!(
            ep.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![400, 401, 400]
        );
    }

    #[tokio::test]
    async fn enforces_allowed_identities_and_injected_failures() {
        let ep = IdentityEndpoint::start(IdentityConfig {
            allowed_client_ids: Some(vec!["good".into()]),
            allow_system_assigned: false,
            ..IdentityConfig::default()
        })
        .await
        .unwrap();
        let secret = ep.header_secret();
        let base = "api-version=2019-08-01&resource=https://storage.azure.com";
        let status = |q: String| {
            let req = get(&ep, &q, Some(&secret));
            async move { req.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(status(base.to_string()).await, 400);
        assert_eq!(status(format!("{base}&client_id=bad")).await, 400);
        assert_eq!(status(format!("{base}&client_id=good")).await, 200);
        ep.fail_next(&[503, 500]);
        assert_eq!(status(format!("{base}&client_id=good")).await, 503);
        assert_eq!(status(format!("{base}&client_id=good")).await, 500);
        assert_eq!(status(format!("{base}&client_id=good")).await, 200);
    }

    #[test]
    fn unsigned_jwt_round_trips() {
        let claims = json!({"aud": "x", "n": 1});
        let token = unsigned_jwt(&claims);
        assert!(token.ends_with('.'));
        assert_eq!(token.matches('.').count(), 2);
        assert_eq!(jwt_claims(&token).unwrap(), claims);
    }
}
