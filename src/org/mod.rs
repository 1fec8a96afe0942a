//! The organisation: school authorities (tenants) and their schools.

pub mod classes;
pub mod edit;
pub mod import;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::schema::{schools, tenants};
use crate::db::{new_id, now, DbConn};

/// A school authority (Schulträger).
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    /// Id.
    pub id: String,
    /// Display name, e.g. "Stadt Norderstedt".
    pub name: String,
    /// Short unique name used in identifiers, e.g. `norderstedt`.
    pub slug: String,
    /// APNs topic of the authority's push certificate.
    pub push_topic: Option<String>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last change.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
    /// A known iPad that enrolls again waits for an admin's release (see
    /// `/tenants/{id}/enrollment-policy`).
    pub reenroll_requires_release: bool,
}

/// A school.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = schools)]
pub struct School {
    /// Id.
    pub id: String,
    /// Its authority.
    pub tenant_id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone for schedules.
    pub timezone: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last change.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// Input for a new tenant.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// Short unique name (lowercase letters, digits, `-`).
    pub slug: String,
    /// APNs topic, until a push certificate sets it.
    #[serde(default)]
    pub push_topic: Option<String>,
}

/// Input for a new school.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchool {
    /// Display name.
    pub name: String,
    /// IANA time zone (default Europe/Berlin).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Why an organisation change was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The name (or slug) is taken; names what exists, e.g. `class 7b 2026/27`.
    #[error("{0} exists already")]
    Duplicate(String),
    /// The object cannot be changed or deleted while others depend on it; says which.
    #[error("{0}")]
    InUse(String),
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> OrgError {
    OrgError::Invalid {
        field,
        message: message.into(),
    }
}

pub(crate) fn check_name(name: &str) -> Result<String, OrgError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// Checks a school's time zone (the rule at create and at edit).
pub(crate) fn check_timezone(timezone: &str) -> Result<(), OrgError> {
    if timezone.is_empty() || !timezone.contains('/') || timezone.len() > 64 {
        return Err(invalid(
            "timezone",
            "an IANA time zone such as Europe/Berlin",
        ));
    }
    Ok(())
}

/// Creates a tenant.
pub fn create_tenant(
    conn: &mut DbConn,
    input: &NewTenant,
    actor: &str,
) -> Result<Tenant, OrgError> {
    let name = check_name(&input.name)?;
    let slug = edit::check_slug(&input.slug)?;
    if let Some(topic) = &input.push_topic {
        if !topic.starts_with("com.apple.mgmt.") {
            return Err(invalid(
                "push_topic",
                "an MDM push topic starts with com.apple.mgmt.",
            ));
        }
    }
    conn.write_tx(|conn| {
        let taken: i64 = tenants::table.filter(tenants::slug.eq(&slug)).count().get_result(conn)?;
        if taken > 0 {
            return Err(OrgError::Duplicate(format!(
                "a school authority with slug {slug:?}"
            )));
        }
        let at = now();
        let tenant = Tenant {
            id: new_id(),
            name: name.clone(),
            slug: slug.clone(),
            push_topic: input.push_topic.clone(),
            created_at: at,
            updated_at: at,
            reenroll_requires_release: false,
        };
        diesel::insert_into(tenants::table)
            .values((
                tenants::id.eq(&tenant.id),
                tenants::name.eq(&tenant.name),
                tenants::slug.eq(&tenant.slug),
                tenants::push_topic.eq(&tenant.push_topic),
                tenants::created_at.eq(at),
                tenants::updated_at.eq(at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "tenant")
                .object(&tenant.id)
                .scope(Some(&tenant.id), None)
                .summary(serde_json::json!({"after": {"name": tenant.name, "slug": tenant.slug, "push_topic": tenant.push_topic}})),
        )?;
        Ok(tenant)
    })
}

/// All tenants, by name.
pub fn list_tenants(conn: &mut DbConn) -> QueryResult<Vec<Tenant>> {
    tenants::table
        .order(tenants::name.asc())
        .select(Tenant::as_select())
        .load(conn)
}

/// One tenant.
pub fn tenant(conn: &mut DbConn, id: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .optional()
}

/// Creates a school in a tenant.
pub fn create_school(
    conn: &mut DbConn,
    tenant_id: &str,
    input: &NewSchool,
    actor: &str,
) -> Result<School, OrgError> {
    let name = check_name(&input.name)?;
    let timezone = input
        .timezone
        .clone()
        .unwrap_or_else(|| "Europe/Berlin".into());
    check_timezone(&timezone)?;
    conn.write_tx(|conn| {
        edit::school_name_free(conn, tenant_id, &name, None)?;
        let at = now();
        let school = School {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            name: name.clone(),
            timezone: timezone.clone(),
            created_at: at,
            updated_at: at,
        };
        diesel::insert_into(schools::table)
            .values((
                schools::id.eq(&school.id),
                schools::tenant_id.eq(&school.tenant_id),
                schools::name.eq(&school.name),
                schools::timezone.eq(&school.timezone),
                schools::created_at.eq(at),
                schools::updated_at.eq(at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "school")
                .object(&school.id)
                .scope(Some(tenant_id), Some(&school.id))
                .summary(serde_json::json!({"after": {"name": school.name, "timezone": school.timezone}})),
        )?;
        Ok(school)
    })
}

/// One school.
pub fn school(conn: &mut DbConn, id: &str) -> QueryResult<Option<School>> {
    schools::table
        .find(id)
        .select(School::as_select())
        .first(conn)
        .optional()
}

/// Schools, optionally of one tenant, by name.
/// A school with the name of its authority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SchoolView {
    /// The school.
    #[serde(flatten)]
    pub school: School,
    /// The authority's name.
    pub tenant_name: Option<String>,
}

/// Schools with their authorities' names (one query for the whole list).
pub fn schools_with_names(conn: &mut DbConn, list: Vec<School>) -> QueryResult<Vec<SchoolView>> {
    use crate::names::{self, ids};
    let tenants = names::tenants_named(conn, &ids(&list, |s| Some(s.tenant_id.as_str())))?;
    Ok(list
        .into_iter()
        .map(|school| SchoolView {
            tenant_name: names::name(&tenants, Some(&school.tenant_id)),
            school,
        })
        .collect())
}

pub fn list_schools(conn: &mut DbConn, tenant_id: Option<&str>) -> QueryResult<Vec<School>> {
    let mut q = schools::table
        .select(School::as_select())
        .order(schools::name.asc())
        .into_boxed();
    if let Some(t) = tenant_id {
        q = q.filter(schools::tenant_id.eq(t.to_owned()));
    }
    q.load(conn)
}
