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

/// The fields an update changed, before and after, for its audit entry: a field whose
/// new value is absent or equal to the old one is left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    before: serde_json::Map<String, serde_json::Value>,
    after: serde_json::Map<String, serde_json::Value>,
}

impl Changes {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field` if `new` is given and differs from `old`; returns whether it did.
    pub fn field<T: serde::Serialize + PartialEq + ?Sized>(
        &mut self,
        field: &str,
        old: &T,
        new: Option<&T>,
    ) -> bool {
        match new {
            Some(new) if new != old => {
                self.before.insert(field.to_owned(), serde_json::json!(old));
                self.after.insert(field.to_owned(), serde_json::json!(new));
                true
            }
            _ => false,
        }
    }

    /// Did anything change?
    pub fn is_empty(&self) -> bool {
        self.after.is_empty()
    }

    /// Did `field` change?
    pub fn has(&self, field: &str) -> bool {
        self.after.contains_key(field)
    }

    /// `{"before": {…}, "after": {…}}`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({"before": self.before, "after": self.after})
    }
}

#[cfg(test)]
mod tests {
    use super::Changes;

    #[test]
    fn only_given_and_different_fields_are_recorded() {
        let mut c = Changes::new();
        assert!(!c.field("name", "7b", None));
        assert!(!c.field("name", "7b", Some("7b")));
        assert!(c.is_empty());
        assert!(c.field("school_year", "2026/27", Some("2027/28")));
        assert!(c.field("flag", &false, Some(&true)));
        assert!(c.has("school_year") && !c.has("name"));
        assert_eq!(
            c.summary(),
            serde_json::json!({"before": {"school_year": "2026/27", "flag": false}, "after": {"school_year": "2027/28", "flag": true}})
        );
    }
}
