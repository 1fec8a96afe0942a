//! Bulk import from school administration software and spreadsheets: classes with
//! their teachers, and devices by serial number with their class and cart.
//!
//! Every row is validated; an import is applied whole or not at all. The result names
//! each bad row (1-based line numbers, the header being line 1).

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::classes::{self, Membership, NewClass};
use super::OrgError;
use crate::accounts::Role;
use crate::audit;
use crate::db::schema::{classes as classes_t, device_groups, devices, users};
use crate::db::{new_id, now, DbConn};

/// Largest CSV accepted.
pub const MAX_CSV: usize = 5 * 1024 * 1024;

/// A rejected row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// Line in the file (header = 1).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows read.
    pub rows: usize,
    /// Objects created.
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Users (teachers) created.
    pub users_created: usize,
    /// Bad rows; when not empty nothing was applied.
    pub errors: Vec<RowError>,
}

/// Why an import failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The file is not usable CSV.
    #[error("{0}")]
    Format(String),
    /// Rows were rejected; nothing was applied.
    #[error("{} rows rejected", .0.errors.len())]
    Rejected(ImportReport),
}

impl From<OrgError> for ImportError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Db(e) => ImportError::Db(e),
            other => ImportError::Format(other.to_string()),
        }
    }
}

/// A CSV row: its line and its values by column.
pub(crate) type Row = (usize, HashMap<String, String>);

/// Reads a CSV (comma or semicolon separated — German spreadsheets export `;`) into
/// header-indexed rows.
pub(crate) fn read_csv(
    text: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<Row>, ImportError> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Format(format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    for r in required {
        if !headers.iter().any(|h| h == r) {
            return Err(ImportError::Format(format!(
                "the header line lacks the column {r:?} (columns: {}; optional: {})",
                required.join(", "),
                optional.join(", ")
            )));
        }
    }
    if let Some(unknown) = headers
        .iter()
        .find(|h| !required.contains(&h.as_str()) && !optional.contains(&h.as_str()))
    {
        return Err(ImportError::Format(format!("unknown column {unknown:?}")));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ImportError::Format(format!("line {line}: {e}")))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let map = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_owned))
            .collect();
        rows.push((line, map));
    }
    Ok(rows)
}

pub(crate) fn field<'a>(row: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    row.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Imports classes: `class,school_year[,teacher_email][,teacher_name]`; several teachers
/// separated by `|`. Unknown teacher e-mails create teacher accounts (API-token or
/// password set later). An existing class gets the listed teachers.
pub fn import_classes(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    csv_text: &str,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let rows = read_csv(
        csv_text,
        &["class", "school_year"],
        &["teacher_email", "teacher_name"],
    )?;
    conn.write_tx(|conn| {
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        let mut seen = std::collections::HashSet::new();
        for (line, row) in &rows {
            let mut bad = |m: String| {
                report.errors.push(RowError {
                    line: *line,
                    message: m,
                })
            };
            let (Some(name), Some(year)) = (field(row, "class"), field(row, "school_year")) else {
                bad("class and school_year are required".into());
                continue;
            };
            if let Err(e) = classes::check_school_year(year) {
                bad(e.to_string());
                continue;
            }
            if !seen.insert((name.to_owned(), year.to_owned())) {
                bad(format!("class {name} {year} appears twice"));
                continue;
            }
            let emails: Vec<String> = field(row, "teacher_email")
                .map(|e| {
                    e.split('|')
                        .map(|x| x.trim().to_lowercase())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let names: Vec<&str> = field(row, "teacher_name")
                .map(|n| n.split('|').map(str::trim).collect())
                .unwrap_or_default();
            let mut teacher_ids = Vec::new();
            let mut row_ok = true;
            for (i, email) in emails.iter().enumerate() {
                if !email.contains('@') {
                    bad(format!("{email:?} is not an e-mail address"));
                    row_ok = false;
                    break;
                }
                let existing: Option<(String, Option<String>)> = users::table
                    .filter(users::email.eq(email))
                    .select((users::id, users::school_id))
                    .first(conn)
                    .optional()?;
                match existing {
                    Some((id, Some(s))) if s == school_id => teacher_ids.push(id),
                    Some(_) => {
                        bad(format!("{email} is a user of another school"));
                        row_ok = false;
                        break;
                    }
                    None => {
                        let id = new_id();
                        let display = names
                            .get(i)
                            .copied()
                            .filter(|n| !n.is_empty())
                            .unwrap_or(email.as_str());
                        diesel::insert_into(users::table)
                            .values((
                                users::id.eq(&id),
                                users::name.eq(display),
                                users::email.eq(email),
                                users::role.eq(Role::Teacher.as_str()),
                                users::tenant_id.eq(tenant_id),
                                users::school_id.eq(school_id),
                                users::created_at.eq(now()),
                            ))
                            .execute(conn)?;
                        report.users_created += 1;
                        teacher_ids.push(id);
                    }
                }
            }
            if !row_ok {
                continue;
            }
            let existing: Option<String> = classes_t::table
                .filter(classes_t::school_id.eq(school_id))
                .filter(classes_t::school_year.eq(year))
                .filter(classes_t::name.eq(name))
                .select(classes_t::id)
                .first(conn)
                .optional()?;
            match existing {
                Some(id) => {
                    if !teacher_ids.is_empty() {
                        if let Some(class) = classes::class(conn, &id)? {
                            classes::set_teachers(conn, tenant_id, &class, &teacher_ids, actor)?;
                        }
                    }
                    report.updated += 1;
                }
                None => {
                    let input = NewClass {
                        name: name.to_owned(),
                        school_year: year.to_owned(),
                        teacher_ids,
                    };
                    match classes::create_class(conn, tenant_id, school_id, &input, actor) {
                        Ok(_) => report.created += 1,
                        Err(OrgError::Db(e)) => return Err(e.into()),
                        Err(e) => bad(e.to_string()),
                    }
                }
            }
        }
        finish(conn, report, tenant_id, school_id, actor, "classes")
    })
}

/// Imports devices: `serial[,class][,school_year][,cart][,name]`. Devices not yet
/// enrolled are registered by serial and land in their school, class and cart when
/// they enroll. Carts are created when missing; classes must exist.
pub fn import_devices(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    csv_text: &str,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let rows = read_csv(
        csv_text,
        &["serial"],
        &["class", "school_year", "cart", "name"],
    )?;
    conn.write_tx(|conn| {
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        let mut seen = std::collections::HashSet::new();
        for (line, row) in &rows {
            let placed = serial_of(row, &mut seen)
                .map(|serial| device_row(conn, tenant_id, school_id, &serial, row, actor));
            match placed {
                Ok(Ok(Ok(Placed::Created))) => report.created += 1,
                Ok(Ok(Ok(Placed::Updated))) => report.updated += 1,
                Ok(Err(e)) => return Err(e),
                Err(message) | Ok(Ok(Err(message))) => report.errors.push(RowError {
                    line: *line,
                    message,
                }),
            }
        }
        finish(conn, report, tenant_id, school_id, actor, "devices")
    })
}

/// What a device row did.
enum Placed {
    Created,
    Updated,
}

/// The row's serial number, upper case, or why the row has none that fits; a serial seen
/// before in the file is refused.
fn serial_of(
    row: &HashMap<String, String>,
    seen: &mut std::collections::HashSet<String>,
) -> Result<String, String> {
    let serial = field(row, "serial")
        .map(str::to_uppercase)
        .ok_or("serial is required")?;
    if serial.len() > 64 || !serial.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{serial:?} is not a serial number"));
    }
    if !seen.insert(serial.clone()) {
        return Err(format!("serial {serial} appears twice"));
    }
    Ok(serial)
}

/// Stores one device row of an import: the device in the school (created, or moved from
/// no school), its class and its cart (created when new). `Ok(Err(reason))` refuses the
/// row.
fn device_row(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    serial: &str,
    row: &HashMap<String, String>,
    actor: &str,
) -> Result<Result<Placed, String>, ImportError> {
    // The class, if named: in the given school year, else the newest one.
    let class_id = match field(row, "class") {
        Some(name) => {
            let mut q = classes_t::table
                .filter(classes_t::school_id.eq(school_id))
                .filter(classes_t::name.eq(name))
                .select(classes_t::id)
                .order(classes_t::school_year.desc())
                .into_boxed();
            if let Some(y) = field(row, "school_year") {
                q = q.filter(classes_t::school_year.eq(y.to_owned()));
            }
            match q.first::<String>(conn).optional()? {
                Some(id) => Some(id),
                None => {
                    return Ok(Err(format!(
                        "no class {name:?} in this school (import classes first)"
                    )))
                }
            }
        }
        None => None,
    };
    // Only this authority's rows: another authority's devices (even one Apple School
    // Manager reported there) are neither claimed nor revealed.
    let existing: Option<(String, Option<String>)> = devices::table
        .filter(devices::serial_number.eq(serial))
        .filter(devices::tenant_id.eq(tenant_id))
        .select((devices::id, devices::school_id))
        .order(devices::created_at.asc())
        .first(conn)
        .optional()?;
    let at = now();
    let (device_id, placed) = match existing {
        Some((_, Some(s))) if s != school_id => {
            return Ok(Err(format!(
                "device {serial} is managed elsewhere in this school authority: its authority admin can move it"
            )));
        }
        Some((id, _)) => {
            diesel::update(devices::table.find(&id))
                .set((
                    devices::tenant_id.eq(tenant_id),
                    devices::school_id.eq(school_id),
                    devices::updated_at.eq(at),
                ))
                .execute(conn)?;
            if let Some(n) = field(row, "name") {
                diesel::update(devices::table.find(&id))
                    .set(devices::name.eq(n))
                    .execute(conn)?;
            }
            (id, Placed::Updated)
        }
        None => {
            let id = new_id();
            diesel::insert_into(devices::table)
                .values(crate::devices::NewDevice {
                    serial_number: Some(serial),
                    tenant_id: Some(tenant_id),
                    school_id: Some(school_id),
                    name: field(row, "name"),
                    ..crate::devices::NewDevice::pending(&id, at)
                })
                .execute(conn)?;
            (id, Placed::Created)
        }
    };
    if let Some(c) = &class_id {
        classes::add_devices(
            conn,
            school_id,
            Membership::Class(c),
            std::slice::from_ref(&device_id),
        )?;
    }
    if let Some(cart) = field(row, "cart") {
        let gid: Option<String> = device_groups::table
            .filter(device_groups::school_id.eq(school_id))
            .filter(device_groups::name.eq(cart))
            .select(device_groups::id)
            .first(conn)
            .optional()?;
        let gid = match gid {
            Some(g) => g,
            None => {
                classes::create_group(
                    conn,
                    tenant_id,
                    school_id,
                    &classes::NewGroup {
                        name: cart.to_owned(),
                        kind: Some("cart".into()),
                    },
                    actor,
                )?
                .id
            }
        };
        classes::add_devices(
            conn,
            school_id,
            Membership::Group(&gid),
            std::slice::from_ref(&device_id),
        )?;
    }
    Ok(Ok(placed))
}

/// Rolls back (by returning an error) when any row failed; otherwise audits the import.
fn finish(
    conn: &mut DbConn,
    report: ImportReport,
    tenant_id: &str,
    school_id: &str,
    actor: &str,
    what: &str,
) -> Result<ImportReport, ImportError> {
    if !report.errors.is_empty() {
        return Err(ImportError::Rejected(report));
    }
    audit::record(
        conn,
        &audit::Entry::new(actor, "import", what)
            .object(school_id)
            .scope(Some(tenant_id), Some(school_id))
            .summary(serde_json::json!({"rows": report.rows, "created": report.created, "updated": report.updated, "users_created": report.users_created})),
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_is_upper_case_alphanumeric_and_once_per_file() {
        let row = |s: &str| HashMap::from([("serial".to_string(), s.to_string())]);
        let mut seen = std::collections::HashSet::new();
        assert_eq!(
            serial_of(&row("dmpx1234abcd"), &mut seen),
            Ok("DMPX1234ABCD".into())
        );
        assert!(
            serial_of(&row("DMPX1234ABCD"), &mut seen).is_err_and(|e| e.contains("appears twice"))
        );
        assert!(serial_of(&row("DMP-1234"), &mut seen).is_err_and(|e| e.contains("not a serial")));
        assert_eq!(
            serial_of(&HashMap::new(), &mut seen),
            Err("serial is required".into())
        );
    }
}
