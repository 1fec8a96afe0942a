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
        .values((
            audit_log::id.eq(new_id()),
            audit_log::at.eq(now()),
            audit_log::actor.eq(&entry.actor),
            audit_log::action.eq(&entry.action),
            audit_log::object_type.eq(&entry.object_type),
            audit_log::object_id.eq(&entry.object_id),
            audit_log::tenant_id.eq(&entry.tenant_id),
            audit_log::school_id.eq(&entry.school_id),
            audit_log::summary.eq(entry.summary.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}
