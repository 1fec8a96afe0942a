//! Admin API for users, their API tokens, and password login.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::{Account, Caller};
use super::authz::{self, Place};
use crate::accounts::{self, NewUser, Role, User, UserPatch};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Hours a login token is valid.
pub(crate) const LOGIN_HOURS: i64 = 12;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(login))
        .route("/me", web::get().to(me))
        .route("/users", web::post().to(create))
        .route("/users", web::get().to(list))
        .route("/users/{id}", web::get().to(get))
        .route("/users/{id}", web::patch().to(patch))
        .route("/users/{id}", web::delete().to(delete))
        .route("/users/{id}/disable", web::post().to(disable))
        .route("/users/{id}/tokens", web::post().to(create_token))
        .route("/users/{id}/tokens", web::get().to(list_tokens))
        .route("/tokens/{id}/revoke", web::post().to(revoke_token));
}

/// Where a user lives, for authorisation.
fn place_of(u: &User) -> Place<'_> {
    Place {
        tenant_id: u.tenant_id.as_deref(),
        school_id: u.school_id.as_deref(),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    operation_id = "create_user",
    summary = "Create a user at or below the caller's level",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "A field is invalid, or the school or authority does not exist", body = ApiError),
        (status = 403, description = "The caller may not create this role or place", body = ApiError),
        (status = 404, description = "The school or authority is outside the caller's scope", body = ApiError),
        (status = 409, description = "The e-mail is taken", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewUser>,
) -> ApiResult<HttpResponse> {
    let user = create_user_as(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(user))
}

/// A new user, for `caller` under the API's rules: roles strictly below the caller's
/// (district admins: any), at a place the caller manages.
pub(crate) async fn create_user_as(
    state: &AppState,
    caller: &Caller,
    input: NewUser,
) -> ApiResult<User> {
    if !authz::may_create_user(&caller.0, input.role) {
        return Err(ApiError::forbidden(format!(
            "a {} may not create a {}",
            caller.0.role.as_str(),
            input.role.as_str()
        )));
    }
    let p = caller.0.clone();
    state
        .db
        .run(move |conn| -> ApiResult<User> {
            // The authority follows from the school; check both exist and are in scope.
            let tenant_id = match (input.role, &input.school_id, &input.tenant_id) {
                (Role::DistrictAdmin, None, None) => None,
                (Role::DistrictAdmin, _, _) => {
                    return Err(ApiError::invalid_field(
                        "school_id",
                        "a district admin belongs to no authority or school",
                    ))
                }
                (Role::AuthorityAdmin, None, Some(t)) => {
                    crate::org::tenant(conn, t)?.ok_or_else(|| {
                        ApiError::invalid_field("tenant_id", "no such school authority")
                    })?;
                    Some(t.clone())
                }
                (Role::AuthorityAdmin, _, _) => {
                    return Err(ApiError::invalid_field(
                        "tenant_id",
                        "an authority admin needs tenant_id (and no school_id)",
                    ))
                }
                (Role::SchoolAdmin | Role::Teacher, Some(s), _) => {
                    let school = crate::org::school(conn, s)?
                        .ok_or_else(|| ApiError::invalid_field("school_id", "no such school"))?;
                    Some(school.tenant_id)
                }
                (_, None, _) => {
                    return Err(ApiError::invalid_field(
                        "school_id",
                        "school admins and teachers need a school_id",
                    ))
                }
            };
            let place = Place {
                tenant_id: tenant_id.as_deref(),
                school_id: input.school_id.as_deref(),
            };
            authz::may_create_user_at(&p, input.role, place)?;
            accounts::create_user(conn, &input, tenant_id.as_deref(), &p.user_id)
                .map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    operation_id = "list_users",
    summary = "The users of the caller's scope, filtered and paged",
    params(accounts::UserFilter),
    responses(
        (status = 200, description = "One page of users", body = super::answer::UserList),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid", body = ApiError),
        (status = 403, description = "Teachers cannot list users", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<accounts::UserFilter>,
) -> ApiResult<HttpResponse> {
    let page = users_as(&state, &caller, q.into_inner()).await?;
    Ok(HttpResponse::Ok().json(super::answer::UserList::from(page)))
}

/// One page of the users of `caller`'s scope with their places' names, under the API's
/// rules (teachers list no one).
pub(crate) async fn users_as(
    state: &AppState,
    caller: &Caller,
    f: accounts::UserFilter,
) -> ApiResult<crate::paging::Page<accounts::UserView>> {
    let limit = crate::paging::limit(f.limit).map_err(|m| ApiError::invalid_field("limit", m))?;
    let p = caller.0.clone();
    state
        .db
        .run(move |conn| -> ApiResult<_> {
            authz::require_admin(&p, "cannot list users")?;
            let page = match authz::list_scope(&p) {
                authz::ListScope::Authority(t) => {
                    accounts::list_users(conn, Some(t), None, &f, limit)?
                }
                authz::ListScope::School(s) | authz::ListScope::Teacher { school: s, .. } => {
                    accounts::list_users(conn, None, Some(s), &f, limit)?
                }
                authz::ListScope::Everything => accounts::list_users(conn, None, None, &f, limit)?,
            };
            Ok(page.try_map(|l| accounts::with_names(conn, l))?)
        })
        .await
}

/// Loads a user the caller may see (`View`) or act on (`Manage`): themselves always,
/// others by [`authz::may_act_on_user`].
pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: authz::UserAction,
) -> ApiResult<User> {
    let user = state
        .db
        .run(move |conn| accounts::user(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::not_found("no such user"))?;
    authz::may_act_on_user(&caller.0, &user.id, role, place_of(&user), action)?;
    Ok(user)
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    operation_id = "get_user",
    summary = "One user",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = accounts::UserView),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let view = user_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One user `caller` may see, with their places' names.
pub(crate) async fn user_as(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> ApiResult<accounts::UserView> {
    let user = load(state, caller, id, authz::UserAction::View).await?;
    state
        .db
        .run(move |conn| accounts::with_names(conn, vec![user]).map_err(ApiError::from))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("no such user"))
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "users",
    operation_id = "get_me",
    summary = "The caller",
    description = "Answers also after a login with a one-time password (`password_must_change`).",
    responses(
        (status = 200, description = "The user the token belongs to", body = User),
    ),
    security(("bearer" = []))
)]
async fn me(caller: Account, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let id = caller.0.user_id.clone();
    let user = state
        .db
        .run(move |conn| accounts::user(conn, &id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    tag = "users",
    operation_id = "disable_user",
    summary = "Disable a user: no login, tokens stop working",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Disabled", body = super::answer::Disabled),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
        (status = 409, description = "Callers cannot disable themselves", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn disable(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = load(
        &state,
        &caller,
        path.into_inner(),
        authz::UserAction::Manage,
    )
    .await?;
    if user.id == caller.0.user_id {
        return Err(ApiError::conflict("you cannot disable yourself"));
    }
    let actor = caller.0.user_id.clone();
    let u = user.clone();
    state
        .db
        .run(move |conn| accounts::disable_user(conn, &u, &actor).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::Disabled { disabled: user.id }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    operation_id = "update_user",
    summary = "Change a user's name or e-mail",
    params(("id" = String, Path, description = "User id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user now", body = User),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this user (teachers: no one)", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
        (status = 409, description = "Another user has that e-mail", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let user = load(&state, &caller, id.clone(), authz::UserAction::Manage).await?;
    authz::require_admin(&caller.0, "do not manage users")?;
    let patch: UserPatch = crate::error::parse_json(body.into_inner())?;
    let user = update_user_as(&state, &caller, user.id, patch).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Changes a user's name or e-mail, for `caller` under the API's rules.
pub(crate) async fn update_user_as(
    state: &AppState,
    caller: &Caller,
    id: String,
    patch: UserPatch,
) -> ApiResult<User> {
    let user = load(state, caller, id, authz::UserAction::Manage).await?;
    authz::require_admin(&caller.0, "do not manage users")?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            accounts::update_user(conn, &user.id, &patch, &actor).map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    operation_id = "delete_user",
    summary = "Delete (disable) a user: no login, tokens stop working",
    description = "Users are disabled, not erased: the audit log and lesson requests keep \
naming them. Deleting a disabled user again changes nothing.",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
        (status = 409, description = "Callers cannot delete themselves", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    delete_user_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Disables a user (never oneself), for `caller` under the API's rules; a disabled user
/// stays as they are.
pub(crate) async fn delete_user_as(state: &AppState, caller: &Caller, id: String) -> ApiResult<()> {
    let user = load(state, caller, id, authz::UserAction::Manage).await?;
    if user.id == caller.0.user_id {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    if user.disabled_at.is_none() {
        let actor = caller.0.user_id.clone();
        state
            .db
            .run(move |conn| accounts::disable_user(conn, &user, &actor).map_err(ApiError::from))
            .await?;
    }
    Ok(())
}

/// Body of a token request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = NewApiToken)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    /// Label, e.g. "Untis sync".
    name: String,
    /// Days until it expires (default: never).
    expires_in_days: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/tokens",
    tag = "users",
    operation_id = "create_api_token",
    summary = "Issue an API token for a user (the secret is shown once)",
    params(("id" = String, Path, description = "User id")),
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "The token; its secret is in this answer only", body = super::answer::CreatedApiToken),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_token(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewTokenBody>,
) -> ApiResult<HttpResponse> {
    let user = load(
        &state,
        &caller,
        path.into_inner(),
        authz::UserAction::Manage,
    )
    .await?;
    let b = body.into_inner();
    let expires = match b.expires_in_days {
        Some(d) if !(1..=3650).contains(&d) => {
            return Err(ApiError::invalid_field(
                "expires_in_days",
                "between 1 and 3650",
            ))
        }
        Some(d) => Some(crate::db::now() + chrono::Duration::days(d)),
        None => None,
    };
    let actor = caller.0.user_id.clone();
    let (info, secret) = state
        .db
        .run(move |conn| {
            accounts::issue_token(conn, &user, &b.name, expires, &actor).map_err(ApiError::from)
        })
        .await?;
    Ok(
        HttpResponse::Created().json(super::answer::CreatedApiToken {
            token: secret,
            info,
            note: "the token is shown only now".into(),
        }),
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/tokens",
    tag = "users",
    operation_id = "list_api_tokens",
    summary = "A user's API tokens (never the secrets)",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Tokens", body = super::answer::ApiTokenList),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such user in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_tokens(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = load(
        &state,
        &caller,
        path.into_inner(),
        authz::UserAction::Manage,
    )
    .await?;
    let items = state
        .db
        .run(move |conn| accounts::tokens_of(conn, &user.id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::ApiTokenList::from(items)))
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens/{id}/revoke",
    tag = "users",
    operation_id = "revoke_api_token",
    summary = "Revoke an API token",
    params(("id" = String, Path, description = "API token id")),
    responses(
        (status = 200, description = "Revoked", body = super::answer::Revoked),
        (status = 403, description = "The caller may not manage this user", body = ApiError),
        (status = 404, description = "No such token in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn revoke_token(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let token = state
        .db
        .run(move |conn| accounts::token(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    let owner = load(
        &state,
        &caller,
        token.user_id.clone(),
        authz::UserAction::Manage,
    )
    .await?;
    let actor = caller.0.user_id.clone();
    let t = token.clone();
    state
        .db
        .run(move |conn| accounts::revoke_token(conn, &t, &owner, &actor).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::Revoked { revoked: token.id }))
}

/// Failed logins per account (and wrong current passwords when changing it) before each
/// further one waits (1 s, doubling, at most 15 min).
pub(crate) const ACCOUNT_LIMIT: crate::throttle::Limit = crate::throttle::Limit {
    free: 5,
    first: std::time::Duration::from_secs(1),
    ceiling: std::time::Duration::from_secs(15 * 60),
};
/// Failed logins per address (a school's network shares one) before each further one
/// waits (1 s, doubling, at most 5 min).
const ADDRESS_LIMIT: crate::throttle::Limit = crate::throttle::Limit {
    free: 30,
    first: std::time::Duration::from_secs(1),
    ceiling: std::time::Duration::from_secs(5 * 60),
};

/// Body of `POST /login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Login)]
struct LoginBody {
    /// E-mail of the user.
    email: String,
    /// Their password.
    #[schema(format = Password)]
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "users",
    operation_id = "login",
    summary = "Log in with e-mail and password for a token valid 12 hours",
    description = "A one-time password an admin issued (`POST /api/v1/users/{id}/password-reset`) \
logs in once, within 72 hours: the answer says `password_must_change`, and the token it \
gives is good for `GET /api/v1/me` and `PUT /api/v1/me/password` only (everything else \
answers 403 `password_change_required`) until the user has chosen their own password.",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new API token and the user", body = super::answer::LoginResponse),
        (status = 401, description = "Wrong e-mail or password, or an expired one-time password", body = ApiError),
        (status = 429, description = "Too many failed logins for this account or address: wait `retry_after_secs`", body = ApiError),
    ),
)]
async fn login(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let peer = req.peer_addr().map(|a| a.ip());
    let done = password_login(&state, peer, &b.email, b.password).await?;
    Ok(HttpResponse::Ok().json(super::answer::LoginResponse {
        token: done.token,
        user: done.user,
        expires_in_hours: LOGIN_HOURS,
        password_must_change: done.must_change_password,
    }))
}

/// A login that checked out.
pub(crate) struct LoggedIn {
    /// Who.
    pub user: accounts::User,
    /// The new token's secret.
    pub token: String,
    /// It was a one-time password: the token is good for choosing one's own only.
    pub must_change_password: bool,
}

/// Checks an e-mail and password under the login limits (per account and per address)
/// and issues a token valid [`LOGIN_HOURS`]: the API's login and the console's. A
/// one-time password is used up by it (see [`accounts::password`]).
pub(crate) async fn password_login(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    email: &str,
    password: String,
) -> ApiResult<LoggedIn> {
    let email = email.trim().to_lowercase();
    let account = format!("login:account:{email}");
    let address = format!(
        "login:address:{}",
        peer.map(|a| a.to_string()).unwrap_or_default()
    );
    for key in [&account, &address] {
        if let Some(secs) = state.throttle.wait(key) {
            return Err(ApiError::too_many(
                format!("too many failed logins: try again in {secs} s"),
                secs,
            ));
        }
    }
    // The hash is checked without a database connection, one at a time per node, so a
    // flood of guesses costs one core at most and never the connections devices need.
    let e = email.clone();
    let stored = state
        .db
        .run(move |conn| accounts::password::stored_by_email(conn, &e).map_err(ApiError::from))
        .await?
        .filter(|s| s.hash.is_some());
    let hash = stored
        .as_ref()
        .and_then(|s| s.hash.clone())
        .unwrap_or_else(|| accounts::DUMMY_HASH.to_owned());
    let matches = verify_slowly(state, password, hash).await?;
    let wrong = || {
        ApiError::new(
            crate::error::ErrorCode::Unauthenticated,
            "wrong e-mail or password",
        )
    };
    let stored = match (matches, stored) {
        (true, Some(s)) => s,
        _ => {
            let wait = [
                state.throttle.fail(&account, ACCOUNT_LIMIT),
                state.throttle.fail(&address, ADDRESS_LIMIT),
            ]
            .into_iter()
            .flatten()
            .max();
            tracing::warn!(throttled = wait.is_some(), "failed login");
            return Err(wrong());
        }
    };
    state.throttle.clear(&account);
    let kind = accounts::password::login_kind(&stored, crate::db::now());
    if kind == accounts::password::LoginKind::Expired {
        return Err(ApiError::new(
            crate::error::ErrorCode::Unauthenticated,
            "this one-time password has expired: ask an admin for a new one",
        ));
    }
    let until = crate::db::now() + chrono::Duration::hours(LOGIN_HOURS);
    let (user, token) = state
        .db
        .run(move |conn| {
            accounts::password::login(conn, &stored, kind, until).map_err(ApiError::from)
        })
        .await?
        // A one-time password another login used a moment before.
        .ok_or_else(wrong)?;
    Ok(LoggedIn {
        user,
        token,
        must_change_password: kind == accounts::password::LoginKind::OneTime,
    })
}

/// Checks `password` against `hash` off the async workers, one check at a time per node
/// (Argon2 costs a core and 19 MiB).
pub(crate) async fn verify_slowly(
    state: &AppState,
    password: String,
    hash: String,
) -> ApiResult<bool> {
    let permit = state
        .login_slots
        .acquire()
        .await
        .map_err(|_| ApiError::new(crate::error::ErrorCode::Unavailable, "shutting down"))?;
    let matches = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    drop(permit);
    Ok(matches)
}

/// Hashes `password` off the async workers, under the same limit as checking one.
pub(crate) async fn hash_slowly(state: &AppState, password: String) -> ApiResult<String> {
    let permit = state
        .login_slots
        .acquire()
        .await
        .map_err(|_| ApiError::new(crate::error::ErrorCode::Unavailable, "shutting down"))?;
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    drop(permit);
    Ok(hash)
}
