//! Who is looking: the console's session cookie, its CSRF token, and the language.
//!
//! A session is a login token (the API's, 12 hours) held in an HttpOnly, SameSite=Strict
//! cookie (Secure under TLS); the API never reads cookies, so a session cannot call it.
//! Every form carries a CSRF token derived from the session's secret, which no other site
//! can read; the log-in form, before there is a session, carries a random value that
//! must match its cookie.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};

use super::i18n::{Lang, Tr};
use super::WebError;
use crate::accounts::{self, Principal};
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "tafel_session";
/// The log-in form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "tafel_login";
/// The chosen language.
pub const LANG_COOKIE: &str = "tafel_lang";

/// A logged-in person, the page's language and the CSRF token of their forms.
pub struct Viewer {
    /// Who it is (role, authority, school), as the API's authorisation sees them.
    pub p: Principal,
    /// Texts in the page's language.
    pub tr: Tr,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::Csrf(self.tr))
        }
    }
}

/// The CSRF token of a session: a hash of its secret, which only the browser holding the
/// cookie knows.
pub fn csrf_of(secret: &str) -> String {
    let digest = accounts::hash_token(&format!("tafel-console-csrf:{secret}"));
    digest[..32].to_owned()
}

/// Equal without telling where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The page's language: the switch's cookie, else the browser's Accept-Language.
pub fn lang_of(req: &HttpRequest) -> Lang {
    if let Some(l) = req.cookie(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
        return l;
    }
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept)
        .unwrap_or(Lang::De)
}

/// Whether cookies must be Secure (tafel serves TLS itself, or a proxy says it did).
pub fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A cookie of the console: HttpOnly, SameSite=Strict, path `/`, Secure under TLS.
pub fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String, max_age: i64) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// A cookie that ends the one of this name.
pub fn removal<'a>(req: &HttpRequest, name: &'a str) -> Cookie<'a> {
    cookie(req, name, String::new(), 0)
}

/// Where to go back to after logging in: a path of this site, never another host.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 512 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A logged-in person on a page about their own account (the password form, logging
/// out): also one who logged in with a one-time password and must choose their own.
pub struct AccountViewer(pub Viewer);

/// The viewer of the request's session cookie.
fn viewer_of(req: &HttpRequest) -> Pin<Box<dyn Future<Output = Result<Viewer, WebError>>>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let secret = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let tr = Tr { lang: lang_of(req) };
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    Box::pin(async move {
        let state = state.ok_or(WebError::Internal(tr))?;
        let login = || WebError::Login { next: next.clone() };
        let secret = secret.filter(|s| !s.is_empty()).ok_or_else(login)?;
        let s = secret.clone();
        let principal = state
            .db
            .run(move |conn| accounts::authenticate(conn, &s))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session lookup");
                WebError::Internal(tr)
            })?
            .ok_or_else(login)?;
        Ok(Viewer {
            p: principal,
            tr,
            csrf: csrf_of(&secret),
        })
    })
}

impl FromRequest for Viewer {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Viewer, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let viewer = viewer_of(req);
        // A page (GET) returns here once the password is chosen; after a form, the start.
        let next = if req.method() == actix_web::http::Method::GET {
            req.uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into())
        } else {
            "/".into()
        };
        Box::pin(async move {
            let v = viewer.await?;
            if v.p.must_change_password {
                return Err(WebError::PasswordChange { next });
            }
            Ok(v)
        })
    }
}

impl FromRequest for AccountViewer {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<AccountViewer, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let viewer = viewer_of(req);
        Box::pin(async move { viewer.await.map(AccountViewer) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/admin/geraete?q=x")), "/admin/geraete?q=x");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_of("tafel_a"), csrf_of("tafel_b"));
        assert_eq!(csrf_of("tafel_a").len(), 32);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
