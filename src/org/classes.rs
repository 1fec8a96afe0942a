//! Classes (name, school year, teachers) and device groups (tablet carts), and which
//! devices are in them.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::OrgError;
use crate::audit;
use crate::db::schema::{
    class_devices, class_teachers, classes, device_groups, devices, group_devices, users,
};
use crate::db::{new_id, now, DbConn};

/// A class of a school in a school year.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = classes)]
pub struct Class {
    /// Id.
    pub id: String,
    /// School.
    pub school_id: String,
    /// Name, e.g. "7b".
    pub name: String,
    /// School year, e.g. "2026/27".
    pub school_year: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last change.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// A device group, e.g. a tablet cart that moves between classes.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = device_groups)]
pub struct DeviceGroup {
    /// Id.
    pub id: String,
    /// School.
    pub school_id: String,
    /// Name, e.g. "iPad-Koffer 2".
    pub name: String,
    /// `cart` or `group`.
    pub kind: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last change.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// Input for a class.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClass {
    /// Name.
    pub name: String,
    /// School year, `YYYY/YY`.
    pub school_year: String,
    /// Teachers (user ids, of this school).
    #[serde(default)]
    pub teacher_ids: Vec<String>,
}

/// Input for a device group.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Name.
    pub name: String,
    /// `cart` (default) or `group`.
    #[serde(default)]
    pub kind: Option<String>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> OrgError {
    OrgError::Invalid {
        field,
        message: message.into(),
    }
}

/// Checks a school year such as `2026/27`.
pub fn check_school_year(y: &str) -> Result<(), OrgError> {
    let ok = y.len() == 7
        && y.as_bytes()[4] == b'/'
        && y[..4].chars().all(|c| c.is_ascii_digit())
        && y[5..].chars().all(|c| c.is_ascii_digit())
        && y[..4].parse::<u32>().ok().map(|a| (a + 1) % 100) == y[5..].parse::<u32>().ok();
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "school_year",
            format!("{y:?} is not a school year such as 2026/27"),
        ))
    }
}

/// Checks that users are teachers (or admins) of `school_id`.
fn check_teachers(conn: &mut DbConn, school_id: &str, ids: &[String]) -> Result<(), OrgError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: i64 = users::table
        .filter(users::id.eq_any(ids))
        .filter(users::school_id.eq(school_id))
        .count()
        .get_result(conn)?;
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    if found != unique.len() as i64 {
        return Err(invalid(
            "teacher_ids",
            "every teacher must be a user of this school",
        ));
    }
    Ok(())
}

/// Creates a class (inside the caller's transaction when used from an import).
pub fn create_class(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    input: &NewClass,
    actor: &str,
) -> Result<Class, OrgError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1 to 100 characters"));
    }
    check_school_year(&input.school_year)?;
    check_teachers(conn, school_id, &input.teacher_ids)?;
    let exists: i64 = classes::table
        .filter(classes::school_id.eq(school_id))
        .filter(classes::school_year.eq(&input.school_year))
        .filter(classes::name.eq(&name))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Err(OrgError::Duplicate(format!(
            "class {name} {}",
            input.school_year
        )));
    }
    let at = now();
    let class = Class {
        id: new_id(),
        school_id: school_id.to_owned(),
        name,
        school_year: input.school_year.clone(),
        created_at: at,
        updated_at: at,
    };
    diesel::insert_into(classes::table)
        .values((
            classes::id.eq(&class.id),
            classes::school_id.eq(&class.school_id),
            classes::name.eq(&class.name),
            classes::school_year.eq(&class.school_year),
            classes::created_at.eq(at),
            classes::updated_at.eq(at),
        ))
        .execute(conn)?;
    for t in &input.teacher_ids {
        diesel::insert_into(class_teachers::table)
            .values((
                class_teachers::class_id.eq(&class.id),
                class_teachers::user_id.eq(t),
            ))
            .execute(conn)?;
    }
    audit::record(
        conn,
        &audit::Entry::new(actor, "create", "class")
            .object(&class.id)
            .scope(Some(tenant_id), Some(school_id))
            .summary(serde_json::json!({"after": {"name": class.name, "school_year": class.school_year, "teachers": input.teacher_ids}})),
    )?;
    Ok(class)
}

/// Replaces a class's teachers.
pub fn set_teachers(
    conn: &mut DbConn,
    tenant_id: &str,
    class: &Class,
    teacher_ids: &[String],
    actor: &str,
) -> Result<(), OrgError> {
    check_teachers(conn, &class.school_id, teacher_ids)?;
    let before = teachers_of(conn, &class.id)?;
    diesel::delete(class_teachers::table.filter(class_teachers::class_id.eq(&class.id)))
        .execute(conn)?;
    for t in teacher_ids {
        diesel::insert_into(class_teachers::table)
            .values((
                class_teachers::class_id.eq(&class.id),
                class_teachers::user_id.eq(t),
            ))
            .execute(conn)?;
    }
    audit::record(
        conn,
        &audit::Entry::new(actor, "update", "class")
            .object(&class.id)
            .scope(Some(tenant_id), Some(&class.school_id))
            .summary(serde_json::json!({"before": {"teachers": before}, "after": {"teachers": teacher_ids}})),
    )?;
    Ok(())
}

/// Teacher ids of a class.
pub fn teachers_of(conn: &mut DbConn, class_id: &str) -> QueryResult<Vec<String>> {
    class_teachers::table
        .filter(class_teachers::class_id.eq(class_id))
        .select(class_teachers::user_id)
        .order(class_teachers::user_id.asc())
        .load(conn)
}

/// One class.
pub fn class(conn: &mut DbConn, id: &str) -> QueryResult<Option<Class>> {
    classes::table
        .find(id)
        .select(Class::as_select())
        .first(conn)
        .optional()
}

/// A school's classes, optionally of one year, by name.
pub fn classes_of_school(
    conn: &mut DbConn,
    school_id: &str,
    year: Option<&str>,
) -> QueryResult<Vec<Class>> {
    let mut q = classes::table
        .filter(classes::school_id.eq(school_id.to_owned()))
        .select(Class::as_select())
        .order((classes::school_year.desc(), classes::name.asc()))
        .into_boxed();
    if let Some(y) = year {
        q = q.filter(classes::school_year.eq(y.to_owned()));
    }
    q.load(conn)
}

/// The classes a teacher teaches.
pub fn classes_of_teacher(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<Class>> {
    classes::table
        .inner_join(class_teachers::table)
        .filter(class_teachers::user_id.eq(user_id))
        .select(Class::as_select())
        .order((classes::school_year.desc(), classes::name.asc()))
        .load(conn)
}

/// Does the teacher teach this class?
pub fn teaches(conn: &mut DbConn, user_id: &str, class_id: &str) -> QueryResult<bool> {
    let n: i64 = class_teachers::table
        .filter(class_teachers::user_id.eq(user_id))
        .filter(class_teachers::class_id.eq(class_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Creates a device group.
pub fn create_group(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    input: &NewGroup,
    actor: &str,
) -> Result<DeviceGroup, OrgError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1 to 100 characters"));
    }
    let kind = input.kind.clone().unwrap_or_else(|| "cart".into());
    if kind != "cart" && kind != "group" {
        return Err(invalid("kind", "cart or group"));
    }
    let exists: i64 = device_groups::table
        .filter(device_groups::school_id.eq(school_id))
        .filter(device_groups::name.eq(&name))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Err(OrgError::Duplicate(format!("device group {name}")));
    }
    let at = now();
    let group = DeviceGroup {
        id: new_id(),
        school_id: school_id.to_owned(),
        name,
        kind,
        created_at: at,
        updated_at: at,
    };
    diesel::insert_into(device_groups::table)
        .values((
            device_groups::id.eq(&group.id),
            device_groups::school_id.eq(&group.school_id),
            device_groups::name.eq(&group.name),
            device_groups::kind.eq(&group.kind),
            device_groups::created_at.eq(at),
            device_groups::updated_at.eq(at),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        &audit::Entry::new(actor, "create", "device_group")
            .object(&group.id)
            .scope(Some(tenant_id), Some(school_id))
            .summary(serde_json::json!({"after": {"name": group.name, "kind": group.kind}})),
    )?;
    Ok(group)
}

/// One group.
pub fn group(conn: &mut DbConn, id: &str) -> QueryResult<Option<DeviceGroup>> {
    device_groups::table
        .find(id)
        .select(DeviceGroup::as_select())
        .first(conn)
        .optional()
}

/// A school's groups, by name.
pub fn groups_of_school(conn: &mut DbConn, school_id: &str) -> QueryResult<Vec<DeviceGroup>> {
    device_groups::table
        .filter(device_groups::school_id.eq(school_id))
        .select(DeviceGroup::as_select())
        .order(device_groups::name.asc())
        .load(conn)
}

/// Which membership to change.
#[derive(Debug, Clone, Copy)]
pub enum Membership<'a> {
    /// A class.
    Class(&'a str),
    /// A device group.
    Group(&'a str),
}

/// Adds devices (ids, all of `school_id`) to a class or group; returns how many were new.
pub fn add_devices(
    conn: &mut DbConn,
    school_id: &str,
    to: Membership<'_>,
    device_ids: &[String],
) -> Result<usize, OrgError> {
    let in_school: i64 = devices::table
        .filter(devices::id.eq_any(device_ids))
        .filter(devices::school_id.eq(school_id))
        .count()
        .get_result(conn)?;
    let unique: std::collections::BTreeSet<&String> = device_ids.iter().collect();
    if in_school != unique.len() as i64 {
        return Err(invalid(
            "devices",
            "every device must belong to this school",
        ));
    }
    let mut added = 0;
    for id in unique {
        added += match to {
            Membership::Class(c) => {
                let exists: i64 = class_devices::table
                    .find((c, id))
                    .count()
                    .get_result(conn)?;
                if exists > 0 {
                    0
                } else {
                    diesel::insert_into(class_devices::table)
                        .values((
                            class_devices::class_id.eq(c),
                            class_devices::device_id.eq(id),
                        ))
                        .execute(conn)?
                }
            }
            Membership::Group(g) => {
                let exists: i64 = group_devices::table
                    .find((g, id))
                    .count()
                    .get_result(conn)?;
                if exists > 0 {
                    0
                } else {
                    diesel::insert_into(group_devices::table)
                        .values((
                            group_devices::group_id.eq(g),
                            group_devices::device_id.eq(id),
                        ))
                        .execute(conn)?
                }
            }
        };
    }
    Ok(added)
}

/// Removes devices from a class or group; returns how many.
pub fn remove_devices(
    conn: &mut DbConn,
    from: Membership<'_>,
    device_ids: &[String],
) -> QueryResult<usize> {
    match from {
        Membership::Class(c) => diesel::delete(
            class_devices::table
                .filter(class_devices::class_id.eq(c))
                .filter(class_devices::device_id.eq_any(device_ids)),
        )
        .execute(conn),
        Membership::Group(g) => diesel::delete(
            group_devices::table
                .filter(group_devices::group_id.eq(g))
                .filter(group_devices::device_id.eq_any(device_ids)),
        )
        .execute(conn),
    }
}

/// Number of devices in a class or group; erased and released iPads do not count
/// until they enroll again.
pub fn device_count(conn: &mut DbConn, of: Membership<'_>) -> QueryResult<i64> {
    use crate::enrollment::EnrollmentStatus;
    let gone = [EnrollmentStatus::Erased, EnrollmentStatus::Retired];
    match of {
        Membership::Class(c) => class_devices::table
            .inner_join(devices::table)
            .filter(class_devices::class_id.eq(c))
            .filter(devices::enrollment_status.ne_all(gone))
            .count()
            .get_result(conn),
        Membership::Group(g) => group_devices::table
            .inner_join(devices::table)
            .filter(group_devices::group_id.eq(g))
            .filter(devices::enrollment_status.ne_all(gone))
            .count()
            .get_result(conn),
    }
}
