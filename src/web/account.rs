//! The person's own account in the console: choosing a password, for every role, and as
//! the only page after logging in with a one-time password.
//!
//! The form calls the API's core (`api::passwords::change_own_as`) with the session's
//! principal; the session it was sent from stays, every other one of the person ends.

use actix_web::{http::StatusCode, web, HttpRequest};
use askama::Template;
use serde::Deserialize;

use super::i18n::Tr;
use super::session::{safe_next, AccountViewer, Viewer};
use super::{here, page_error, render_with, see_other, Chrome, OrPage, PageResult};
use crate::accounts::password::{self, Rule};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Where the password form is.
pub const PASSWORD_PATH: &str = "/passwort";

/// Routes at the top level.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(PASSWORD_PATH, web::get().to(password_page))
        .route(PASSWORD_PATH, web::post().to(change_password));
}

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    next: String,
    /// They have a password now, so the form asks for it.
    needs_current: bool,
    /// They logged in with a one-time password.
    forced: bool,
    error: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Whether the person has a password now (the form asks for it then) and their e-mail.
async fn current_of(state: &AppState, v: &Viewer) -> Result<(bool, Option<String>), ApiError> {
    let id = v.p.user_id.clone();
    let stored = state
        .db
        .run(move |conn| password::stored(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok((stored.hash.is_some(), stored.email))
}

fn page(
    req: &HttpRequest,
    v: &Viewer,
    status: StatusCode,
    next: String,
    needs_current: bool,
    error: Option<String>,
    done: bool,
) -> PageResult {
    Ok(render_with(
        status,
        &PasswordPage {
            t: v.tr,
            chrome: Some(Chrome::new(v, PASSWORD_PATH, &here(req))),
            csrf: v.csrf.clone(),
            next,
            needs_current,
            forced: v.p.must_change_password,
            error,
            done,
        },
    ))
}

/// `GET /passwort`: the form to choose one's password.
async fn password_page(
    req: HttpRequest,
    v: AccountViewer,
    state: web::Data<AppState>,
    q: web::Query<NextQuery>,
) -> PageResult {
    let v = v.0;
    let (needs_current, _) = current_of(&state, &v).await.or_page(v.tr)?;
    let next = safe_next(q.next.as_deref());
    page(&req, &v, StatusCode::OK, next, needs_current, None, false)
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    new: String,
    repeat: String,
    next: Option<String>,
}

/// A rule of new passwords in the page's language.
fn rule_text(t: Tr, rule: Rule) -> String {
    t.t(match rule {
        Rule::TooShort => "password-too-short",
        Rule::TooLong => "password-too-long",
        Rule::IsEmail => "password-is-email",
    })
}

/// `POST /passwort`: the API's password change; after a one-time password on to where
/// the person was going, else the form again with a confirmation.
async fn change_password(
    req: HttpRequest,
    v: AccountViewer,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> PageResult {
    let v = v.0;
    let t = v.tr;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let next = safe_next(f.next.as_deref());
    let (needs_current, email) = current_of(&state, &v).await.or_page(t)?;
    let refuse = |status: StatusCode, text: String| {
        page(
            &req,
            &v,
            status,
            next.clone(),
            needs_current,
            Some(text),
            false,
        )
    };
    if f.new != f.repeat {
        return refuse(StatusCode::BAD_REQUEST, t.t("password-mismatch"));
    }
    if let Err(rule) = password::check_new(&f.new, email.as_deref()) {
        return refuse(StatusCode::BAD_REQUEST, rule_text(t, rule));
    }
    let current = Some(f.current).filter(|c| !c.is_empty());
    let forced = v.p.must_change_password;
    match crate::api::passwords::change_own_as(&state, &v.p, current, f.new).await {
        Ok(_) if forced => see_other(&next),
        Ok(_) => page(&req, &v, StatusCode::OK, next.clone(), true, None, true),
        Err(e) => match e.code {
            ErrorCode::Forbidden => refuse(StatusCode::FORBIDDEN, t.t("password-wrong-current")),
            ErrorCode::BadRequest => refuse(StatusCode::BAD_REQUEST, t.t("password-need-current")),
            ErrorCode::Conflict => refuse(StatusCode::CONFLICT, t.t("password-conflict")),
            ErrorCode::TooManyRequests => refuse(
                StatusCode::TOO_MANY_REQUESTS,
                t.n("login-wait", e.retry_after_secs.unwrap_or(1) as i64),
            ),
            _ => Err(page_error(t, e)),
        },
    }
}
