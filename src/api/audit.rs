//! `GET /api/v1/audit`: the audit log, within the caller's scope, newest first.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use crate::db::schema::audit_log;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

/// Filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Who acted (user id, or `system`).
    pub(crate) actor: Option<String>,
    /// What was done, e.g. `create`, `enqueue`, `revoke`.
    pub(crate) action: Option<String>,
    /// Kind of object, e.g. `school`, `command`.
    pub(crate) object_type: Option<String>,
    /// The object's id.
    pub(crate) object_id: Option<String>,
    /// Only entries of this school.
    pub(crate) school_id: Option<String>,
    /// At or after this instant (RFC 3339).
    pub(crate) since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this instant (RFC 3339).
    pub(crate) until: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size (default 100, at most 1000).
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// One entry.
#[derive(Debug, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
#[schema(as = AuditEntry)]
pub(crate) struct Entry {
    /// Id (time-ordered).
    pub(crate) id: String,
    /// When.
    #[serde(with = "crate::time::utc")]
    pub(crate) at: chrono::NaiveDateTime,
    /// Who (user id, or `system`).
    pub(crate) actor: String,
    /// What was done.
    pub(crate) action: String,
    /// Kind of object.
    pub(crate) object_type: String,
    /// The object's id.
    pub(crate) object_id: Option<String>,
    /// Its authority.
    pub(crate) tenant_id: Option<String>,
    /// Its school.
    pub(crate) school_id: Option<String>,
    /// Details, as JSON (stored as text).
    #[schema(value_type = Object)]
    #[serde(serialize_with = "json_text")]
    pub(crate) summary: String,
}

/// One entry with the names of its actor, authority and school.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntryView)]
pub(crate) struct EntryView {
    /// The entry.
    #[serde(flatten)]
    pub(crate) entry: Entry,
    /// The actor's name (none for `system` and users deleted since).
    pub(crate) actor_name: Option<String>,
    /// The authority's name.
    pub(crate) tenant_name: Option<String>,
    /// The school's name.
    pub(crate) school_name: Option<String>,
}

/// Entries with names: three queries for a whole page.
fn with_names(conn: &mut crate::db::DbConn, rows: Vec<Entry>) -> QueryResult<Vec<EntryView>> {
    use crate::names::{self, ids};
    let actors = names::users_named(conn, &ids(&rows, |e| Some(e.actor.as_str())))?;
    let tenants = names::tenants_named(conn, &ids(&rows, |e| e.tenant_id.as_deref()))?;
    let schools = names::schools_named(conn, &ids(&rows, |e| e.school_id.as_deref()))?;
    Ok(rows
        .into_iter()
        .map(|entry| EntryView {
            actor_name: names::name(&actors, Some(&entry.actor)),
            tenant_name: names::name(&tenants, entry.tenant_id.as_deref()),
            school_name: names::name(&schools, entry.school_id.as_deref()),
            entry,
        })
        .collect())
}

/// Writes details stored as JSON text as the JSON they are (text that is not JSON, as
/// a string).
fn json_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

/// `GET /api/v1/audit`.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    operation_id = "list_audit_log",
    summary = "The audit log within the caller's scope, newest first (admins only)",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of entries", body = super::answer::AuditPage),
        (status = 400, description = "A filter or `limit` is invalid", body = ApiError),
        (status = 403, description = "Teachers cannot read the audit log", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let (items, next_cursor) = entries_as(&state, caller.0, q.into_inner()).await?;
    Ok(HttpResponse::Ok().json(super::answer::AuditPage { items, next_cursor }))
}

/// One page of the audit log for `p` (admins only, their scope), newest first, and the
/// next page's cursor.
pub(crate) async fn entries_as(
    state: &AppState,
    p: crate::accounts::Principal,
    q: AuditQuery,
) -> ApiResult<(Vec<EntryView>, Option<String>)> {
    super::authz::require_admin(&p, "do not read the audit log: it is for admins")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "between 1 and 1000"));
    }
    let rows: Vec<Entry> = state
        .db
        .run(move |conn| -> ApiResult<Vec<Entry>> {
            let mut b = audit_log::table.select(Entry::as_select()).into_boxed();
            b = match super::authz::list_scope(&p) {
                super::authz::ListScope::Authority(t) => {
                    b.filter(audit_log::tenant_id.eq(t.to_owned()))
                }
                super::authz::ListScope::School(s)
                | super::authz::ListScope::Teacher { school: s, .. } => {
                    b.filter(audit_log::school_id.eq(s.to_owned()))
                }
                super::authz::ListScope::Everything => b,
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
    let items = state
        .db
        .run(move |conn| with_names(conn, rows).map_err(ApiError::from))
        .await?;
    Ok((items, next))
}
