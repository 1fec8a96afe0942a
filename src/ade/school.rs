//! Where devices from Apple School Manager land, and what Setup Assistant does on them.
//!
//! Placement: a device Apple assigned to tafel lands in a school through the device CSV
//! import (most specific: it names the serial and may name class and cart) or through
//! the authority's rules: a serial list or an order number → school (and optionally
//! class and cart). The first matching rule wins, serial lists before order numbers.
//! Apple's device enrollment API carries no order numbers, so they come from the
//! device list Apple School Manager exports (CSV: serial, order number).
//!
//! Profile: one ADE profile per school (Apple's `Profile` object): always supervised
//! and mandatory; not removable, awaiting `DeviceConfigured`, language and region
//! de-DE and the Setup Assistant panes schools skip by default; each school may change
//! them. A change raises the revision: the profile is defined anew at Apple and
//! assigned again to the school's serials. The release policy lives beside it: which
//! assignments must be done before `DeviceConfigured`, and after how long a device is
//! released anyway (the gap is recorded).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::schema::{
    ade_devices, ade_profiles, ade_rules, assignments, classes, device_groups, devices,
};
use crate::db::{new_id, now, DbConn};
use crate::org::import::{self, ImportError, ImportReport, RowError};
use crate::org::{OrgError, School};

/// Every Setup Assistant skip key Apple defines (`other/skipkeys.yaml`).
pub const SKIP_KEYS: &[&str] = &[
    "Accessibility",
    "ActionButton",
    "Android",
    "Appearance",
    "AppleID",
    "AppStore",
    "Biometric",
    "CameraButton",
    "DeviceToDeviceMigration",
    "Diagnostics",
    "DisplayTone",
    "EnableLockdownMode",
    "FileVault",
    "HomeButtonSensitivity",
    "iCloudDiagnostics",
    "iCloudStorage",
    "iMessageAndFaceTime",
    "Intelligence",
    "Keyboard",
    "Location",
    "MessagingActivationUsingPhoneNumber",
    "OnBoarding",
    "Passcode",
    "Payment",
    "Privacy",
    "Restore",
    "RestoreCompleted",
    "ScreenSaver",
    "Safety",
    "ScreenTime",
    "SIMSetup",
    "Siri",
    "SoftwareUpdate",
    "SpokenLanguage",
    "TapToSetup",
    "TermsOfAddress",
    "TOS",
    "TVHomeScreenSync",
    "TVProviderSignIn",
    "TVRoom",
    "UpdateCompleted",
    "Wallpaper",
    "WatchMigration",
    "Welcome",
    "Zoom",
];

/// Panes a school iPad shows although tafel could skip them: the rest of
/// [`SKIP_KEYS`] is skipped by default (everything a pupil should not decide: Apple
/// ID, passcode, Siri, …). Location stays for the time zone; the others are not iPad
/// panes or belong to the school (App Store, accessibility).
pub const DEFAULT_SHOWN: &[&str] = &[
    "Accessibility",
    "AppStore",
    "FileVault",
    "Location",
    "ScreenSaver",
    "TVHomeScreenSync",
    "TVProviderSignIn",
    "TVRoom",
];

/// Minutes a device waits in Setup Assistant for its initial configuration by default.
pub const DEFAULT_RELEASE_TIMEOUT_MINUTES: i32 = 30;

fn default_skip() -> Vec<String> {
    SKIP_KEYS
        .iter()
        .filter(|k| !DEFAULT_SHOWN.contains(k))
        .map(|k| (*k).to_owned())
        .collect()
}
fn default_language() -> String {
    "de".into()
}
fn default_region() -> String {
    "DE".into()
}
fn yes() -> bool {
    true
}
fn default_timeout() -> i32 {
    DEFAULT_RELEASE_TIMEOUT_MINUTES
}

/// What Setup Assistant does on a school's iPads (supervised and mandatory always).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    /// Name in Apple School Manager (default: "<school> (tafel)").
    #[serde(default)]
    pub profile_name: Option<String>,
    /// Department shown during setup (default: the school's name).
    #[serde(default)]
    pub department: Option<String>,
    /// Support phone shown during setup.
    #[serde(default)]
    pub support_phone_number: Option<String>,
    /// Support e-mail shown during setup.
    #[serde(default)]
    pub support_email_address: Option<String>,
    /// Setup Assistant panes to skip (Apple's skip keys).
    #[serde(default = "default_skip")]
    pub skip_setup_items: Vec<String>,
    /// Language (ISO 639), default `de`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Region (ISO 3166), default `DE`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Whether the user may remove management (default false).
    #[serde(default)]
    pub is_mdm_removable: bool,
    /// Hold Setup Assistant until the initial configuration is done (default true).
    #[serde(default = "yes")]
    pub await_device_configured: bool,
    /// Shared iPad (default false).
    #[serde(default)]
    pub is_multi_user: bool,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings {
            profile_name: None,
            department: None,
            support_phone_number: None,
            support_email_address: None,
            skip_setup_items: default_skip(),
            language: default_language(),
            region: default_region(),
            is_mdm_removable: false,
            await_device_configured: true,
            is_multi_user: false,
        }
    }
}

/// A school's ADE settings: the profile and the release policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolAdeInput {
    /// The Setup Assistant profile.
    #[serde(default)]
    pub profile: ProfileSettings,
    /// Minutes after enrollment when a device is released even if its initial
    /// configuration is not done (1 … 1440, default 30).
    #[serde(default = "default_timeout")]
    pub release_timeout_minutes: i32,
    /// Assignments that must be done before release; absent: every assignment due.
    #[serde(default)]
    pub release_requires: Option<Vec<String>>,
}

impl Default for SchoolAdeInput {
    fn default() -> Self {
        SchoolAdeInput {
            profile: ProfileSettings::default(),
            release_timeout_minutes: DEFAULT_RELEASE_TIMEOUT_MINUTES,
            release_requires: None,
        }
    }
}

/// A school's ADE settings as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SchoolAde {
    /// School.
    pub school_id: String,
    /// Settings.
    #[serde(flatten)]
    pub settings: SchoolAdeInput,
    /// Raised on every profile change (the profile is then defined anew at Apple).
    pub revision: i32,
    /// Whether these are the defaults (nothing stored yet).
    pub default: bool,
}

fn invalid(field: &'static str, message: impl Into<String>) -> OrgError {
    OrgError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_text(field: &'static str, v: &Option<String>, max: usize) -> Result<(), OrgError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(invalid(field, "empty; leave it out instead")),
        Some(s) if s.chars().count() > max => {
            Err(invalid(field, format!("at most {max} characters")))
        }
        _ => Ok(()),
    }
}

impl SchoolAdeInput {
    fn validate(&self) -> Result<(), OrgError> {
        let p = &self.profile;
        check_text("profile.profile_name", &p.profile_name, 100)?;
        check_text("profile.department", &p.department, 100)?;
        check_text("profile.support_phone_number", &p.support_phone_number, 40)?;
        check_text(
            "profile.support_email_address",
            &p.support_email_address,
            200,
        )?;
        if let Some(mail) = &p.support_email_address {
            let ok = mail
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !mail.contains(' '));
            if !ok {
                return Err(invalid(
                    "profile.support_email_address",
                    format!("{mail:?} is not an e-mail address"),
                ));
            }
        }
        for key in &p.skip_setup_items {
            if !SKIP_KEYS.contains(&key.as_str()) {
                return Err(invalid(
                    "profile.skip_setup_items",
                    format!(
                        "{key:?} is not one of Apple's skip keys (e.g. AppleID, Passcode, Siri)"
                    ),
                ));
            }
        }
        if !(2..=3).contains(&p.language.len())
            || !p.language.chars().all(|c| c.is_ascii_lowercase())
        {
            return Err(invalid(
                "profile.language",
                "an ISO 639 code such as \"de\"",
            ));
        }
        if p.region.len() != 2 || !p.region.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid("profile.region", "an ISO 3166 code such as \"DE\""));
        }
        if !(1..=1440).contains(&self.release_timeout_minutes) {
            return Err(invalid("release_timeout_minutes", "between 1 and 1440"));
        }
        if self
            .release_requires
            .as_ref()
            .is_some_and(|r| r.len() > 200)
        {
            return Err(invalid("release_requires", "at most 200 assignments"));
        }
        Ok(())
    }
}

#[derive(Queryable)]
struct ProfileRow {
    school_id: String,
    settings: String,
    revision: i32,
    release_timeout_minutes: i32,
    release_requires: Option<String>,
}

fn from_row(r: ProfileRow) -> SchoolAde {
    let profile = serde_json::from_str(&r.settings).unwrap_or_default();
    SchoolAde {
        school_id: r.school_id,
        settings: SchoolAdeInput {
            profile,
            release_timeout_minutes: r.release_timeout_minutes,
            release_requires: r
                .release_requires
                .and_then(|s| serde_json::from_str(&s).ok()),
        },
        revision: r.revision,
        default: false,
    }
}

fn load_rows(conn: &mut DbConn, school: Option<&str>) -> QueryResult<Vec<ProfileRow>> {
    let mut q = ade_profiles::table
        .select((
            ade_profiles::school_id,
            ade_profiles::settings,
            ade_profiles::revision,
            ade_profiles::release_timeout_minutes,
            ade_profiles::release_requires,
        ))
        .into_boxed();
    if let Some(s) = school {
        q = q.filter(ade_profiles::school_id.eq(s.to_owned()));
    }
    q.load(conn)
}

/// A school's ADE settings (the defaults when it has none stored).
pub fn settings(conn: &mut DbConn, school_id: &str) -> QueryResult<SchoolAde> {
    Ok(load_rows(conn, Some(school_id))?
        .pop()
        .map(from_row)
        .unwrap_or_else(|| SchoolAde {
            school_id: school_id.to_owned(),
            settings: SchoolAdeInput::default(),
            revision: 1,
            default: true,
        }))
}

/// Stores a school's ADE settings; a profile change raises the revision.
pub fn put(
    conn: &mut DbConn,
    school: &School,
    input: &SchoolAdeInput,
    actor: &str,
) -> Result<SchoolAde, OrgError> {
    input.validate()?;
    conn.write_tx(|conn| {
        if let Some(ids) = &input.release_requires {
            let found: i64 = assignments::table
                .filter(assignments::id.eq_any(ids))
                .filter(assignments::deleted_at.is_null())
                .filter(assignments::tenant_id.eq(&school.tenant_id))
                // Only assignments that reach this school: its own, or its authority's.
                .filter(
                    assignments::school_id
                        .eq(&school.id)
                        .or(assignments::school_id.is_null()),
                )
                .count()
                .get_result(conn)?;
            let unique: HashSet<&String> = ids.iter().collect();
            if found != unique.len() as i64 {
                return Err(invalid(
                    "release_requires",
                    "every entry must be a live assignment for this school or its authority",
                ));
            }
        }
        let before = settings(conn, &school.id)?;
        // The defaults are revision 1 (they may already be defined at Apple).
        let revision = if before.settings.profile != input.profile {
            before.revision + 1
        } else {
            before.revision
        };
        let json = serde_json::to_string(&input.profile).map_err(|e| invalid("profile", e.to_string()))?;
        let requires = input
            .release_requires
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| invalid("release_requires", e.to_string()))?;
        diesel::delete(ade_profiles::table.find(&school.id)).execute(conn)?;
        diesel::insert_into(ade_profiles::table)
            .values((
                ade_profiles::school_id.eq(&school.id),
                ade_profiles::tenant_id.eq(&school.tenant_id),
                ade_profiles::settings.eq(&json),
                ade_profiles::revision.eq(revision),
                ade_profiles::release_timeout_minutes.eq(input.release_timeout_minutes),
                ade_profiles::release_requires.eq(&requires),
                ade_profiles::updated_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "update", "ade_profile")
                .object(&school.id)
                .scope(Some(&school.tenant_id), Some(&school.id))
                .summary(serde_json::json!({"before": before.settings, "after": input, "revision": revision})),
        )?;
        Ok(SchoolAde {
            school_id: school.id.clone(),
            settings: input.clone(),
            revision,
            default: false,
        })
    })
}

/// Apple's profile object for a school.
pub fn apple_profile(
    ade: &SchoolAde,
    school_name: &str,
    url: &str,
    anchor_certs: &[String],
) -> super::client::Profile {
    let p = &ade.settings.profile;
    super::client::Profile {
        profile_name: p
            .profile_name
            .clone()
            .unwrap_or_else(|| format!("{school_name} (tafel)")),
        url: Some(url.to_owned()),
        is_supervised: Some(true),
        is_mandatory: Some(true),
        is_mdm_removable: Some(p.is_mdm_removable),
        is_multi_user: Some(p.is_multi_user),
        await_device_configured: Some(p.await_device_configured),
        department: Some(
            p.department
                .clone()
                .unwrap_or_else(|| school_name.to_owned()),
        ),
        support_phone_number: p.support_phone_number.clone(),
        support_email_address: p.support_email_address.clone(),
        skip_setup_items: p.skip_setup_items.clone(),
        language: Some(p.language.clone()),
        region: Some(p.region.clone()),
        anchor_certs: anchor_certs.to_vec(),
        ..super::client::Profile::default()
    }
}

/// How long devices of a school wait, and what must be done, before release.
#[derive(Debug, Clone)]
pub struct ReleasePolicy {
    /// Release anyway after this long.
    pub timeout: chrono::Duration,
    /// Assignments that must be done; `None`: all due.
    pub requires: Option<HashSet<String>>,
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            timeout: chrono::Duration::minutes(i64::from(DEFAULT_RELEASE_TIMEOUT_MINUTES)),
            requires: None,
        }
    }
}

/// Release policies of every school that has one stored.
pub fn release_policies(conn: &mut DbConn) -> QueryResult<HashMap<String, ReleasePolicy>> {
    Ok(load_rows(conn, None)?
        .into_iter()
        .map(from_row)
        .map(|a| {
            (
                a.school_id,
                ReleasePolicy {
                    timeout: chrono::Duration::minutes(i64::from(
                        a.settings.release_timeout_minutes,
                    )),
                    requires: a.settings.release_requires.map(|r| r.into_iter().collect()),
                },
            )
        })
        .collect())
}

/// A placement rule.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = ade_rules)]
#[schema(as = AdeRule)]
pub struct Rule {
    /// Id.
    pub id: String,
    /// Authority.
    pub tenant_id: String,
    /// School devices land in.
    pub school_id: String,
    /// Class devices land in.
    pub class_id: Option<String>,
    /// Cart devices land in.
    pub group_id: Option<String>,
    /// Matches devices of this order.
    pub order_number: Option<String>,
    /// Matches these serials (stored as a JSON array; absent for an order-number rule).
    #[serde(
        serialize_with = "serials_as_list",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub serials: Option<String>,
    /// What it is for.
    pub description: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
}

impl Rule {
    /// The serial list.
    pub fn serial_list(&self) -> Vec<String> {
        parse_serials(self.serials.as_deref())
    }
}

fn parse_serials(stored: Option<&str>) -> Vec<String> {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The stored JSON array of serials as the list it is.
fn serials_as_list<S: serde::Serializer>(stored: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&parse_serials(stored.as_deref()), s)
}

/// Input for a rule: exactly one of `serials` and `order_number`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewAdeRule)]
pub struct NewRule {
    /// School devices land in.
    pub school_id: String,
    /// Class (of that school).
    #[serde(default)]
    pub class_id: Option<String>,
    /// Cart (of that school).
    #[serde(default)]
    pub group_id: Option<String>,
    /// Order number from Apple School Manager.
    #[serde(default)]
    pub order_number: Option<String>,
    /// Serial numbers.
    #[serde(default)]
    pub serials: Option<Vec<String>>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// Checks a serial number's shape (Apple's are 8–14 letters and digits).
pub fn check_serial(serial: &str) -> Result<String, OrgError> {
    let s = serial.trim().to_ascii_uppercase();
    if s.is_empty() || s.len() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "serials",
            format!("{serial:?} is not a serial number"),
        ));
    }
    Ok(s)
}

/// Creates a rule and places the authority's waiting devices it matches.
pub fn create_rule(
    conn: &mut DbConn,
    school: &School,
    input: &NewRule,
    actor: &str,
) -> Result<(Rule, usize), OrgError> {
    let serials = match (&input.serials, &input.order_number) {
        (Some(s), None) => {
            if s.is_empty() || s.len() > 10_000 {
                return Err(invalid("serials", "between 1 and 10,000 serial numbers"));
            }
            let list = s
                .iter()
                .map(|x| check_serial(x))
                .collect::<Result<Vec<_>, _>>()?;
            Some(serde_json::to_string(&list).map_err(|e| invalid("serials", e.to_string()))?)
        }
        (None, Some(o)) => {
            if o.trim().is_empty() || o.len() > 64 {
                return Err(invalid("order_number", "1 to 64 characters"));
            }
            None
        }
        _ => return Err(invalid("serials", "give either serials or order_number")),
    };
    let description = input.description.clone().unwrap_or_default();
    if description.chars().count() > 500 {
        return Err(invalid("description", "at most 500 characters"));
    }
    conn.write_tx(|conn| {
        if let Some(c) = &input.class_id {
            let n: i64 = classes::table
                .filter(classes::id.eq(c))
                .filter(classes::school_id.eq(&school.id))
                .count()
                .get_result(conn)?;
            if n == 0 {
                return Err(invalid("class_id", "no such class in this school"));
            }
        }
        if let Some(g) = &input.group_id {
            let n: i64 = device_groups::table
                .filter(device_groups::id.eq(g))
                .filter(device_groups::school_id.eq(&school.id))
                .count()
                .get_result(conn)?;
            if n == 0 {
                return Err(invalid("group_id", "no such cart in this school"));
            }
        }
        let rule = Rule {
            id: new_id(),
            tenant_id: school.tenant_id.clone(),
            school_id: school.id.clone(),
            class_id: input.class_id.clone(),
            group_id: input.group_id.clone(),
            order_number: input.order_number.as_ref().map(|o| o.trim().to_owned()),
            serials: serials.clone(),
            description: description.clone(),
            created_at: now(),
        };
        diesel::insert_into(ade_rules::table)
            .values((
                ade_rules::id.eq(&rule.id),
                ade_rules::tenant_id.eq(&rule.tenant_id),
                ade_rules::school_id.eq(&rule.school_id),
                ade_rules::class_id.eq(&rule.class_id),
                ade_rules::group_id.eq(&rule.group_id),
                ade_rules::order_number.eq(&rule.order_number),
                ade_rules::serials.eq(&rule.serials),
                ade_rules::description.eq(&rule.description),
                ade_rules::created_at.eq(rule.created_at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "ade_rule")
                .object(&rule.id)
                .scope(Some(&rule.tenant_id), Some(&rule.school_id))
                .summary(serde_json::json!({"after": {"order_number": rule.order_number, "serials": rule.serial_list().len(), "class_id": rule.class_id, "group_id": rule.group_id}})),
        )?;
        let placed = place(conn, &school.tenant_id, None)?;
        Ok((rule, placed))
    })
}

/// The authority's rules, oldest (strongest) first.
pub fn rules(conn: &mut DbConn, tenant_id: &str) -> QueryResult<Vec<Rule>> {
    ade_rules::table
        .filter(ade_rules::tenant_id.eq(tenant_id))
        .order((ade_rules::created_at.asc(), ade_rules::id.asc()))
        .select(Rule::as_select())
        .load(conn)
}

/// Deletes a rule (devices it placed stay where they are).
pub fn delete_rule(conn: &mut DbConn, rule: &Rule, actor: &str) -> QueryResult<()> {
    conn.write_tx(|conn| {
        diesel::delete(ade_rules::table.find(&rule.id)).execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "delete", "ade_rule")
                .object(&rule.id)
                .scope(Some(&rule.tenant_id), Some(&rule.school_id)),
        )
    })
}

/// Places the authority's ASM devices that have no school yet by its rules (all of
/// them, or only `serials`). Returns how many were placed.
pub fn place(conn: &mut DbConn, tenant_id: &str, serials: Option<&[String]>) -> QueryResult<usize> {
    let rules = rules(conn, tenant_id)?;
    if rules.is_empty() {
        return Ok(0);
    }
    let mut by_serial: HashMap<String, &Rule> = HashMap::new();
    let mut by_order: HashMap<&str, &Rule> = HashMap::new();
    for r in &rules {
        for s in r.serial_list() {
            by_serial.entry(s).or_insert(r);
        }
        if let Some(o) = r.order_number.as_deref() {
            by_order.entry(o).or_insert(r);
        }
    }
    let mut q = ade_devices::table
        .inner_join(
            devices::table.on(devices::serial_number
                .eq(ade_devices::serial_number.nullable())
                .and(devices::tenant_id.eq(ade_devices::tenant_id.nullable()))),
        )
        .filter(ade_devices::tenant_id.eq(tenant_id))
        .filter(ade_devices::deleted_at.is_null())
        .filter(devices::school_id.is_null())
        .select((
            devices::id,
            ade_devices::serial_number,
            ade_devices::order_number,
        ))
        .into_boxed();
    if let Some(s) = serials {
        q = q.filter(ade_devices::serial_number.eq_any(s.to_vec()));
    }
    let waiting: Vec<(String, String, Option<String>)> = q.load(conn)?;
    // Group by rule so each school/class/cart gets one batch.
    let mut batches: HashMap<&str, (&Rule, Vec<String>)> = HashMap::new();
    for (device, serial, order) in waiting {
        let rule = by_serial
            .get(&serial)
            .copied()
            .or_else(|| order.as_deref().and_then(|o| by_order.get(o).copied()));
        if let Some(r) = rule {
            batches
                .entry(r.id.as_str())
                .or_insert_with(|| (r, Vec::new()))
                .1
                .push(device);
        }
    }
    let mut placed = 0;
    for (rule, ids) in batches.into_values() {
        audit::record(
            conn,
            &audit::Entry::new("system:ade", "place", "ade_rule")
                .object(&rule.id)
                .scope(Some(&rule.tenant_id), Some(&rule.school_id))
                .summary(serde_json::json!({"devices": ids.len(), "class_id": rule.class_id, "group_id": rule.group_id})),
        )?;
        for chunk in ids.chunks(500) {
            placed += diesel::update(devices::table.filter(devices::id.eq_any(chunk)))
                .set((
                    devices::tenant_id.eq(&rule.tenant_id),
                    devices::school_id.eq(&rule.school_id),
                    devices::updated_at.eq(now()),
                ))
                .execute(conn)?;
            for m in [
                rule.class_id
                    .as_deref()
                    .map(crate::org::classes::Membership::Class),
                rule.group_id
                    .as_deref()
                    .map(crate::org::classes::Membership::Group),
            ]
            .into_iter()
            .flatten()
            {
                match crate::org::classes::add_devices(conn, &rule.school_id, m, chunk) {
                    Ok(_) => {}
                    Err(OrgError::Db(e)) => return Err(e),
                    Err(e) => {
                        tracing::warn!(rule = %rule.id, error = %e, "ADE rule names a class or cart that no longer fits")
                    }
                }
            }
        }
    }
    Ok(placed)
}

/// Records order numbers from Apple School Manager's device export (CSV with the
/// columns `serial` and `order_number`, comma or semicolon separated) and places the
/// devices they now match. All rows or none; returns the report and devices placed.
pub fn import_order_numbers(
    conn: &mut DbConn,
    tenant_id: &str,
    text: &str,
    actor: &str,
) -> Result<(ImportReport, usize), ImportError> {
    let rows = import::read_csv(text, &["serial", "order_number"], &[])?;
    conn.write_tx(|conn| {
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        for (line, row) in &rows {
            let mut bad = |message: String| report.errors.push(RowError { line: *line, message });
            let (Some(serial), Some(order)) = (import::field(row, "serial"), import::field(row, "order_number")) else {
                bad("serial and order_number are required".into());
                continue;
            };
            let Ok(serial) = check_serial(serial) else {
                bad(format!("{serial:?} is not a serial number"));
                continue;
            };
            if order.len() > 64 {
                bad("order_number: at most 64 characters".into());
                continue;
            }
            let n = diesel::update(
                ade_devices::table
                    .find(&serial)
                    .filter(ade_devices::tenant_id.eq(tenant_id)),
            )
            .set(ade_devices::order_number.eq(order))
            .execute(conn)?;
            if n == 0 {
                bad(format!("{serial} is not among this authority's devices from Apple School Manager (sync first)"));
                continue;
            }
            report.updated += 1;
        }
        if !report.errors.is_empty() {
            return Err(ImportError::Rejected(report));
        }
        let placed = place(conn, tenant_id, None)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "import", "ade_order_numbers")
                .scope(Some(tenant_id), None)
                .summary(serde_json::json!({"rows": report.rows, "updated": report.updated, "placed": placed})),
        )?;
        Ok((report, placed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_school_like() {
        let d = SchoolAdeInput::default();
        d.validate().unwrap();
        assert!(!d.profile.is_mdm_removable);
        assert!(d.profile.await_device_configured);
        assert!(DEFAULT_SHOWN.iter().all(|k| SKIP_KEYS.contains(k)));
        assert!(!d.profile.skip_setup_items.contains(&"Location".to_owned()));
        let p = apple_profile(
            &SchoolAde {
                school_id: "s".into(),
                settings: d,
                revision: 1,
                default: true,
            },
            "Gymnasium Nord",
            "https://mdm.example/mdm/ade/enroll",
            &[],
        );
        assert_eq!(p.is_supervised, Some(true));
        assert_eq!(p.is_mandatory, Some(true));
        assert_eq!(p.is_mdm_removable, Some(false));
        assert_eq!(p.department.as_deref(), Some("Gymnasium Nord"));
        assert_eq!(p.language.as_deref(), Some("de"));
        assert_eq!(p.region.as_deref(), Some("DE"));
        assert!(p.skip_setup_items.contains(&"AppleID".to_owned()));
    }

    #[test]
    fn bad_settings_name_the_field() {
        let mut i = SchoolAdeInput::default();
        i.profile.skip_setup_items.push("Nonsense".into());
        assert!(matches!(
            i.validate(),
            Err(OrgError::Invalid {
                field: "profile.skip_setup_items",
                ..
            })
        ));
        let mut i = SchoolAdeInput::default();
        i.profile.support_email_address = Some("helpdesk".into());
        assert!(matches!(
            i.validate(),
            Err(OrgError::Invalid {
                field: "profile.support_email_address",
                ..
            })
        ));
        let i = SchoolAdeInput {
            release_timeout_minutes: 0,
            ..SchoolAdeInput::default()
        };
        assert!(matches!(
            i.validate(),
            Err(OrgError::Invalid {
                field: "release_timeout_minutes",
                ..
            })
        ));
        let mut i = SchoolAdeInput::default();
        i.profile.region = "de".into();
        assert!(matches!(
            i.validate(),
            Err(OrgError::Invalid {
                field: "profile.region",
                ..
            })
        ));
        assert!(check_serial("dmp-1").is_err());
        assert_eq!(check_serial(" dmpx12ab ").unwrap(), "DMPX12AB");
    }
}
