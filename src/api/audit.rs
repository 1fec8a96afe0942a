//! `GET /api/v1/audit`: the audit log, within the caller's scope, newest first.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use crate::accounts::Role;
use crate::db::schema::audit_log;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

/// Filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    school_id: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// One entry.
#[derive(Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct Entry {
    id: String,
    at: chrono::NaiveDateTime,
    actor: String,
    action: String,
    object_type: String,
    object_id: Option<String>,
    tenant_id: Option<String>,
    school_id: Option<String>,
    summary: String,
}

async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let p = caller.0;
    if p.role == Role::Teacher {
        return Err(ApiError::forbidden("the audit log is for admins"));
    }
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "between 1 and 1000"));
    }
    let rows: Vec<Entry> = state
        .db
        .run(move |conn| -> ApiResult<Vec<Entry>> {
            let mut b = audit_log::table.select(Entry::as_select()).into_boxed();
            b = match p.role {
                Role::AuthorityAdmin => {
                    b.filter(audit_log::tenant_id.eq(p.tenant_id.clone().unwrap_or_default()))
                }
                Role::SchoolAdmin => {
                    b.filter(audit_log::school_id.eq(p.school_id.clone().unwrap_or_default()))
                }
                _ => b,
            };
            if let Some(v) = q.actor {
                b = b.filter(audit_log::actor.eq(v));
            }
            if let Some(v) = q.action {
                b = b.filter(audit_log::action.eq(v));
            }
            if let Some(v) = q.object_type {
                b = b.filter(audit_log::object_type.eq(v));
            }
            if let Some(v) = q.object_id {
                b = b.filter(audit_log::object_id.eq(v));
            }
            if let Some(v) = q.school_id {
                b = b.filter(audit_log::school_id.eq(v));
            }
            if let Some(t) = q.since {
                b = b.filter(audit_log::at.ge(t.naive_utc()));
            }
            if let Some(t) = q.until {
                b = b.filter(audit_log::at.lt(t.naive_utc()));
            }
            // Ids are time-ordered (UUIDv7): the id is the paging key.
            if let Some(c) = q.cursor {
                b = b.filter(audit_log::id.lt(c));
            }
            Ok(b.order(audit_log::id.desc()).limit(limit + 1).load(conn)?)
        })
        .await?;
    let mut rows = rows;
    let next = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last().map(|e| e.id.clone())
    } else {
        None
    };
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|e| {
            let summary: serde_json::Value = serde_json::from_str(&e.summary)
                .unwrap_or(serde_json::Value::String(e.summary.clone()));
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["summary"] = summary;
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next})))
}
