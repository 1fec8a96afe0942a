//! Bearer-token authentication for the admin API: the [`Principal`] extractor.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use crate::accounts::{self, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// An authenticated API caller; use it as a handler argument. A caller who logged in
/// with a one-time password is refused here (`password_change_required`): they may only
/// use the endpoints that take [`Account`].
pub struct Caller(pub Principal);

/// An authenticated caller acting on their own account only (who they are, their
/// password): also one who logged in with a one-time password and must choose their own.
pub struct Account(pub Principal);

/// The principal of the request's bearer token.
fn principal_of(req: &HttpRequest) -> Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let header = header
            .ok_or_else(|| unauthenticated("missing Authorization: Bearer <token> header"))?;
        let secret = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(|| unauthenticated("Authorization header must be 'Bearer <token>'"))?
            .to_owned();
        let principal = state
            .db
            .run(move |conn| accounts::authenticate(conn, &secret).map_err(ApiError::internal))
            .await?;
        principal.ok_or_else(|| unauthenticated("unknown, expired or revoked token"))
    })
}

/// The refusal for everything but choosing one's password after a one-time one.
pub fn password_change_required() -> ApiError {
    ApiError::new(
        ErrorCode::PasswordChangeRequired,
        "you logged in with a one-time password: choose your own with PUT /api/v1/me/password first",
    )
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let principal = principal_of(req);
        Box::pin(async move {
            let p = principal.await?;
            if p.must_change_password {
                return Err(password_change_required());
            }
            Ok(Caller(p))
        })
    }
}

impl FromRequest for Account {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Account, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let principal = principal_of(req);
        Box::pin(async move { principal.await.map(Account) })
    }
}
