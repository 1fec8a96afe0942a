//! Changing and removing organisation objects: school authorities, schools, classes and
//! device groups (carts). Each operation loads the object inside one write transaction,
//! decides (what changed, what still depends on it) and writes the change with its
//! audit entry, so a refused request stores nothing.

use diesel::prelude::*;
use serde::Deserialize;

use super::classes::{check_school_year, Class, DeviceGroup};
use super::{check_name, check_timezone, invalid, OrgError, School, Tenant};
use crate::assign::{self, Assignment, TargetKind};
use crate::audit::{self, Changes};
use crate::db::schema::{
    ade_profile_uploads, ade_profiles, ade_rules, ade_tokens, approved_apps, apps, assignments,
    class_devices, class_teachers, classes, closures, device_groups, devices, enrollment_tokens,
    group_devices, lesson_requests, lesson_settings, profiles, push_certificate_requests,
    push_certificates, scep_challenges, schools, tenants, users, vpp_tokens,
};
use crate::db::{now, DbConn};
use crate::lessons::RequestStatus;

/// Changes to a school authority; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// Display name.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Short unique name (lowercase letters, digits, `-`). It names the enrollment
    /// profile on the iPads, so it changes only while the authority has no devices.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub slug: Option<String>,
    /// A known iPad that enrolls again waits for an admin's release.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub reenroll_requires_release: Option<bool>,
}

/// Changes to a school; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolPatch {
    /// Display name, unique in its authority.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// IANA time zone for schedules.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub timezone: Option<String>,
}

/// Changes to a class; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassPatch {
    /// Name, unique in its school and school year.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// School year, `YYYY/YY`.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub school_year: Option<String>,
}

/// Changes to a device group (cart); absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// Name, unique in its school.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `cart` or `group`.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub kind: Option<String>,
}

#[derive(AsChangeset)]
#[diesel(table_name = tenants)]
struct TenantChanges<'a> {
    name: Option<&'a str>,
    slug: Option<&'a str>,
    reenroll_requires_release: Option<bool>,
    updated_at: chrono::NaiveDateTime,
}

#[derive(AsChangeset)]
#[diesel(table_name = schools)]
struct SchoolChanges<'a> {
    name: Option<&'a str>,
    timezone: Option<&'a str>,
    updated_at: chrono::NaiveDateTime,
}

#[derive(AsChangeset)]
#[diesel(table_name = classes)]
struct ClassChanges<'a> {
    name: Option<&'a str>,
    school_year: Option<&'a str>,
    updated_at: chrono::NaiveDateTime,
}

#[derive(AsChangeset)]
#[diesel(table_name = device_groups)]
struct GroupChanges<'a> {
    name: Option<&'a str>,
    kind: Option<&'a str>,
    updated_at: chrono::NaiveDateTime,
}

/// Rows of `$table` whose `$column` is `$id`.
macro_rules! count_where {
    ($conn:expr, $table:ident . $column:ident = $id:expr) => {
        $table::table
            .filter($table::$column.eq($id))
            .count()
            .get_result::<i64>($conn)?
    };
}

/// Deletes the rows of `$table` whose `$column` is `$id`; their number.
macro_rules! delete_where {
    ($conn:expr, $table:ident . $column:ident = $id:expr) => {
        diesel::delete($table::table.filter($table::$column.eq($id))).execute($conn)?
    };
}

/// The refusal to delete `what` while `dependents` (label, count) remain; `None` when
/// nothing depends on it any more.
pub fn still_in_use(what: &str, dependents: &[(&str, i64)]) -> Option<String> {
    let left: Vec<String> = dependents
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{label} ({n})"))
        .collect();
    if left.is_empty() {
        None
    } else {
        Some(format!(
            "{what} still has {}: move or delete them first",
            left.join(", ")
        ))
    }
}

/// Checks a slug (the rule at create and at edit).
pub(crate) fn check_slug(slug: &str) -> Result<String, OrgError> {
    let slug = slug.trim();
    if slug.is_empty()
        || slug.len() > 64
        || !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid("slug", "1 to 64 lowercase letters, digits or '-'"));
    }
    Ok(slug.to_owned())
}

/// Checks a class or group name (1 to 100 characters, trimmed).
fn check_short_name(name: &str) -> Result<String, OrgError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// Checks a device group kind.
fn check_kind(kind: &str) -> Result<String, OrgError> {
    if kind == "cart" || kind == "group" {
        Ok(kind.to_owned())
    } else {
        Err(invalid("kind", "cart or group"))
    }
}

/// Refuses a school name that another school of the authority has (the unique index
/// `schools_tenant_name` backs this up when two requests race).
pub(crate) fn school_name_free(
    conn: &mut DbConn,
    tenant_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), OrgError> {
    let mut q = schools::table
        .filter(schools::tenant_id.eq(tenant_id.to_owned()))
        .filter(schools::name.eq(name.to_owned()))
        .into_boxed();
    if let Some(id) = except {
        q = q.filter(schools::id.ne(id.to_owned()));
    }
    let taken: i64 = q.count().get_result(conn)?;
    if taken > 0 {
        return Err(OrgError::Duplicate(format!(
            "a school named {name:?} in this school authority"
        )));
    }
    Ok(())
}

/// Changes a school authority's name, slug or re-enrollment rule.
pub fn update_tenant(
    conn: &mut DbConn,
    id: &str,
    patch: &TenantPatch,
    actor: &str,
) -> Result<Tenant, OrgError> {
    let name = patch.name.as_deref().map(check_name).transpose()?;
    let slug = patch.slug.as_deref().map(check_slug).transpose()?;
    conn.write_tx(|conn| {
        let before = super::tenant(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let mut changes = Changes::new();
        changes.field("name", &before.name, name.as_ref());
        changes.field("slug", &before.slug, slug.as_ref());
        changes.field(
            "reenroll_requires_release",
            &before.reenroll_requires_release,
            patch.reenroll_requires_release.as_ref(),
        );
        if changes.is_empty() {
            return Ok(before);
        }
        if changes.has("slug") {
            let slug = slug.as_deref().unwrap_or_default();
            let taken: i64 = tenants::table
                .filter(tenants::slug.eq(slug))
                .filter(tenants::id.ne(id))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(OrgError::Duplicate(format!(
                    "a school authority with slug {slug:?}"
                )));
            }
            // The slug names the enrollment profile installed on the iPads
            // (`de.tafel.enroll.<slug>`): a new one would not replace theirs.
            let enrolled = count_where!(conn, devices.tenant_id = id);
            if enrolled > 0 {
                return Err(OrgError::InUse(format!(
                    "the slug names the enrollment profile of this authority's {enrolled} \
                     devices; it cannot change while the authority has devices"
                )));
            }
        }
        diesel::update(tenants::table.find(id))
            .set(TenantChanges {
                name: changes.has("name").then_some(name.as_deref()).flatten(),
                slug: changes.has("slug").then_some(slug.as_deref()).flatten(),
                reenroll_requires_release: patch.reenroll_requires_release,
                updated_at: now(),
            })
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "tenant")
                .object(id)
                .scope(Some(id), None)
                .summary(changes.summary()),
        )?;
        Ok(super::tenant(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
}

/// Deletes a school authority that nothing hangs on any more (schools, devices, users,
/// Apple tokens); its own settings (push certificate, calendar, catalog, assignments)
/// go with it.
pub fn delete_tenant(conn: &mut DbConn, id: &str, actor: &str) -> Result<(), OrgError> {
    conn.write_tx(|conn| {
        let before = super::tenant(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let dependents = [
            ("schools", count_where!(conn, schools.tenant_id = id)),
            ("devices", count_where!(conn, devices.tenant_id = id)),
            ("users", count_where!(conn, users.tenant_id = id)),
            (
                "Apple School Manager tokens",
                count_where!(conn, ade_tokens.tenant_id = id),
            ),
            (
                "Apps and Books tokens",
                count_where!(conn, vpp_tokens.tenant_id = id),
            ),
        ];
        if let Some(why) = still_in_use(&format!("school authority {:?}", before.name), &dependents)
        {
            return Err(OrgError::InUse(why));
        }
        // Another authority's school cannot approve this authority's apps, but a stale
        // approval must not keep the catalog (and so the authority) alive.
        let own_apps = apps::table.filter(apps::tenant_id.eq(id)).select(apps::id);
        diesel::delete(approved_apps::table.filter(approved_apps::app_id.eq_any(own_apps)))
            .execute(conn)?;
        let removed = serde_json::json!({
            "assignments": delete_where!(conn, assignments.tenant_id = id),
            "closures": delete_where!(conn, closures.tenant_id = id),
            "apps": delete_where!(conn, apps.tenant_id = id),
            "profiles": delete_where!(conn, profiles.tenant_id = id),
            "push_certificates": delete_where!(conn, push_certificates.tenant_id = id),
            "push_certificate_requests": delete_where!(conn, push_certificate_requests.tenant_id = id),
        });
        diesel::delete(tenants::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", "tenant")
                .object(id)
                .scope(Some(id), None)
                .summary(serde_json::json!({
                    "before": {"name": before.name, "slug": before.slug},
                    "removed": removed,
                })),
        )?;
        Ok(())
    })
}

/// Changes a school's name or time zone.
pub fn update_school(
    conn: &mut DbConn,
    id: &str,
    patch: &SchoolPatch,
    actor: &str,
) -> Result<School, OrgError> {
    let name = patch.name.as_deref().map(check_name).transpose()?;
    if let Some(tz) = &patch.timezone {
        check_timezone(tz)?;
    }
    conn.write_tx(|conn| {
        let before = super::school(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let mut changes = Changes::new();
        changes.field("name", &before.name, name.as_ref());
        changes.field("timezone", &before.timezone, patch.timezone.as_ref());
        if changes.is_empty() {
            return Ok(before);
        }
        if changes.has("name") {
            school_name_free(
                conn,
                &before.tenant_id,
                name.as_deref().unwrap_or_default(),
                Some(id),
            )?;
        }
        diesel::update(schools::table.find(id))
            .set(SchoolChanges {
                name: changes.has("name").then_some(name.as_deref()).flatten(),
                timezone: changes
                    .has("timezone")
                    .then_some(patch.timezone.as_deref())
                    .flatten(),
                updated_at: now(),
            })
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "school")
                .object(id)
                .scope(Some(&before.tenant_id), Some(id))
                .summary(changes.summary()),
        )?;
        Ok(super::school(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
}

/// Deletes a school that nothing hangs on any more (devices, users, classes, carts,
/// lesson requests); its own settings (enrollment links, ADE profile and rules, lesson
/// rules, approved apps, calendar, catalog profiles, assignments) go with it.
pub fn delete_school(conn: &mut DbConn, id: &str, actor: &str) -> Result<(), OrgError> {
    conn.write_tx(|conn| {
        let before = super::school(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let dependents = [
            ("devices", count_where!(conn, devices.school_id = id)),
            ("users", count_where!(conn, users.school_id = id)),
            ("classes", count_where!(conn, classes.school_id = id)),
            (
                "device groups",
                count_where!(conn, device_groups.school_id = id),
            ),
            (
                "lesson requests",
                count_where!(conn, lesson_requests.school_id = id),
            ),
        ];
        if let Some(why) = still_in_use(&format!("school {:?}", before.name), &dependents) {
            return Err(OrgError::InUse(why));
        }
        let tokens = enrollment_tokens::table
            .filter(enrollment_tokens::school_id.eq(id))
            .select(enrollment_tokens::id);
        diesel::delete(scep_challenges::table.filter(scep_challenges::token_id.eq_any(tokens)))
            .execute(conn)?;
        let removed = serde_json::json!({
            "enrollment_tokens": delete_where!(conn, enrollment_tokens.school_id = id),
            "ade_rules": delete_where!(conn, ade_rules.school_id = id),
            "ade_profile_uploads": delete_where!(conn, ade_profile_uploads.school_id = id),
            "ade_profiles": delete_where!(conn, ade_profiles.school_id = id),
            "lesson_settings": delete_where!(conn, lesson_settings.school_id = id),
            "approved_apps": delete_where!(conn, approved_apps.school_id = id),
            "closures": delete_where!(conn, closures.school_id = id),
            "assignments": delete_where!(conn, assignments.school_id = id),
            "profiles": delete_where!(conn, profiles.school_id = id),
        });
        diesel::delete(schools::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", "school")
                .object(id)
                .scope(Some(&before.tenant_id), Some(id))
                .summary(serde_json::json!({
                    "before": {"name": before.name, "timezone": before.timezone},
                    "removed": removed,
                })),
        )?;
        Ok(())
    })
}

/// Refuses a class name the school has in that school year.
fn class_name_free(
    conn: &mut DbConn,
    school_id: &str,
    year: &str,
    name: &str,
    except: &str,
) -> Result<(), OrgError> {
    let taken: i64 = classes::table
        .filter(classes::school_id.eq(school_id))
        .filter(classes::school_year.eq(year))
        .filter(classes::name.eq(name))
        .filter(classes::id.ne(except))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Err(OrgError::Duplicate(format!("class {name} {year}")));
    }
    Ok(())
}

/// Changes a class's name or school year.
pub fn update_class(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    patch: &ClassPatch,
    actor: &str,
) -> Result<Class, OrgError> {
    let name = patch.name.as_deref().map(check_short_name).transpose()?;
    if let Some(y) = &patch.school_year {
        check_school_year(y)?;
    }
    conn.write_tx(|conn| {
        let before = super::classes::class(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let mut changes = Changes::new();
        changes.field("name", &before.name, name.as_ref());
        changes.field(
            "school_year",
            &before.school_year,
            patch.school_year.as_ref(),
        );
        if changes.is_empty() {
            return Ok(before);
        }
        class_name_free(
            conn,
            &before.school_id,
            patch.school_year.as_deref().unwrap_or(&before.school_year),
            name.as_deref().unwrap_or(&before.name),
            id,
        )?;
        diesel::update(classes::table.find(id))
            .set(ClassChanges {
                name: changes.has("name").then_some(name.as_deref()).flatten(),
                school_year: changes
                    .has("school_year")
                    .then_some(patch.school_year.as_deref())
                    .flatten(),
                updated_at: now(),
            })
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "class")
                .object(id)
                .scope(Some(tenant_id), Some(&before.school_id))
                .summary(changes.summary()),
        )?;
        Ok(super::classes::class(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
}

/// What deleting a class or group took with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Devices that left it (they stay in the school).
    pub devices: usize,
    /// Assignments to it that were deleted (the reconciler removes their items).
    pub assignments: usize,
    /// Open lesson requests for it that were cancelled.
    pub lesson_requests: usize,
}

/// Deletes the live assignments targeting `kind`/`id` and cancels the open lesson
/// requests for it; enrollment links and ADE rules stop placing devices there.
fn detach_target(
    conn: &mut DbConn,
    kind: TargetKind,
    id: &str,
    actor: &str,
) -> QueryResult<(usize, usize)> {
    let live: Vec<Assignment> = assignments::table
        .filter(assignments::target_kind.eq(kind.as_str()))
        .filter(assignments::target_id.eq(id))
        .filter(assignments::deleted_at.is_null())
        .select(Assignment::as_select())
        .load(conn)?;
    for a in &live {
        assign::delete(conn, a, actor)?;
    }
    let open = [RequestStatus::Pending, RequestStatus::Approved];
    let cancelled = diesel::update(
        lesson_requests::table
            .filter(lesson_requests::target_kind.eq(kind.as_str()))
            .filter(lesson_requests::target_id.eq(id))
            .filter(lesson_requests::status.eq_any(open)),
    )
    .set((
        lesson_requests::status.eq(RequestStatus::Cancelled),
        lesson_requests::updated_at.eq(now()),
    ))
    .execute(conn)?;
    match kind {
        TargetKind::Class => {
            diesel::update(enrollment_tokens::table.filter(enrollment_tokens::class_id.eq(id)))
                .set(enrollment_tokens::class_id.eq(None::<String>))
                .execute(conn)?;
            diesel::update(ade_rules::table.filter(ade_rules::class_id.eq(id)))
                .set(ade_rules::class_id.eq(None::<String>))
                .execute(conn)?;
        }
        _ => {
            diesel::update(enrollment_tokens::table.filter(enrollment_tokens::group_id.eq(id)))
                .set(enrollment_tokens::group_id.eq(None::<String>))
                .execute(conn)?;
            diesel::update(ade_rules::table.filter(ade_rules::group_id.eq(id)))
                .set(ade_rules::group_id.eq(None::<String>))
                .execute(conn)?;
        }
    }
    Ok((live.len(), cancelled))
}

/// Deletes a class: its memberships and teacher links go, assignments to it are
/// deleted (their items leave the iPads at the next reconcile), open lesson requests
/// for it are cancelled. Its devices stay in the school.
pub fn delete_class(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    actor: &str,
) -> Result<Removed, OrgError> {
    conn.write_tx(|conn| {
        let before = super::classes::class(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let teachers = super::classes::teachers_of(conn, id)?;
        let (assignments, lesson_requests) = detach_target(conn, TargetKind::Class, id, actor)?;
        let devices = diesel::delete(class_devices::table.filter(class_devices::class_id.eq(id)))
            .execute(conn)?;
        diesel::delete(class_teachers::table.filter(class_teachers::class_id.eq(id)))
            .execute(conn)?;
        diesel::delete(classes::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", "class")
                .object(id)
                .scope(Some(tenant_id), Some(&before.school_id))
                .summary(serde_json::json!({
                    "before": {
                        "name": before.name,
                        "school_year": before.school_year,
                        "teachers": teachers,
                        "devices": devices,
                    },
                    "assignments_deleted": assignments,
                    "lesson_requests_cancelled": lesson_requests,
                })),
        )?;
        Ok(Removed {
            devices,
            assignments,
            lesson_requests,
        })
    })
}

/// Changes a device group's name or kind.
pub fn update_group(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    patch: &GroupPatch,
    actor: &str,
) -> Result<DeviceGroup, OrgError> {
    let name = patch.name.as_deref().map(check_short_name).transpose()?;
    let kind = patch.kind.as_deref().map(check_kind).transpose()?;
    conn.write_tx(|conn| {
        let before = super::classes::group(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let mut changes = Changes::new();
        changes.field("name", &before.name, name.as_ref());
        changes.field("kind", &before.kind, kind.as_ref());
        if changes.is_empty() {
            return Ok(before);
        }
        if let Some(name) = name.as_deref().filter(|_| changes.has("name")) {
            let taken: i64 = device_groups::table
                .filter(device_groups::school_id.eq(&before.school_id))
                .filter(device_groups::name.eq(name))
                .filter(device_groups::id.ne(id))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(OrgError::Duplicate(format!("device group {name}")));
            }
        }
        diesel::update(device_groups::table.find(id))
            .set(GroupChanges {
                name: changes.has("name").then_some(name.as_deref()).flatten(),
                kind: changes.has("kind").then_some(kind.as_deref()).flatten(),
                updated_at: now(),
            })
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "device_group")
                .object(id)
                .scope(Some(tenant_id), Some(&before.school_id))
                .summary(changes.summary()),
        )?;
        Ok(super::classes::group(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
}

/// Deletes a device group (cart): like [`delete_class`], its devices stay in the school.
pub fn delete_group(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    actor: &str,
) -> Result<Removed, OrgError> {
    conn.write_tx(|conn| {
        let before = super::classes::group(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let (assignments, lesson_requests) = detach_target(conn, TargetKind::Group, id, actor)?;
        let devices = diesel::delete(group_devices::table.filter(group_devices::group_id.eq(id)))
            .execute(conn)?;
        diesel::delete(device_groups::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", "device_group")
                .object(id)
                .scope(Some(tenant_id), Some(&before.school_id))
                .summary(serde_json::json!({
                    "before": {"name": before.name, "kind": before.kind, "devices": devices},
                    "assignments_deleted": assignments,
                    "lesson_requests_cancelled": lesson_requests,
                })),
        )?;
        Ok(Removed {
            devices,
            assignments,
            lesson_requests,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_only_what_is_left() {
        assert_eq!(
            still_in_use("school \"Nord\"", &[("devices", 0), ("classes", 0)]),
            None
        );
        assert_eq!(
            still_in_use(
                "school \"Nord\"",
                &[("devices", 3), ("users", 0), ("classes", 2)]
            )
            .as_deref(),
            Some("school \"Nord\" still has devices (3), classes (2): move or delete them first")
        );
    }

    #[test]
    fn slugs_names_and_kinds_are_checked_as_at_create() {
        assert_eq!(check_slug(" nord-1 ").unwrap(), "nord-1");
        assert!(matches!(
            check_slug("Nord"),
            Err(OrgError::Invalid { field: "slug", .. })
        ));
        assert!(matches!(
            check_short_name("  "),
            Err(OrgError::Invalid { field: "name", .. })
        ));
        assert!(matches!(
            check_kind("trolley"),
            Err(OrgError::Invalid { field: "kind", .. })
        ));
        assert_eq!(check_kind("group").unwrap(), "group");
    }
}
