//! Console sign-in. An operator enters an API key once, in a form (never in a URL); the console
//! answers with a session cookie that names the key's role and an expiry, signed with a key
//! derived from every API key (HMAC-SHA-256). The cookie is `HttpOnly` and `SameSite=Strict`,
//! and `Secure` when the request came over TLS (a proxy's `X-Forwarded-Proto: https`). It holds
//! no key: a stolen cookie ends at its expiry, and any change to the keys ends every session.
//!
//! Every form that changes something carries a CSRF token: an HMAC of the session cookie,
//! checked in constant time.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use maud::html;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::layout;
use crate::service::state::{AppState, Role};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const COOKIE: &str = "salvage_console";

/// The key that signs sessions, derived from every API key and its role.
pub fn derive_key(operator: &[SecretString], read_only: &[SecretString]) -> SecretSlice<u8> {
    let mut mac = match HmacSha256::new_from_slice(b"salvage console sessions v1") {
        Ok(m) => m,
        // HMAC takes a key of any length.
        Err(_) => return SecretSlice::from(Vec::new()),
    };
    for (tag, keys) in [("operator", operator), ("read-only", read_only)] {
        for k in keys {
            let k = k.expose_secret().as_bytes();
            mac.update(tag.as_bytes());
            mac.update(&(k.len() as u64).to_be_bytes());
            mac.update(k);
        }
    }
    SecretSlice::from(mac.finalize().into_bytes().to_vec())
}

fn mac(key: &[u8], parts: &[&str]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p.as_bytes());
    }
    Some(m)
}

fn sign(key: &[u8], parts: &[&str]) -> String {
    mac(key, parts)
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

fn verify(key: &[u8], parts: &[&str], signature: &str) -> bool {
    let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    mac(key, parts).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// Unix seconds.
    pub expires: i64,
    cookie: String,
}

impl Session {
    /// A cookie value for `role` until `expires` (unix seconds).
    pub fn issue(key: &[u8], role: Role, expires: i64) -> Session {
        let e = expires.to_string();
        let sig = sign(key, &["session", role.as_str(), &e]);
        Session {
            role,
            expires,
            cookie: format!("v1.{}.{e}.{sig}", role.as_str()),
        }
    }

    /// The session of a cookie value, if its signature holds and it has not expired at `now`.
    pub fn from_cookie(key: &[u8], value: &str, now: i64) -> Option<Session> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(role), Some(expires), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if !verify(key, &["session", role, expires], sig) {
            return None;
        }
        let role = Role::parse(role)?;
        let expires: i64 = expires.parse().ok()?;
        (expires > now).then(|| Session {
            role,
            expires,
            cookie: value.to_string(),
        })
    }

    pub fn cookie_value(&self) -> &str {
        &self.cookie
    }

    /// The CSRF token of this session's forms.
    pub fn csrf(&self, key: &[u8]) -> String {
        sign(key, &["csrf", &self.cookie])
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, key: &[u8], token: &str) -> bool {
        verify(key, &["csrf", &self.cookie], token)
    }

    pub fn can_change(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The session cookie's value in `headers`, if any.
pub fn cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Whether the request came over TLS (as a proxy in front says).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Percent-encodes everything but the unreserved characters (for `next=`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in: only a console path of this origin.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("//")
                && !n.contains("\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/console/".to_string(),
    }
}

/// No session: the browser is sent to sign in, and back to `next` afterwards.
#[derive(Debug)]
pub struct SignInFirst {
    next: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        see_other(&format!("/console/sign-in?next={}", encode(&self.next)))
    }
}

/// The session of the request, or what sends the browser to sign in.
pub fn require(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Session, SignInFirst> {
    let now = state.clock.now().timestamp();
    match cookie_in(headers).and_then(|c| Session::from_cookie(state.console.key(), &c, now)) {
        Some(s) => Ok(s),
        None => Err(SignInFirst {
            next: uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/console/")
                .to_string(),
        }),
    }
}

/// A `303 See Other` to `to`.
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The answer to a form whose CSRF token does not hold.
pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            "Form expired",
            html! {
                h1 { "This form has expired" }
                p { "The form was not sent from this console session (or the session changed). Nothing was done. "
                    a href="/console/" { "Back to the console" } ", reload the page and try again." }
            },
        ),
    )
        .into_response()
}

/// The answer to a change a read-only key asked for.
pub fn read_only_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            "Read-only",
            html! {
                h1 { "Read-only access" }
                p { "You signed in with a read-only key: you can see everything but change nothing. Nothing was done. "
                    a href="/console/" { "Back to the console" } }
            },
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

fn sign_in_page(next: &str, error: Option<&str>) -> maud::Markup {
    layout::bare(
        "Sign in",
        html! {
            main class="sign-in" {
                h1 { "Salvage console" }
                p { "Sign in with one of this deployment's API keys. Read-only keys see everything and change nothing." }
                @if let Some(e) = error {
                    p class="error" role="alert" { (e) }
                }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="next" value=(next);
                    label for="key" { "API key" }
                    input id="key" name="key" type="password" autocomplete="off" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// `GET /console/sign-in`.
pub async fn sign_in_form(Query(q): Query<NextQuery>) -> Response {
    sign_in_page(&safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
    next: Option<String>,
}

/// `POST /console/sign-in`.
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(role) = state.role_of(form.key.trim()) else {
        tracing::warn!("console sign-in refused: unknown key");
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_page(
                &next,
                Some("That key is not one of this deployment's API keys."),
            ),
        )
            .into_response();
    };
    let ttl = state.console.session_minutes * 60;
    let session = Session::issue(
        state.console.key(),
        role,
        state.clock.now().timestamp() + ttl,
    );
    let mut cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={ttl}",
        session.cookie_value()
    );
    if over_tls(&headers) {
        cookie.push_str("; Secure");
    }
    let mut r = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !session.csrf_ok(state.console.key(), &form.csrf) {
        return csrf_refused();
    }
    let mut r = see_other("/console/sign-in");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "salvage_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretSlice<u8> {
        derive_key(&[SecretString::from("operator-key-0123456789")], &[])
    }

    #[test]
    fn a_session_verifies_until_it_expires() {
        let k = key();
        let s = Session::issue(k.expose_secret(), Role::ReadOnly, 1_000);
        assert_eq!(
            Session::from_cookie(k.expose_secret(), s.cookie_value(), 999),
            Some(s.clone())
        );
        assert_eq!(
            Session::from_cookie(k.expose_secret(), s.cookie_value(), 1_000),
            None
        );
    }

    #[test]
    fn a_forged_or_re_roled_cookie_is_refused() {
        let k = key();
        let s = Session::issue(k.expose_secret(), Role::ReadOnly, 1_000);
        let forged = s.cookie_value().replace("read-only", "operator");
        assert_eq!(Session::from_cookie(k.expose_secret(), &forged, 0), None);
        let longer = s.cookie_value().replace("1000", "9999");
        assert_eq!(Session::from_cookie(k.expose_secret(), &longer, 0), None);
        let other = derive_key(&[SecretString::from("another-key-0123456789")], &[]);
        assert_eq!(
            Session::from_cookie(other.expose_secret(), s.cookie_value(), 0),
            None
        );
        assert_eq!(Session::from_cookie(k.expose_secret(), "garbage", 0), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let k = key();
        let a = Session::issue(k.expose_secret(), Role::Operator, 1_000);
        let b = Session::issue(k.expose_secret(), Role::Operator, 2_000);
        let token = a.csrf(k.expose_secret());
        assert!(a.csrf_ok(k.expose_secret(), &token));
        assert!(!b.csrf_ok(k.expose_secret(), &token));
        assert!(!a.csrf_ok(k.expose_secret(), ""));
    }

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/orders?x=1")),
            "/console/orders?x=1"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("//evil.example/console")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; salvage_console=v1.x; b=2"),
        );
        assert_eq!(cookie_in(&h).as_deref(), Some("v1.x"));
    }
}
