//! The catalog: App Store and in-house apps, and configuration profiles (uploaded or
//! rendered from the templates in `profiles/`). Items belong to the whole district
//! (no authority) or to one school authority; profiles may be rendered per school.

pub mod icons;

pub use tafel_profiles as profiles;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::schema::{apps, profiles as profiles_t};
use crate::db::{new_id, now, DbConn};

/// An app in the catalog.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, Insertable, utoipa::ToSchema)]
#[diesel(table_name = apps)]
pub struct App {
    /// Id.
    pub id: String,
    /// Authority (none: district-wide).
    pub tenant_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Bundle identifier, e.g. `com.apple.Keynote`.
    pub bundle_id: String,
    /// App Store id (iTunesStoreID / adamId).
    pub adam_id: Option<String>,
    /// In-house app manifest (https).
    pub manifest_url: Option<String>,
    /// ManagementFlags (`mdm/commands/application.install.yaml`: 1 remove with MDM, 4 prevent backup, 5 both).
    pub management_flags: i32,
    /// Whether users may remove it.
    pub removable: bool,
    /// Managed app configuration (JSON dictionary).
    pub configuration: Option<String>,
    /// Needs a device-assigned licence from Apps and Books before install.
    pub licensed: bool,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Changed.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// Input for an app.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// Authority (district admins may leave it out for district-wide apps).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Bundle identifier.
    pub bundle_id: String,
    /// App Store id.
    #[serde(default)]
    pub adam_id: Option<String>,
    /// In-house manifest URL.
    #[serde(default)]
    pub manifest_url: Option<String>,
    /// ManagementFlags (1, 4 or 5; default 1).
    #[serde(default)]
    pub management_flags: Option<i32>,
    /// Removable by the user (default true).
    #[serde(default)]
    pub removable: Option<bool>,
    /// Managed app configuration.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<serde_json::Map<String, serde_json::Value>>,
    /// Needs an Apps and Books licence (default: true for App Store apps).
    #[serde(default)]
    pub licensed: Option<bool>,
}

/// A catalog app with the name of its authority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppView {
    /// The app.
    #[serde(flatten)]
    pub app: App,
    /// The authority's name (none: the whole district's).
    pub tenant_name: Option<String>,
}

/// A catalog profile with the names of its authority and school.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    /// The profile.
    #[serde(flatten)]
    pub profile: Profile,
    /// The authority's name (none: the whole district's).
    pub tenant_name: Option<String>,
    /// The school's name (profiles rendered for one school).
    pub school_name: Option<String>,
}

/// Apps with their authorities' names (one query for the whole page).
pub fn apps_with_names(conn: &mut DbConn, list: Vec<App>) -> QueryResult<Vec<AppView>> {
    use crate::names::{self, ids};
    let tenants = names::tenants_named(conn, &ids(&list, |a| a.tenant_id.as_deref()))?;
    Ok(list
        .into_iter()
        .map(|app| AppView {
            tenant_name: names::name(&tenants, app.tenant_id.as_deref()),
            app,
        })
        .collect())
}

/// Profiles with their authorities' and schools' names (two queries for the whole page).
pub fn profiles_with_names(conn: &mut DbConn, list: Vec<Profile>) -> QueryResult<Vec<ProfileView>> {
    use crate::names::{self, ids};
    let tenants = names::tenants_named(conn, &ids(&list, |p| p.tenant_id.as_deref()))?;
    let schools = names::schools_named(conn, &ids(&list, |p| p.school_id.as_deref()))?;
    Ok(list
        .into_iter()
        .map(|profile| ProfileView {
            tenant_name: names::name(&tenants, profile.tenant_id.as_deref()),
            school_name: names::name(&schools, profile.school_id.as_deref()),
            profile,
        })
        .collect())
}

/// A profile in the catalog.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, Insertable, utoipa::ToSchema)]
#[diesel(table_name = profiles_t)]
pub struct Profile {
    /// Id.
    pub id: String,
    /// Authority (none: district-wide).
    pub tenant_id: Option<String>,
    /// School it was rendered for.
    pub school_id: Option<String>,
    /// Display name.
    pub name: String,
    /// PayloadIdentifier (what the device reports in ProfileList).
    pub identifier: String,
    /// The unsigned profile (XML); delivered signed.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Template it was rendered from.
    pub template: Option<String>,
    /// Payload types, comma-separated.
    pub payload_types: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Changed.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
    /// Its version: the outer `PayloadUUID` (uppercase), new for new content; what a
    /// device's ProfileList is compared with. Unknown for profiles stored before.
    pub payload_uuid: Option<String>,
}

/// Does a device holding profile version `held` have the `wanted` one? PayloadUUIDs
/// compare without case; an unknown version on either side (rows stored before versions
/// were kept) matches.
pub fn same_version(wanted: Option<&str>, held: Option<&str>) -> bool {
    match (wanted, held) {
        (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
        _ => true,
    }
}

/// Why a catalog change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// Bad field.
    #[error("{field}: {message}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Bad profile.
    #[error(transparent)]
    Profile(#[from] profiles::ProfileError),
    /// The same app or profile exists where this one would be seen.
    #[error("{0}")]
    Duplicate(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        field,
        message: message.into(),
    }
}

/// Adds an app.
pub fn create_app(conn: &mut DbConn, input: &NewApp, actor: &str) -> Result<App, CatalogError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "1 to 200 characters"));
    }
    if !profiles::is_reverse_dns(&input.bundle_id) {
        return Err(invalid(
            "bundle_id",
            "a bundle identifier such as com.apple.Keynote",
        ));
    }
    match (&input.adam_id, &input.manifest_url) {
        (Some(a), None) if !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) => {}
        (None, Some(u)) if u.starts_with("https://") => {}
        _ => {
            return Err(invalid(
                "adam_id",
                "give an App Store adam_id (digits) or an https manifest_url",
            ))
        }
    }
    let flags = input.management_flags.unwrap_or(1);
    if ![1, 4, 5].contains(&flags) {
        return Err(invalid(
            "management_flags",
            "1, 4 or 5 (application.install.yaml)",
        ));
    }
    let at = now();
    let app = App {
        id: new_id(),
        tenant_id: input.tenant_id.clone(),
        name: name.to_owned(),
        bundle_id: input.bundle_id.clone(),
        adam_id: input.adam_id.clone(),
        manifest_url: input.manifest_url.clone(),
        management_flags: flags,
        removable: input.removable.unwrap_or(true),
        configuration: input
            .configuration
            .as_ref()
            .map(|c| serde_json::Value::Object(c.clone()).to_string()),
        licensed: input.licensed.unwrap_or(input.adam_id.is_some()),
        created_at: at,
        updated_at: at,
    };
    conn.write_tx(|conn| {
        one_at_a_time(conn, &app.bundle_id)?;
        refuse_duplicate_app(conn, app.tenant_id.as_deref(), &app.bundle_id, None)?;
        diesel::insert_into(apps::table)
            .values(&app)
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "app")
                .object(&app.id)
                .scope(app.tenant_id.as_deref(), None)
                .summary(serde_json::json!({"after": {"name": app.name, "bundle_id": app.bundle_id, "adam_id": app.adam_id, "licensed": app.licensed}})),
        )?;
        Ok(app.clone())
    })
}

/// Filters of the catalog lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogFilter {
    /// Only this authority's items (and the district's).
    pub tenant_id: Option<String>,
    /// Free text in the name or identifier.
    pub q: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of apps: the district's, and (with `scope`) only those of that authority;
/// without `scope`, all.
pub fn list_apps(
    conn: &mut DbConn,
    scope: Option<&(String, Option<String>)>,
    f: &CatalogFilter,
    limit: i64,
) -> QueryResult<crate::paging::Page<App>> {
    let mut q = apps::table
        .filter(apps::deleted_at.is_null())
        .select(App::as_select())
        .order(apps::id.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some((t, _)) = scope {
        q = q.filter(apps::tenant_id.eq(t.clone()).or(apps::tenant_id.is_null()));
    }
    if let Some(t) = &f.tenant_id {
        q = q.filter(apps::tenant_id.eq(t.clone()).or(apps::tenant_id.is_null()));
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", crate::paging::like_escape(&text.to_lowercase()));
        q = q.filter(
            crate::db::lower(apps::name.nullable())
                .like(pattern.clone())
                .escape('\\')
                .or(crate::db::lower(apps::bundle_id.nullable())
                    .like(pattern)
                    .escape('\\')),
        );
    }
    if let Some(after) = &f.cursor {
        q = q.filter(apps::id.gt(after.clone()));
    }
    Ok(crate::paging::Page::from_rows(q.load(conn)?, limit, |a| {
        a.id.clone()
    }))
}

/// One app (not deleted).
pub fn app(conn: &mut DbConn, id: &str) -> QueryResult<Option<App>> {
    apps::table
        .find(id)
        .filter(apps::deleted_at.is_null())
        .select(App::as_select())
        .first(conn)
        .optional()
}

/// A profile to store: where it belongs and what it is.
#[derive(Debug, Clone, Copy)]
pub struct NewProfile<'a> {
    /// Authority (none: district-wide).
    pub tenant_id: Option<&'a str>,
    /// School it was rendered for.
    pub school_id: Option<&'a str>,
    /// Display name (empty: the profile's own).
    pub name: &'a str,
    /// The unsigned profile (XML or binary plist).
    pub payload: &'a [u8],
    /// Template it was rendered from.
    pub template: Option<&'a str>,
}

/// Stores a validated profile, its payload sealed to its row.
pub fn create_profile(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    new: NewProfile<'_>,
    actor: &str,
) -> Result<Profile, CatalogError> {
    let NewProfile {
        tenant_id,
        school_id,
        name,
        payload,
        template,
    } = new;
    let info = profiles::validate_profile(payload)?;
    let name = if name.trim().is_empty() {
        info.display_name
            .clone()
            .unwrap_or_else(|| info.identifier.clone())
    } else {
        name.trim().to_owned()
    };
    let at = now();
    // Profiles may carry credentials (Wi-Fi passwords): stored sealed to their row.
    let id = new_id();
    let sealed = secrets
        .seal_for(
            &crate::secrets::binding(crate::secrets::places::PROFILE, &id),
            payload,
        )
        .map_err(|e| CatalogError::Invalid {
            field: "payload",
            message: e.to_string(),
        })?;
    let profile = Profile {
        id,
        tenant_id: tenant_id.map(str::to_owned),
        school_id: school_id.map(str::to_owned),
        name,
        identifier: info.identifier.clone(),
        payload: sealed,
        template: template.map(str::to_owned),
        payload_types: info.payload_types.join(","),
        created_at: at,
        updated_at: at,
        payload_uuid: Some(info.uuid.hyphenated().to_string().to_uppercase()),
    };
    conn.write_tx(|conn| {
        one_at_a_time(conn, &profile.identifier)?;
        refuse_duplicate_profile(conn, tenant_id, school_id, &profile.identifier, None)?;
        diesel::insert_into(profiles_t::table)
            .values(&profile)
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "profile")
                .object(&profile.id)
                .scope(tenant_id, school_id)
                .summary(serde_json::json!({"after": {"name": profile.name, "identifier": profile.identifier, "template": template, "payload_types": info.payload_types, "warnings": info.warnings}})),
        )?;
        Ok(profile.clone())
    })
}

/// One page of profiles: the district's, and (with `scope`) only those of that
/// authority and, for a school's people, of that school; without `scope`, all.
pub fn list_profiles(
    conn: &mut DbConn,
    scope: Option<&(String, Option<String>)>,
    f: &CatalogFilter,
    limit: i64,
) -> QueryResult<crate::paging::Page<Profile>> {
    let mut q = profiles_t::table
        .filter(profiles_t::deleted_at.is_null())
        .select(Profile::as_select())
        .order(profiles_t::id.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some((t, school)) = scope {
        q = q.filter(
            profiles_t::tenant_id
                .eq(t.clone())
                .or(profiles_t::tenant_id.is_null()),
        );
        if let Some(s) = school {
            q = q.filter(
                profiles_t::school_id
                    .eq(s.clone())
                    .or(profiles_t::school_id.is_null()),
            );
        }
    }
    if let Some(t) = &f.tenant_id {
        q = q.filter(
            profiles_t::tenant_id
                .eq(t.clone())
                .or(profiles_t::tenant_id.is_null()),
        );
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", crate::paging::like_escape(&text.to_lowercase()));
        q = q.filter(
            crate::db::lower(profiles_t::name.nullable())
                .like(pattern.clone())
                .escape('\\')
                .or(crate::db::lower(profiles_t::identifier.nullable())
                    .like(pattern)
                    .escape('\\')),
        );
    }
    if let Some(after) = &f.cursor {
        q = q.filter(profiles_t::id.gt(after.clone()));
    }
    Ok(crate::paging::Page::from_rows(q.load(conn)?, limit, |p| {
        p.id.clone()
    }))
}

/// One profile (not deleted).
pub fn profile(conn: &mut DbConn, id: &str) -> QueryResult<Option<Profile>> {
    profiles_t::table
        .find(id)
        .filter(profiles_t::deleted_at.is_null())
        .select(Profile::as_select())
        .first(conn)
        .optional()
}

/// Serialises creations of one bundle id or identifier on PostgreSQL (a transaction
/// lock, released at commit), so two concurrent adds cannot both pass the duplicate check;
/// SQLite's writes are serial anyway. The overlap rule is no unique index's to keep.
fn one_at_a_time(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    if matches!(conn, DbConn::Pg(_)) {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(key)
            .execute(conn)?;
    }
    Ok(())
}

/// Two scopes overlap when someone sees both: the same place, or one of them is wider
/// (district-wide, authority-wide).
fn overlaps(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// 409 when a live app with this bundle id is seen where `tenant_id`'s would be: two
/// indistinguishable "Keynote" in one catalog.
fn refuse_duplicate_app(
    conn: &mut DbConn,
    tenant_id: Option<&str>,
    bundle_id: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    let same: Vec<(String, Option<String>, String)> = apps::table
        .filter(apps::bundle_id.eq(bundle_id))
        .filter(apps::deleted_at.is_null())
        .select((apps::id, apps::tenant_id, apps::name))
        .load(conn)?;
    match same
        .into_iter()
        .find(|(id, t, _)| Some(id.as_str()) != except && overlaps(t.as_deref(), tenant_id))
    {
        Some((id, t, name)) => Err(CatalogError::Duplicate(format!(
            "bundle_id: {bundle_id} is already in the catalog as \"{name}\" ({id}, {}); change or delete that app instead",
            t.map_or("district-wide".to_owned(), |t| format!("authority {t}"))
        ))),
        None => Ok(()),
    }
}

/// 409 when a live profile with this identifier is seen where this one would be (an
/// iPad holds one profile per identifier; a second one would replace the first).
fn refuse_duplicate_profile(
    conn: &mut DbConn,
    tenant_id: Option<&str>,
    school_id: Option<&str>,
    identifier: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    type Row = (String, Option<String>, Option<String>, String);
    let same: Vec<Row> = profiles_t::table
        .filter(profiles_t::identifier.eq(identifier))
        .filter(profiles_t::deleted_at.is_null())
        .select((
            profiles_t::id,
            profiles_t::tenant_id,
            profiles_t::school_id,
            profiles_t::name,
        ))
        .load(conn)?;
    match same.into_iter().find(|(id, t, s, _)| {
        Some(id.as_str()) != except
            && overlaps(t.as_deref(), tenant_id)
            && overlaps(s.as_deref(), school_id)
    }) {
        Some((id, _, _, name)) => Err(CatalogError::Duplicate(format!(
            "identifier: {identifier} is already in the catalog as \"{name}\" ({id}); a new version of a profile replaces its content (PATCH /api/v1/profiles/{id})"
        ))),
        None => Ok(()),
    }
}

/// A change to an app: only what does not change what is installed. Another bundle,
/// App Store id, flags or configuration is another app: add it and move the assignments.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    /// Display name.
    pub name: Option<String>,
    /// Needs an Apps and Books licence.
    pub licensed: Option<bool>,
}

/// Changes an app's name or licence need; the audit entry holds before and after.
pub fn update_app(
    conn: &mut DbConn,
    before: &App,
    patch: &AppPatch,
    actor: &str,
) -> Result<App, CatalogError> {
    let mut after = before.clone();
    if let Some(name) = &patch.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name", "1 to 200 characters"));
        }
        after.name = name.to_owned();
    }
    if let Some(licensed) = patch.licensed {
        if licensed && after.adam_id.is_none() {
            return Err(invalid(
                "licensed",
                "only App Store apps (with an adam_id) take licences",
            ));
        }
        after.licensed = licensed;
    }
    if (&after.name, after.licensed) == (&before.name, before.licensed) {
        return Ok(after);
    }
    after.updated_at = now();
    conn.write_tx(|conn| {
        let changed = diesel::update(
            apps::table
                .find(&before.id)
                .filter(apps::deleted_at.is_null()),
        )
        .set((
            apps::name.eq(&after.name),
            apps::licensed.eq(after.licensed),
            apps::updated_at.eq(after.updated_at),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(CatalogError::Db(diesel::result::Error::NotFound));
        }
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "app")
                .object(&before.id)
                .scope(before.tenant_id.as_deref(), None)
                .summary(serde_json::json!({
                    "before": {"name": before.name, "licensed": before.licensed},
                    "after": {"name": after.name, "licensed": after.licensed},
                })),
        )?;
        Ok(after.clone())
    })
}

/// What deleting a catalog item did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The item.
    pub id: String,
    /// Its assignments, deleted with it (the reconciler removes the item from iPads
    /// where nothing else wants it).
    pub assignments_deleted: usize,
}

/// Deletes an app or profile softly, with its assignments, in one transaction.
fn delete_item(
    conn: &mut DbConn,
    kind: &str,
    id: &str,
    scope: (Option<&str>, Option<&str>),
    summary: serde_json::Value,
    actor: &str,
) -> QueryResult<Deleted> {
    use crate::db::schema::{approved_apps, assignments};
    conn.write_tx(|conn| {
        let at = now();
        let deleted = match kind {
            "app" => {
                // Off every school's list of apps teachers get without asking.
                diesel::delete(approved_apps::table.filter(approved_apps::app_id.eq(id)))
                    .execute(conn)?;
                diesel::update(apps::table.find(id).filter(apps::deleted_at.is_null()))
                    .set((apps::deleted_at.eq(at), apps::updated_at.eq(at)))
                    .execute(conn)?
            }
            _ => diesel::update(profiles_t::table.find(id).filter(profiles_t::deleted_at.is_null()))
                .set((profiles_t::deleted_at.eq(at), profiles_t::updated_at.eq(at)))
                .execute(conn)?,
        };
        if deleted == 0 {
            // Deleted meanwhile by someone else.
            return Err(diesel::result::Error::NotFound);
        }
        let assignments_deleted = diesel::update(
            assignments::table
                .filter(assignments::item_kind.eq(kind))
                .filter(assignments::item_id.eq(id))
                .filter(assignments::deleted_at.is_null()),
        )
        .set((
            assignments::deleted_at.eq(at),
            assignments::updated_at.eq(at),
        ))
        .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", kind)
                .object(id)
                .scope(scope.0, scope.1)
                .summary(serde_json::json!({"before": summary, "assignments_deleted": assignments_deleted})),
        )?;
        Ok(Deleted {
            id: id.to_owned(),
            assignments_deleted,
        })
    })
}

/// Deletes an app and its assignments.
pub fn delete_app(conn: &mut DbConn, app: &App, actor: &str) -> QueryResult<Deleted> {
    delete_item(
        conn,
        "app",
        &app.id,
        (app.tenant_id.as_deref(), None),
        serde_json::json!({"name": app.name, "bundle_id": app.bundle_id, "adam_id": app.adam_id}),
        actor,
    )
}

/// Deletes a profile and its assignments.
pub fn delete_profile(conn: &mut DbConn, p: &Profile, actor: &str) -> QueryResult<Deleted> {
    delete_item(
        conn,
        "profile",
        &p.id,
        (p.tenant_id.as_deref(), p.school_id.as_deref()),
        serde_json::json!({"name": p.name, "identifier": p.identifier, "version": p.payload_uuid}),
        actor,
    )
}

/// A new name and/or new content for a profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileChange<'a> {
    /// Display name.
    pub name: Option<&'a str>,
    /// New content (XML or binary plist), with the same PayloadIdentifier.
    pub payload: Option<&'a [u8]>,
    /// The content is the profile's template rendered anew (it stays a template profile).
    pub rendered: bool,
}

/// Renames a profile and/or gives it new content: a new version. New content keeps
/// the identifier (another identifier is another profile) and gets a new outer
/// PayloadUUID when its author kept the old one, so every iPad holding the old
/// version is given the new one at its next connect. Same content: no new version.
pub fn update_profile(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    before: &Profile,
    change: ProfileChange<'_>,
    actor: &str,
) -> Result<Profile, CatalogError> {
    let mut after = before.clone();
    if let Some(name) = change.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name", "1 to 200 characters"));
        }
        after.name = name.to_owned();
    }
    let binding = crate::secrets::binding(crate::secrets::places::PROFILE, &before.id);
    if let Some(payload) = change.payload {
        let info = profiles::validate_profile(payload)?;
        if info.identifier != before.identifier {
            return Err(invalid(
                "payload",
                format!(
                    "its PayloadIdentifier is {}, this profile's is {}: another identifier is another profile (upload it as one)",
                    info.identifier, before.identifier
                ),
            ));
        }
        let stored =
            secrets
                .open_for(&binding, &before.payload)
                .map_err(|e| CatalogError::Invalid {
                    field: "payload",
                    message: format!("the stored version cannot be read: {e}"),
                })?;
        let old_uuid = before.payload_uuid.as_deref().unwrap_or("");
        let new_uuid = info.uuid.hyphenated().to_string().to_uppercase();
        let content = if profiles::same_content(&stored, payload)? {
            None
        } else if new_uuid.eq_ignore_ascii_case(old_uuid) {
            let fresh = uuid::Uuid::new_v4();
            Some((
                profiles::with_payload_uuid(payload, &fresh)?,
                fresh.hyphenated().to_string().to_uppercase(),
            ))
        } else {
            Some((payload.to_vec(), new_uuid))
        };
        if let Some((bytes, uuid)) = content {
            after.payload =
                secrets
                    .seal_for(&binding, &bytes)
                    .map_err(|e| CatalogError::Invalid {
                        field: "payload",
                        message: e.to_string(),
                    })?;
            after.payload_types = info.payload_types.join(",");
            after.payload_uuid = Some(uuid);
            // Content given as a file is no longer the template's rendering.
            if !change.rendered {
                after.template = None;
            }
        }
    }
    if after.name == before.name && after.payload_uuid == before.payload_uuid {
        return Ok(after);
    }
    after.updated_at = now();
    conn.write_tx(|conn| {
        let changed = diesel::update(
            profiles_t::table
                .find(&before.id)
                .filter(profiles_t::deleted_at.is_null()),
        )
        .set((
            profiles_t::name.eq(&after.name),
            profiles_t::payload.eq(&after.payload),
            profiles_t::payload_types.eq(&after.payload_types),
            profiles_t::payload_uuid.eq(&after.payload_uuid),
            profiles_t::template.eq(&after.template),
            profiles_t::updated_at.eq(after.updated_at),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(CatalogError::Db(diesel::result::Error::NotFound));
        }
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "profile")
                .object(&before.id)
                .scope(before.tenant_id.as_deref(), before.school_id.as_deref())
                .summary(serde_json::json!({
                    "before": {"name": before.name, "version": before.payload_uuid},
                    "after": {"name": after.name, "version": after.payload_uuid},
                })),
        )?;
        Ok(after.clone())
    })
}
