//! The append-only audit log: who changed what, when, with a before/after summary.

use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::{new_id, now, DbConn};

/// One audit entry, built fluently and written with [`record`].
#[derive(Debug, Clone)]
pub struct Entry {
    actor: String,
    action: String,
    object_type: String,
    object_id: Option<String>,
    tenant_id: Option<String>,
    school_id: Option<String>,
    summary: serde_json::Value,
}

/// An audit entry as stored.
#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct Row<'a> {
    id: String,
    at: chrono::NaiveDateTime,
    actor: &'a str,
    action: &'a str,
    object_type: &'a str,
    object_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    school_id: Option<&'a str>,
    summary: String,
}

impl Entry {
    /// `actor` (user id or `system`/`device:<udid>`) did `action` to an `object_type`.
    pub fn new(actor: &str, action: &str, object_type: &str) -> Self {
        Entry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            object_type: object_type.to_owned(),
            object_id: None,
            tenant_id: None,
            school_id: None,
            summary: serde_json::Value::Null,
        }
    }

    /// The object's id.
    pub fn object(mut self, id: &str) -> Self {
        self.object_id = Some(id.to_owned());
        self
    }

    /// The scope the object lives in, so scoped admins can query their part.
    pub fn scope(mut self, tenant_id: Option<&str>, school_id: Option<&str>) -> Self {
        self.tenant_id = tenant_id.map(str::to_owned);
        self.school_id = school_id.map(str::to_owned);
        self
    }

    /// What changed (e.g. `{"before": …, "after": …}`).
    pub fn summary(mut self, summary: serde_json::Value) -> Self {
        self.summary = summary;
        self
    }
}

/// Appends an entry; call it inside the transaction that makes the change.
pub fn record(conn: &mut DbConn, entry: &Entry) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(Row {
            id: new_id(),
            at: now(),
            actor: &entry.actor,
            action: &entry.action,
            object_type: &entry.object_type,
            object_id: entry.object_id.as_deref(),
            tenant_id: entry.tenant_id.as_deref(),
            school_id: entry.school_id.as_deref(),
            summary: entry.summary.to_string(),
        })
        .execute(conn)?;
    Ok(())
}
