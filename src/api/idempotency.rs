//! `Idempotency-Key` on the POSTs that create or queue something: a repeat of the same
//! request with the same key within 24 hours gets the first answer again instead of
//! doing it twice (an admin's tool that retries after a dropped connection, a
//! double-click). Keys are the caller's own: the scope is the SHA-256 of the request's
//! credentials, so one caller's key never answers another's request.
//!
//! - the same key with a different request (method, path, query or body): 422;
//! - the same key while the first request is still being answered: 409;
//! - the first request was cut off before it was answered (the server stopped): 409
//!   saying so, since whether it took effect is unknown, rather than doing it again;
//! - answers that say "try again" (401, 408, 409, 429, 5xx) are not kept: the key may
//!   be used again at once.
//!
//! Endpoints whose answers hold a secret (log-in, tokens, one-time passwords) ignore
//! the header: their answers are never stored.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use diesel::prelude::*;

use crate::db::schema::idempotency_keys;
use crate::db::{now, Db, DbError};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Set on a repeated answer.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long an answer is kept.
const KEEP: chrono::Duration = chrono::Duration::hours(24);
/// A first request unanswered for this long was cut off.
const CUT_OFF_AFTER: chrono::Duration = chrono::Duration::minutes(2);
/// Longest key.
const MAX_KEY: usize = 255;

/// The POSTs (under `/api/v1`) that honour the header: `*` is one path segment.
const SUPPORTED: &[&str] = &[
    "commands",
    "devices/actions",
    "devices/*/actions",
    "devices/push",
    "devices/*/commands/cancel",
    "assignments",
    "lesson-requests",
    "lesson-requests/*/approve",
    "lesson-requests/*/reject",
    "lesson-requests/*/cancel",
    "apps",
    "profiles",
    "profiles/from-template",
    "tenants",
    "tenants/*/schools",
    "tenants/*/ade-rules",
    "schools/*/classes",
    "schools/*/groups",
    "classes/*/devices",
    "groups/*/devices",
];

/// Whether `path` (below `/api/v1/`) is one of [`SUPPORTED`].
fn supported(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return false;
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    SUPPORTED.iter().any(|pattern| {
        let wanted: Vec<&str> = pattern.split('/').collect();
        wanted.len() == segments.len()
            && wanted
                .iter()
                .zip(&segments)
                .all(|(w, s)| *w == "*" || w == s)
    })
}

/// What the store says about a key.
enum Found {
    /// First use: the caller answers and stores.
    Fresh,
    /// Answered before.
    Answer {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// Used for another request.
    Mismatch,
    /// The first request is being answered.
    Busy,
    /// The first request was never answered.
    CutOff,
}

/// Stored answer row.
type Row = (
    String,
    Option<i32>,
    Option<String>,
    Option<Vec<u8>>,
    chrono::NaiveDateTime,
);

/// Claims `(scope, key)` for `hash`, or says what an earlier use left.
fn claim(db: &Db, scope: &str, key: &str, hash: &str) -> Result<Found, DbError> {
    let mut conn = db.get()?;
    conn.write_tx(|conn| -> Result<Found, DbError> {
        let at = now();
        // Expired keys go first, so that a key may be used again after 24 hours.
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(at - KEEP)))
            .execute(conn)?;
        let insert = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::scope.eq(scope),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::request_hash.eq(hash),
                idempotency_keys::created_at.eq(at),
            ))
            .on_conflict_do_nothing();
        if crate::with_backend!(conn, |c| insert.execute(c))? == 1 {
            return Ok(Found::Fresh);
        }
        let (stored_hash, status, content_type, body, created): Row = idempotency_keys::table
            .find((scope, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status,
                idempotency_keys::content_type,
                idempotency_keys::body,
                idempotency_keys::created_at,
            ))
            .first(conn)?;
        Ok(if stored_hash != hash {
            Found::Mismatch
        } else if let Some(status) = status {
            Found::Answer {
                status: u16::try_from(status).unwrap_or(500),
                content_type,
                body: body.unwrap_or_default(),
            }
        } else if at - created > CUT_OFF_AFTER {
            Found::CutOff
        } else {
            Found::Busy
        })
    })
}

/// Keeps the answer to a claimed key, or frees the key when the answer says "try again".
fn settle(
    db: &Db,
    scope: &str,
    key: &str,
    status: StatusCode,
    content_type: Option<String>,
    body: &[u8],
) -> Result<(), DbError> {
    let mut conn = db.get()?;
    let row = idempotency_keys::table.find((scope, key));
    let again = status.is_server_error() || matches!(status.as_u16(), 401 | 408 | 409 | 429);
    if again {
        diesel::delete(row).execute(&mut *conn)?;
    } else {
        diesel::update(row)
            .set((
                idempotency_keys::status.eq(i32::from(status.as_u16())),
                idempotency_keys::content_type.eq(content_type),
                idempotency_keys::body.eq(body),
            ))
            .execute(&mut *conn)?;
    }
    Ok(())
}

fn refuse(e: ApiError) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    Err(e.into())
}

/// The middleware on `/api/v1`.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get(HEADER) {
        Some(v) if req.method() == Method::POST && supported(req.path()) => v.clone(),
        _ => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return refuse(ApiError::invalid_field(
                HEADER,
                format!("1 to {MAX_KEY} visible ASCII characters, e.g. a UUID"),
            ))
        }
    };
    // Without credentials the request is refused anyway; nothing to remember.
    let Some(credentials) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let payload = req.extract::<web::Payload>().await?;
    let body = crate::error::read_body(payload, super::MAX_JSON_BODY).await?;
    let scope = hex::encode(openssl::sha::sha256(&credentials));
    let hash = {
        let mut h = openssl::sha::Sha256::new();
        h.update(req.path().as_bytes());
        h.update(b"?");
        h.update(req.query_string().as_bytes());
        h.update(b"\n");
        h.update(&body);
        hex::encode(h.finish())
    };
    req.set_payload(actix_web::dev::Payload::from(body));

    let (db, s, k, h) = (state.db.clone(), scope.clone(), key.clone(), hash);
    let found = web::block(move || claim(&db, &s, &k, &h))
        .await
        .map_err(|_| ApiError::from(DbError::Cancelled))?
        .map_err(ApiError::from)?;
    match found {
        Found::Fresh => {}
        Found::Answer {
            status,
            content_type,
            body,
        } => {
            let mut res = HttpResponse::build(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let Some(ct) = content_type {
                res.insert_header((actix_web::http::header::CONTENT_TYPE, ct));
            }
            res.insert_header((REPLAYED, "true"));
            return Ok(req.into_response(res.body(body)));
        }
        Found::Mismatch => {
            return refuse(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request within the last 24 hours: use a new key for a new request",
            ))
        }
        Found::Busy => {
            return refuse(ApiError::conflict(
                "a request with this Idempotency-Key is still being answered: wait for it, then repeat it to get its answer",
            ))
        }
        Found::CutOff => {
            return refuse(ApiError::conflict(
                "the first request with this Idempotency-Key was cut off before it was answered (the server stopped): whether it took effect is unknown, so it is not done again; look (e.g. the device's command queue), then send it with a new key if it is still needed",
            ))
        }
    }

    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let (db, s, k) = (state.db.clone(), scope, key);
            let status = e.as_response_error().status_code();
            let _ = web::block(move || settle(&db, &s, &k, status, None, &[])).await;
            return Err(e);
        }
    };
    let status = res.status();
    let content_type = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (req, res) = res.into_parts();
    let (head, res_body) = res.into_parts();
    let bytes = body::to_bytes(res_body)
        .await
        .map_err(|e| ApiError::internal(format!("reading an answer to keep: {e}")))?;
    let (db, s, k, kept) = (state.db.clone(), scope, key, bytes.clone());
    let settled = web::block(move || settle(&db, &s, &k, status, content_type, &kept)).await;
    if !matches!(settled, Ok(Ok(()))) {
        tracing::error!(
            "could not keep the answer to an Idempotency-Key; a repeat may be refused as cut off"
        );
    }
    Ok(ServiceResponse::new(
        req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn the_creating_posts_honour_the_key_and_those_with_secrets_do_not() {
        assert!(supported("/api/v1/commands"));
        assert!(supported("/api/v1/devices/00008103-ABC/actions"));
        assert!(supported("/api/v1/lesson-requests"));
        assert!(supported("/api/v1/assignments/"));
        assert!(!supported("/api/v1/login"));
        assert!(!supported("/api/v1/users/u1/tokens"));
        assert!(!supported("/api/v1/users/u1/password-reset"));
        assert!(!supported("/api/v1/devices/a/b/actions"));
        assert!(!supported("/admin/commands"));
    }
}
