//! The web console: server-rendered German (and English) pages for district, authority
//! and school admins and for teachers, served by tafel itself.
//!
//! Pages are askama templates compiled into the binary (`templates/`), texts are Fluent
//! messages (`locales/`), the stylesheet and htmx are served from the binary
//! (`static/`); nothing is loaded from another host. Every page works without
//! JavaScript for reading and for its forms; htmx only refreshes parts in place.
//!
//! Handlers authorise with the API's rules (`api::authz`) and call the same domain
//! functions as the API; the session is a login token in a cookie ([`session`]).

pub mod admin;
pub mod apple;
pub mod asm;
pub mod catalog;
pub mod i18n;
pub mod people;
pub mod session;
pub mod teacher;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use serde::Deserialize;

use self::i18n::{Lang, Tr};
use self::session::{Viewer, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};
use crate::accounts::Role;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Largest form body the console accepts.
const MAX_FORM: usize = 64 * 1024;

/// The first path segments the console answers (the people's listener only).
const CONSOLE_ROOTS: [&str; 6] = [
    "login",
    "logout",
    "sprache",
    "admin",
    "unterricht",
    "static",
];

/// Is this a console path (not for the device listener when people have their own)?
pub fn is_console_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    path == "/" || CONSOLE_ROOTS.contains(&first)
}

/// Registers the console's routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(MAX_FORM)
            .error_handler(|err, req| {
                WebError::BadForm(
                    Tr {
                        lang: session::lang_of(req),
                    },
                    err.to_string(),
                )
                .into()
            }),
    )
    .route("/", web::get().to(home))
    .route("/login", web::get().to(login_page))
    .route("/login", web::post().to(login))
    .route("/logout", web::post().to(logout))
    .route("/sprache", web::get().to(switch_language))
    .route("/static/{file}", web::get().to(asset))
    .service(
        web::scope("/admin")
            .configure(admin::config)
            .configure(apple::config)
            .configure(asm::config)
            .configure(catalog::config)
            .configure(people::config),
    )
    .service(web::scope("/unterricht").configure(teacher::config));
}

/// What goes wrong on a page, answered as a page (or, for a missing session, a redirect
/// to the log-in).
#[derive(Debug)]
pub enum WebError {
    /// No or an expired session.
    Login {
        /// Where to return after logging in.
        next: String,
    },
    /// The API's answer (404, 403, 400, 409 …), shown with its reason.
    Api(Tr, ApiError),
    /// A form whose CSRF token is not the session's.
    Csrf(Tr),
    /// A form that does not parse.
    BadForm(Tr, String),
    /// Something broke on our side (logged).
    Internal(Tr),
}

impl WebError {
    fn tr(&self) -> Tr {
        match self {
            WebError::Login { .. } => Tr { lang: Lang::De },
            WebError::Api(t, _)
            | WebError::Csrf(t)
            | WebError::BadForm(t, _)
            | WebError::Internal(t) => *t,
        }
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::Login { .. } => f.write_str("log-in required"),
            WebError::Api(_, e) => write!(f, "{}", e.message),
            WebError::Csrf(_) => f.write_str("form token does not match the session"),
            WebError::BadForm(_, m) => write!(f, "invalid form: {m}"),
            WebError::Internal(_) => f.write_str("internal error"),
        }
    }
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: Tr,
    chrome: Option<Chrome>,
    heading: String,
    reason: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Login { .. } => StatusCode::SEE_OTHER,
            WebError::Api(_, e) => e.status_code(),
            WebError::Csrf(_) => StatusCode::FORBIDDEN,
            WebError::BadForm(..) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::Login { next } = self {
            let to = format!("/login?next={}", url_encode(next));
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        let t = self.tr();
        let status = self.status_code();
        let heading = match status {
            StatusCode::NOT_FOUND => t.t("error-not-found"),
            StatusCode::FORBIDDEN => t.t("error-forbidden"),
            StatusCode::CONFLICT => t.t("error-conflict"),
            StatusCode::TOO_MANY_REQUESTS => t.t("error-too-many"),
            s if s.is_client_error() => t.t("error-bad-request"),
            _ => t.t("error-internal"),
        };
        let reason = match self {
            WebError::Api(_, e) if status.is_client_error() => e.message.clone(),
            WebError::Csrf(_) => t.t("error-csrf"),
            WebError::BadForm(_, m) => m.clone(),
            _ => String::new(),
        };
        let page = ErrorPage {
            t,
            chrome: None,
            heading,
            reason,
        };
        let mut res = render_with(status, &page);
        if let WebError::Api(_, e) = self {
            if let Some(secs) = e.retry_after_secs {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
        }
        res
    }
}

/// A page handler's result.
pub type PageResult = Result<HttpResponse, WebError>;

/// Turns the API's errors into the page's.
pub trait OrPage<T> {
    /// The error as a page in `t`'s language.
    fn or_page(self, t: Tr) -> Result<T, WebError>;
}

impl<T> OrPage<T> for Result<T, ApiError> {
    fn or_page(self, t: Tr) -> Result<T, WebError> {
        self.map_err(|e| page_error(t, e))
    }
}

/// The API's error as the page's: its reason shown, an internal one only logged.
fn page_error(t: Tr, e: ApiError) -> WebError {
    if e.code == ErrorCode::Internal {
        tracing::error!(error = %e.message, "console page");
        WebError::Internal(t)
    } else {
        WebError::Api(t, e)
    }
}

/// The headers of a console page: no caching of personal pages, and a content security
/// policy that allows scripts, styles and images from tafel only (the rest, no framing
/// and no sniffing, every answer gets in `startup`).
fn page_headers(res: &mut HttpResponse) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A rendered page with a status.
fn render_with(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => {
            let mut res = HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html);
            page_headers(&mut res);
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("template error")
        }
    }
}

/// A rendered page, 200.
pub fn render(page: &impl Template) -> PageResult {
    Ok(render_with(StatusCode::OK, page))
}

/// After a form: on to `to` (303, the browser GETs it).
pub fn see_other(to: &str) -> PageResult {
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish())
}

/// The frame around every page of a logged-in person: their name, the navigation of
/// their role, the log-out form's token.
pub struct Chrome {
    /// Their name.
    pub name: String,
    /// What they are (in the page's language).
    pub role: String,
    /// The navigation: path, label, whether it is the current section.
    pub nav: Vec<NavItem>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The path of this page, URL-encoded (for the language switch to return to).
    pub here: String,
}

/// One entry of the navigation.
pub struct NavItem {
    /// Path.
    pub href: &'static str,
    /// Label.
    pub label: String,
    /// The current section.
    pub current: bool,
}

impl Chrome {
    /// The frame for `v` on the page at `here`, in section `section` (a nav path).
    pub fn new(v: &Viewer, section: &str, here: &str) -> Chrome {
        let t = v.tr;
        let items: &[(&str, &str)] = if v.p.role == Role::Teacher {
            &[
                ("/unterricht", "nav-my-classes"),
                ("/unterricht/neu", "nav-new-request"),
            ]
        } else {
            &[
                ("/admin", "nav-overview"),
                ("/admin/geraete", "nav-devices"),
                ("/admin/schulen", "nav-schools"),
                ("/admin/antraege", "nav-requests"),
                ("/admin/zuweisungen", "nav-assignments"),
                ("/admin/katalog", "nav-catalog"),
                ("/admin/benutzer", "nav-users"),
                ("/admin/apple", "nav-apple"),
                ("/admin/protokoll", "nav-audit"),
            ]
        };
        Chrome {
            name: v.p.name.clone(),
            role: t.t(match v.p.role {
                Role::DistrictAdmin => "role-district-admin",
                Role::AuthorityAdmin => "role-authority-admin",
                Role::SchoolAdmin => "role-school-admin",
                Role::Teacher => "role-teacher",
            }),
            nav: items
                .iter()
                .map(|(href, key)| NavItem {
                    href,
                    label: t.t(key),
                    current: *href == section,
                })
                .collect(),
            csrf: v.csrf.clone(),
            here: url_encode(here),
        }
    }
}

/// The path and query of this request (for the language switch to return to).
pub fn here(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into())
}

/// The first value of `name` in a form with repeated fields, trimmed; none when empty.
pub fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Every value of `name` in a form (ticked checkboxes), trimmed.
pub fn fields(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A value for a URL's query or path segment.
pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/`: the start page of the role.
async fn home(v: Viewer) -> PageResult {
    see_other(if v.p.role == Role::Teacher {
        "/unterricht"
    } else {
        "/admin"
    })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: Tr,
    chrome: Option<Chrome>,
    next: String,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// A fresh random value for the log-in form and its cookie.
fn login_nonce() -> Result<String, WebError> {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).map_err(|_| WebError::Internal(Tr { lang: Lang::De }))?;
    Ok(hex::encode(b))
}

fn login_form(
    req: &HttpRequest,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<String>,
) -> PageResult {
    let t = Tr {
        lang: session::lang_of(req),
    };
    let csrf = login_nonce()?;
    let page = LoginPage {
        t,
        chrome: None,
        next,
        csrf: csrf.clone(),
        email,
        error,
    };
    let mut res = render_with(status, &page);
    res.add_cookie(&session::cookie(req, LOGIN_COOKIE, csrf, 3600))
        .map_err(|_| WebError::Internal(t))?;
    Ok(res)
}

/// `GET /login`.
async fn login_page(req: HttpRequest, q: web::Query<NextQuery>) -> PageResult {
    let next = session::safe_next(q.next.as_deref());
    login_form(&req, StatusCode::OK, next, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: the API's password check and limits, then the session cookie.
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> PageResult {
    let t = Tr {
        lang: session::lang_of(&req),
    };
    let f = form.into_inner();
    let cookie = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if cookie.is_empty() || !session::constant_time_eq(cookie.as_bytes(), f.csrf.as_bytes()) {
        return Err(WebError::Csrf(t));
    }
    let next = session::safe_next(f.next.as_deref());
    let peer = req.peer_addr().map(|a| a.ip());
    match crate::api::users::password_login(&state, peer, &f.email, f.password).await {
        Ok((_, secret)) => {
            let mut res = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .finish();
            let hours = crate::api::users::LOGIN_HOURS;
            res.add_cookie(&session::cookie(&req, SESSION_COOKIE, secret, hours * 3600))
                .map_err(|_| WebError::Internal(t))?;
            res.add_cookie(&session::removal(&req, LOGIN_COOKIE))
                .map_err(|_| WebError::Internal(t))?;
            Ok(res)
        }
        Err(e) if e.code == ErrorCode::TooManyRequests => {
            let secs = e.retry_after_secs.unwrap_or(1) as i64;
            login_form(
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                f.email,
                Some(t.n("login-wait", secs)),
            )
        }
        Err(e) if e.code == ErrorCode::Unauthenticated => login_form(
            &req,
            StatusCode::UNAUTHORIZED,
            next,
            f.email,
            Some(t.t("login-wrong")),
        ),
        Err(e) => Err(page_error(t, e)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /logout`: the session's token is revoked and the cookie removed.
async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    v: Viewer,
    form: web::Form<CsrfForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    if let Some(secret) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) {
        state
            .db
            .run(move |conn| crate::accounts::end_session(conn, &secret).map_err(ApiError::from))
            .await
            .or_page(v.tr)?;
    }
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .finish();
    res.add_cookie(&session::removal(&req, SESSION_COOKIE))
        .map_err(|_| WebError::Internal(v.tr))?;
    Ok(res)
}

#[derive(Deserialize)]
struct LangQuery {
    lang: String,
    next: Option<String>,
}

/// `GET /sprache?lang=en&next=/admin`: the language switch (a cookie for a year).
async fn switch_language(req: HttpRequest, q: web::Query<LangQuery>) -> PageResult {
    let lang = Lang::parse(&q.lang).unwrap_or(Lang::De);
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, session::safe_next(q.next.as_deref())))
        .finish();
    res.add_cookie(&session::cookie(
        &req,
        LANG_COOKIE,
        lang.code().to_owned(),
        365 * 24 * 3600,
    ))
    .map_err(|_| WebError::Internal(Tr { lang }))?;
    Ok(res)
}

/// `/static/{file}`: the stylesheet and htmx, from the binary.
async fn asset(path: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static [u8], &str) = match path.as_str() {
        "tafel.css" => (
            include_bytes!("../../static/tafel.css"),
            "text/css; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_bytes!("../../static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => {
            return HttpResponse::NotFound()
                .content_type("text/plain")
                .body("no such file")
        }
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
