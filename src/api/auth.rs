//! Bearer-token authentication for the admin API: the [`Principal`] extractor.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use crate::accounts::{self, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// An authenticated API caller; use it as a handler argument.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
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
            principal
                .map(Caller)
                .ok_or_else(|| unauthenticated("unknown, expired or revoked token"))
        })
    }
}
