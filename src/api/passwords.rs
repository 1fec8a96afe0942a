//! Admin API for passwords: choosing one's own, and admins issuing one-time passwords
//! for the users below them (what a teacher who cannot log in needs).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{Account, Caller};
use super::authz::{self, Action, Place};
use super::users::{hash_slowly, load, verify_slowly, ACCOUNT_LIMIT};
use crate::accounts::{self, password, Principal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/me/password", web::put().to(change_own))
        .route("/users/{id}/password-reset", web::post().to(reset))
        .route("/schools/{id}/first-logins", web::post().to(first_logins));
}

/// Body of `PUT /me/password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordChange)]
struct PasswordChangeBody {
    /// The password the caller has now; not needed when they have none (a user who
    /// worked with API tokens only, or who logged in with a one-time password).
    #[serde(default)]
    #[schema(format = Password)]
    current_password: Option<String>,
    /// The new password: 12 to 128 characters, not the e-mail address.
    #[schema(format = Password)]
    new_password: String,
}

/// Answer to `PUT /me/password`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordChanged {
    /// Other tokens and console sessions of the caller that ended (the one this call
    /// came with stays valid).
    pub ended_sessions: usize,
}

/// Answer to `POST /users/{id}/password-reset`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// The user.
    pub user_id: String,
    /// Log in with this once to choose a new password; shown only in this answer.
    #[schema(format = Password)]
    pub one_time_password: String,
    /// Until when it logs in.
    #[serde(with = "crate::time::utc")]
    pub expires_at: chrono::NaiveDateTime,
    /// Tokens and console sessions of the user that ended.
    pub ended_sessions: usize,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(
            f,
            "PasswordReset({} until {})",
            self.user_id, self.expires_at
        )
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/me/password",
    tag = "users",
    operation_id = "change_own_password",
    summary = "Choose one's own password",
    description = "Needs the current password when the caller has one. Every other token and \
console session of the caller ends; the token of this call stays valid. After a login with a \
one-time password this is the only call (besides `GET /api/v1/me`) the token may make.",
    request_body = PasswordChangeBody,
    responses(
        (status = 200, description = "Changed", body = PasswordChanged),
        (status = 400, description = "The new password breaks a rule, or the current one is missing", body = ApiError),
        (status = 403, description = "The current password is wrong (nothing changed)", body = ApiError),
        (status = 409, description = "The password changed meanwhile: try again", body = ApiError),
        (status = 429, description = "Too many wrong passwords for this account: wait `retry_after_secs`", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn change_own(
    account: Account,
    state: web::Data<AppState>,
    body: web::Json<PasswordChangeBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let done = change_own_as(&state, &account.0, b.current_password, b.new_password).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// Sets `p`'s own password: the rules, the current password (under the login limits),
/// then [`password::change`]. The API's and the console's.
pub(crate) async fn change_own_as(
    state: &AppState,
    p: &Principal,
    current: Option<String>,
    new: String,
) -> ApiResult<PasswordChanged> {
    let id = p.user_id.clone();
    let (user, stored) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let user = accounts::user(conn, &id)?;
            let stored = password::stored(conn, &id)?;
            Ok(user.zip(stored))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    password::check_new(&new, user.email.as_deref())
        .map_err(|rule| ApiError::invalid_field("new_password", rule.to_string()))?;
    if let Some(hash) = stored.hash.clone() {
        let current = current.filter(|c| !c.is_empty()).ok_or_else(|| {
            ApiError::invalid_field("current_password", "your current password is needed")
        })?;
        let key = format!(
            "login:account:{}",
            user.email.as_deref().unwrap_or_default()
        );
        if let Some(secs) = state.throttle.wait(&key) {
            return Err(ApiError::too_many(
                format!("too many wrong passwords: try again in {secs} s"),
                secs,
            ));
        }
        if !verify_slowly(state, current, hash).await? {
            state.throttle.fail(&key, ACCOUNT_LIMIT);
            return Err(ApiError {
                field: Some("current_password".into()),
                ..ApiError::forbidden("the current password is wrong")
            });
        }
    }
    let new_hash = hash_slowly(state, new).await?;
    let keep = p.token_id.clone();
    let ended = state
        .db
        .run(move |conn| {
            password::change(conn, &user, stored.hash.as_deref(), &new_hash, &keep)
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::conflict("your password changed meanwhile: try again"))?;
    Ok(PasswordChanged {
        ended_sessions: ended,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/password-reset",
    tag = "users",
    operation_id = "reset_password",
    summary = "Issue a one-time password for a user below the caller (shown once)",
    description = "For a user who cannot log in (a forgotten password, or a teacher the class \
import created without one). The answer holds a random one-time password, valid 72 hours, of \
which only the hash is stored. It logs in once, and only to choose a new password (see \
`POST /api/v1/login`). Every token and console session of the user ends now. District admins \
reset anyone, authority admins the users of their authority below them, school admins their \
school's teachers.",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The one-time password, in this answer only", body = PasswordReset),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
        (status = 409, description = "Oneself (use `PUT /api/v1/me/password`), a disabled user, or one without an e-mail to log in with", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn reset(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let done = reset_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// Issues a one-time password for the user `id` under the API's rules (who may manage
/// whom: [`authz::may_act_on_user`]). The API's and the console's.
pub(crate) async fn reset_as(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> ApiResult<PasswordReset> {
    if id == caller.0.user_id {
        return Err(ApiError::conflict(
            "you cannot reset your own password: change it with PUT /api/v1/me/password",
        ));
    }
    let user = load(state, caller, id, authz::UserAction::Manage).await?;
    authz::require_admin(&caller.0, "do not manage users")?;
    if user.disabled_at.is_some() {
        return Err(ApiError::conflict("the user is disabled"));
    }
    if user.email.is_none() {
        return Err(ApiError::conflict(
            "the user has no e-mail to log in with: give them one first",
        ));
    }
    let secret = password::one_time().map_err(ApiError::internal)?;
    let hash = hash_slowly(state, secret.clone()).await?;
    let expires_at = crate::db::now() + chrono::Duration::hours(password::ONE_TIME_HOURS);
    let actor = caller.0.user_id.clone();
    let u = user.clone();
    let ended = state
        .db
        .run(move |conn| {
            password::reset(conn, &u, &hash, expires_at, &actor).map_err(ApiError::from)
        })
        .await?;
    Ok(PasswordReset {
        user_id: user.id,
        one_time_password: secret,
        expires_at,
        ended_sessions: ended,
    })
}

/// One teacher's first login, in the answer of `POST /schools/{id}/first-logins`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FirstLogin {
    /// The teacher.
    pub user_id: String,
    /// Their name.
    pub name: String,
    /// Their e-mail (what they log in with).
    pub email: Option<String>,
    /// Log in with this once to choose a password; shown only in this answer.
    #[schema(format = Password)]
    pub one_time_password: String,
}

/// Answer to `POST /schools/{id}/first-logins`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FirstLogins {
    /// Until when the one-time passwords log in.
    #[serde(with = "crate::time::utc")]
    pub expires_at: chrono::NaiveDateTime,
    /// One per teacher who had no password, by name.
    pub items: Vec<FirstLogin>,
}

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/first-logins",
    tag = "users",
    operation_id = "issue_first_logins",
    summary = "One-time passwords for the school's teachers who have none yet (shown once)",
    description = "After a class import: every enabled teacher of the school who has never had \
a password and has no one-time password waiting gets one (at most 500 per call), valid 72 \
hours, as with `POST /api/v1/users/{id}/password-reset`. Teachers with a password are left \
alone, so calling it again issues passwords only for teachers imported since.",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 200, description = "The one-time passwords, in this answer only", body = FirstLogins),
        (status = 403, description = "Teachers issue none", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn first_logins(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let done = first_logins_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// One-time passwords for the teachers of school `id` without one, under the API's rules
/// (whoever manages the school; teachers are below every admin).
pub(crate) async fn first_logins_as(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> ApiResult<FirstLogins> {
    let p = caller.0.clone();
    let teachers = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let school = crate::org::school(conn, &id)?
                .ok_or_else(|| ApiError::not_found("no such school"))?;
            authz::require(
                &p,
                Action::ManageSchool,
                Place::school(&school.tenant_id, &school.id),
            )?;
            Ok(password::teachers_without_password(conn, &school.id)?)
        })
        .await?;
    let mut issued = Vec::with_capacity(teachers.len());
    let mut secrets = Vec::with_capacity(teachers.len());
    for t in teachers {
        let secret = password::one_time().map_err(ApiError::internal)?;
        let hash = hash_slowly(state, secret.clone()).await?;
        secrets.push(secret);
        issued.push((t, hash));
    }
    let expires_at = crate::db::now() + chrono::Duration::hours(password::ONE_TIME_HOURS);
    let actor = caller.0.user_id.clone();
    let (issued, done) = state
        .db
        .run(move |conn| {
            password::first_logins(conn, &issued, expires_at, &actor)
                .map(|done| (issued, done))
                .map_err(ApiError::from)
        })
        .await?;
    let items = issued
        .into_iter()
        .zip(secrets)
        .filter(|((u, _), _)| done.contains(&u.id))
        .map(|((u, _), secret)| FirstLogin {
            user_id: u.id,
            name: u.name,
            email: u.email,
            one_time_password: secret,
        })
        .collect();
    Ok(FirstLogins { expires_at, items })
}
