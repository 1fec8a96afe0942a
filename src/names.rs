//! Names beside ids: the display names of the users, authorities, schools, classes,
//! carts, catalog items and devices a page of answers refers to, so a reader never sees
//! a bare UUID. One query per kind for a whole page (never one per row); an id whose
//! object is gone has no name (`None` beside it).

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::{apps, classes, device_groups, devices, profiles, schools, tenants, users};
use crate::db::DbConn;

/// Id → display name.
pub type Names = HashMap<String, String>;

/// Ids per query: far below every backend's limit of bound parameters.
const CHUNK: usize = 500;

/// The distinct ids `f` picks from `rows`.
pub fn ids<'a, T>(rows: &'a [T], f: impl Fn(&'a T) -> Option<&'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = rows.iter().filter_map(f).collect();
    v.sort_unstable();
    v.dedup();
    v
}

macro_rules! names_of {
    ($(#[$doc:meta])* $fn:ident, $table:ident) => {
        $(#[$doc])*
        pub fn $fn(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Names> {
            let mut out = Names::new();
            for chunk in ids.chunks(CHUNK) {
                out.extend(
                    $table::table
                        .filter($table::id.eq_any(chunk))
                        .select(($table::id, $table::name))
                        .load::<(String, String)>(conn)?,
                );
            }
            Ok(out)
        }
    };
}

names_of!(
    /// Users' names.
    users_named,
    users
);
names_of!(
    /// School authorities' names.
    tenants_named,
    tenants
);
names_of!(
    /// Schools' names.
    schools_named,
    schools
);
names_of!(
    /// Classes' names.
    classes_named,
    classes
);
names_of!(
    /// Device groups' (carts') names.
    groups_named,
    device_groups
);
names_of!(
    /// Catalog apps' names.
    apps_named,
    apps
);
names_of!(
    /// Catalog profiles' names.
    profiles_named,
    profiles
);

/// Devices' names, or their serial numbers where they report no name.
pub fn devices_named(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Names> {
    let mut out = Names::new();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(String, Option<String>, Option<String>)> = devices::table
            .filter(devices::id.eq_any(chunk))
            .select((devices::id, devices::name, devices::serial_number))
            .load(conn)?;
        out.extend(
            rows.into_iter()
                .filter_map(|(id, name, serial)| Some((id, name.or(serial)?))),
        );
    }
    Ok(out)
}

/// An id with its name, for lists of ids (`teacher_ids` → `teachers`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Named {
    /// The id.
    pub id: String,
    /// Its name (none when the object is gone).
    pub name: Option<String>,
}

/// `ids` in their order, each with its name from `names`.
pub fn named(ids: &[String], names: &Names) -> Vec<Named> {
    ids.iter()
        .map(|id| Named {
            id: id.clone(),
            name: names.get(id).cloned(),
        })
        .collect()
}

/// The name of `id` in `names`, if it has one.
pub fn name(names: &Names, id: Option<&str>) -> Option<String> {
    id.and_then(|id| names.get(id)).cloned()
}
