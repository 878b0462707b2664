//! Bearer-token checks: decode the (unsigned) JWT the caller presents, check its audience and
//! expiry like the real services do, and name the identity the rate limit is counted against.
//!
//! Signatures are not checked: the tokens come from the local managed-identity endpoint of the
//! test kit, which cannot sign with Entra ID keys. What matters for the client under test is
//! that it asks for the right scope and refreshes expired tokens, and those are checked.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

/// Who is calling, as far as the simulator cares.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Rate-limit bucket: the token's `oid`, else `appid`, else `sub`, else one shared bucket.
    pub identity: String,
    /// The token's `tid`, echoed by the Graph route as `azureTenantId`.
    pub tenant: Option<String>,
}

/// Why a request was refused with 401, with the ARM error code and message for each case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuthError {
    MissingHeader,
    NotBearer,
    Malformed(&'static str),
    WrongAudience {
        actual: String,
        allowed: Vec<String>,
    },
    Expired {
        exp: i64,
        now: i64,
    },
}

impl AuthError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            AuthError::MissingHeader | AuthError::NotBearer => "AuthenticationFailed",
            AuthError::Malformed(_) => "InvalidAuthenticationToken",
            AuthError::WrongAudience { .. } => "InvalidAuthenticationTokenAudience",
            AuthError::Expired { .. } => "ExpiredAuthenticationToken",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            AuthError::MissingHeader => {
                "Authentication failed. The 'Authorization' header is missing.".to_owned()
            }
            AuthError::NotBearer => concat!(
                "Authentication failed. ",
                "The 'Authorization' header is provided in an invalid format."
            )
            .to_owned(),
            AuthError::Malformed(why) => format!("The access token is invalid: {why}."),
            AuthError::WrongAudience { actual, allowed } => {
                let allowed: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
                format!(
                    "The access token has been obtained for wrong audience or resource '{actual}'. \
                     It should exactly match with one of the allowed audiences {}.",
                    allowed.join(",")
                )
            }
            AuthError::Expired { exp, now } => format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                utc(*exp),
                utc(*now)
            ),
        }
    }
}

/// Checks the `Authorization` header against the audiences a route accepts.
///
/// Audiences compare without their trailing `/` and without case, because Entra ID issues
/// both spellings depending on how the scope was requested.
pub(crate) fn authenticate(headers: &HeaderMap, audiences: &[String]) -> Result<Caller, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingHeader)?
        .to_str()
        .map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let claims = decode_claims(token.trim())?;

    let token_audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(AuthError::Malformed("it has no 'aud' claim")),
    };
    let matches = token_audiences.iter().any(|actual| {
        audiences.iter().any(|allowed| {
            normalise_audience(actual).eq_ignore_ascii_case(normalise_audience(allowed))
        })
    });
    if !matches {
        return Err(AuthError::WrongAudience {
            actual: token_audiences.join(","),
            allowed: allowed_spellings(audiences),
        });
    }

    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(AuthError::Malformed("it has no numeric 'exp' claim"))?;
    let now = now_unix();
    if exp <= now as f64 {
        return Err(AuthError::Expired {
            exp: exp as i64,
            now,
        });
    }

    let claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let identity = claim("oid")
        .or_else(|| claim("appid"))
        .or_else(|| claim("sub"))
        .unwrap_or_else(|| "shared".to_owned());
    Ok(Caller {
        identity,
        tenant: claim("tid"),
    })
}

/// Builds an unsigned JWT (`alg: none`, empty signature) carrying `claims`, as the test kit's
/// identity endpoint hands out. Claims worth setting: `aud`, `exp`, and `oid` for the rate limit.
pub fn unsigned_jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// Claims for a token that is valid for an hour: the shape a managed identity receives.
pub(crate) fn claims_for(audience: &str, oid: &str) -> Value {
    let now = now_unix();
    serde_json::json!({
        "aud": audience,
        "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "oid": oid,
        "sub": oid,
        "tid": "00000000-0000-0000-0000-000000000000",
    })
}

fn decode_claims(token: &str) -> Result<serde_json::Map<String, Value>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "it is not a JWT (header.payload.signature)",
        ));
    };
    decode_segment(header).ok_or(AuthError::Malformed("its header is not base64url JSON"))?;
    match decode_segment(payload) {
        Some(Value::Object(claims)) => Ok(claims),
        _ => Err(AuthError::Malformed(
            "its payload is not a base64url JSON object",
        )),
    }
}

/// Decodes one JWT segment; padding is tolerated because some hand-made tokens carry it.
fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .or_else(|_| URL_SAFE.decode(segment))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn normalise_audience(audience: &str) -> &str {
    audience.trim().trim_end_matches('/')
}

/// The real error lists every accepted spelling, with and without the slash.
fn allowed_spellings(audiences: &[String]) -> Vec<String> {
    audiences
        .iter()
        .flat_map(|a| {
            let bare = normalise_audience(a);
            [format!("{bare}/"), bare.to_owned()]
        })
        .collect()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn utc(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    fn audiences() -> Vec<String> {
        vec!["https://management.azure.com".to_owned()]
    }

    #[test]
    fn accepts_audience_with_or_without_slash() {
        for aud in [
            "https://management.azure.com",
            "https://management.azure.com/",
        ] {
            let token = unsigned_jwt(&claims_for(aud, "o1"));
            let caller = authenticate(&headers(&token), &audiences()).unwrap();
            assert_eq!(caller.identity, "o1");
        }
    }

    #[test]
    fn identity_falls_back_from_oid_to_appid_to_sub_to_shared() {
        let exp = now_unix() + 60;
        let aud = "https://management.azure.com";
        let cases = [
            (
                serde_json::json!({"aud": aud, "exp": exp, "appid": "a", "sub": "s"}),
                "a",
            ),
            (serde_json::json!({"aud": aud, "exp": exp, "sub": "s"}), "s"),
            (serde_json::json!({"aud": aud, "exp": exp}), "shared"),
        ];
        for (claims, want) in cases {
            let caller = authenticate(&headers(&unsigned_jwt(&claims)), &audiences()).unwrap();
            assert_eq!(caller.identity, want);
        }
    }

    #[test]
    fn refuses_wrong_audience_expired_and_garbled_tokens() {
        let wrong = unsigned_jwt(&claims_for("https://storage.azure.com", "o"));
        let err = authenticate(&headers(&wrong), &audiences()).unwrap_err();
        assert_eq!(err.code(), "InvalidAuthenticationTokenAudience");
        assert!(err.message().contains("'https://management.azure.com/'"));

        let expired = serde_json::json!({"aud": "https://management.azure.com", "exp": 1000});
        let err = authenticate(&headers(&unsigned_jwt(&expired)), &audiences()).unwrap_err();
        assert_eq!(err.code(), "ExpiredAuthenticationToken");

        for garbled in ["abc", "a.b.c", "a.b", "...."] {
            let err = authenticate(&headers(garbled), &audiences()).unwrap_err();
            assert_eq!(err.code(), "InvalidAuthenticationToken", "{garbled}");
        }
        assert_eq!(
            authenticate(&HeaderMap::new(), &audiences()).unwrap_err(),
            AuthError::MissingHeader
        );
    }
}
