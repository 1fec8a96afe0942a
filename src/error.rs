//! The one error type at the HTTP edge.
//!
//! Policy: domain modules return their own `thiserror` errors; handlers turn them into
//! [`ApiError`], whose stable [`ErrorCode`] is what clients match on. The body is always
//! `{"error": "<code>", "message": "…", "field": …}`. Internal details (SQL, paths) are
//! logged, never sent. Device-facing endpoints never use 401: iOS may unenroll on it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::{DbError, StorageFault};

/// Seconds a client is asked to wait (`Retry-After`) when the database cannot be reached
/// or cannot take writes: iPads try again then instead of giving up.
const STORAGE_RETRY_SECS: u64 = 60;

/// Stable error codes; the serialized names are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is invalid.
    BadRequest,
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// The request's body stopped arriving (`http.body_timeout_secs`).
    RequestTimeout,
    /// No valid credentials (admin API only).
    Unauthenticated,
    /// Authenticated, but not allowed.
    Forbidden,
    /// The caller logged in with a one-time password: changing it
    /// (`PUT /api/v1/me/password`) is the only thing they may do.
    PasswordChangeRequired,
    /// The object does not exist (or is outside the caller's scope).
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// Too many attempts: wait `retry_after_secs` (also in `Retry-After`).
    TooManyRequests,
    /// The `Idempotency-Key` was used for a different request within 24 hours.
    IdempotencyKeyReused,
    /// The database cannot be reached or cannot take writes (read-only, disk full), or
    /// the server is not ready; the message names the cause.
    Unavailable,
    /// Something failed on our side.
    Internal,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::PasswordChangeRequired => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// Stable code.
    #[serde(rename = "error")]
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
    /// The offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before trying again (429, and 503 when the database cannot be
    /// reached or take writes), also sent as `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    /// 400 with a reason.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 400 blaming one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.to_owned()),
            ..Self::bad_request(message)
        }
    }

    /// 403 with a reason.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404 naming what was not found.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// 429: try again after `secs` seconds.
    pub fn too_many(message: impl Into<String>, secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(secs.max(1)),
            ..Self::new(ErrorCode::TooManyRequests, message)
        }
    }

    /// 409 with a reason.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 500; the detail goes to the log, not to the client. A detail that tells of a
    /// storage fault (read-only database, full disk) becomes [`ApiError::storage`].
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        if let Some(fault) = StorageFault::of_message(&detail) {
            return Self::storage(fault, &detail);
        }
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// 503 naming a storage fault, with `Retry-After` (iPads try again later); the
    /// database's own words go to the log.
    pub fn storage(fault: StorageFault, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "{}", fault.describe());
        ApiError {
            retry_after_secs: Some(STORAGE_RETRY_SECS),
            ..Self::new(ErrorCode::Unavailable, fault.describe())
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        res.json(self)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(_) | DbError::Cancelled => {
                tracing::error!(error = %e, "database unavailable");
                ApiError {
                    retry_after_secs: Some(STORAGE_RETRY_SECS),
                    ..ApiError::new(ErrorCode::Unavailable, "database unavailable")
                }
            }
            DbError::Query(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ApiError::not_found("not found"),
            other => match StorageFault::of(&other) {
                Some(fault) => ApiError::storage(fault, &other),
                None => ApiError::internal(other),
            },
        }
    }
}

/// A body that could not be read: 408 when it stopped arriving, else 400 with the reason.
pub fn body_error(e: &actix_web::error::PayloadError) -> ApiError {
    if crate::edge::is_paused(e) {
        ApiError::new(ErrorCode::RequestTimeout, e.to_string())
    } else {
        ApiError::bad_request(format!("cannot read body: {e}"))
    }
}

/// Result of an HTTP handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Reads a request body, refusing more than `limit` bytes with a JSON 413 (actix's own
/// limit answers in plain text).
pub async fn read_body(
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> ApiResult<actix_web::web::Bytes> {
    use futures_util::StreamExt;
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| body_error(&e))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("body larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// An uploaded file (CSV, calendar) of at most 5 MiB, read with [`read_body`].
pub struct Upload(pub actix_web::web::Bytes);

/// Largest upload (CSV imports, calendars).
pub const MAX_UPLOAD: usize = 5 * 1024 * 1024;

impl actix_web::FromRequest for Upload {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Upload, ApiError>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let payload = actix_web::web::Payload::from_request(req, payload).into_inner();
        Box::pin(async move {
            let payload = payload.map_err(|e| ApiError::bad_request(e.to_string()))?;
            read_body(payload, MAX_UPLOAD).await.map(Upload)
        })
    }
}

/// A query string read into `T`; a value that does not fit answers 400 naming its field
/// (actix's `web::Query` says only "premature end of input").
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Reads a query string into `T`, naming the field of the first value that does not fit.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        if field.is_empty() || field == "." {
            ApiError::bad_request(format!("invalid query: {message}"))
        } else {
            ApiError::invalid_field(&field, format!("invalid value: {message}"))
        }
    })
}

impl<T: serde::de::DeserializeOwned> actix_web::FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Query<T>, ApiError>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        _payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Reads a JSON body into `T`, naming the field of the first value that does not fit
/// (actix's `web::Json` names only the line and column).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        if field.is_empty() || field == "." {
            ApiError::bad_request(format!("invalid JSON body: {message}"))
        } else {
            ApiError::invalid_field(&field, format!("invalid value: {message}"))
        }
    })
}
