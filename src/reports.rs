//! The service desk's ready-made reports: installs that failed, iPads waiting for a
//! licence, and the certificates and tokens about to end. Each is scoped like the
//! device list (an authority admin sees their authority, a school admin their school)
//! and paged with a cursor; the report of iPads not seen for a while is the device list
//! itself with its `last_seen_before` filter.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::accounts::ListScope;
use crate::db::schema::{
    ade_tokens, apps, command_queue, commands, devices, push_certificates, schools, tenants,
    vpp_tokens,
};
use crate::db::DbConn;
use crate::queue::QueueState;

/// Longest look-back or look-ahead of a report, in days.
pub const MAX_DAYS: i64 = 3650;

/// The device a report row is about.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceRef {
    /// Device id.
    pub id: String,
    /// UDID (once the iPad has enrolled).
    pub udid: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// School id.
    pub school_id: Option<String>,
    /// School name.
    pub school: Option<String>,
}

/// An install the iPad answered with an error, and nothing installed it since.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedInstall {
    /// The iPad.
    pub device: DeviceRef,
    /// `app:<bundle id>` or `profile:<identifier>`.
    pub item: String,
    /// Apple's RequestType of the failed command.
    pub request_type: String,
    /// The failed command.
    pub command_uuid: String,
    /// When the iPad answered.
    pub failed_at: Option<DateTime<Utc>>,
    /// The iPad's words (the first description of Apple's error chain).
    pub error: Option<String>,
}

/// An iPad that needs a licence it has not got.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MissingLicence {
    /// The iPad.
    pub device: DeviceRef,
    /// App Store id.
    pub adam_id: String,
    /// App name in the catalog.
    pub app: Option<String>,
    /// Since when the app is wanted.
    pub needed_from: DateTime<Utc>,
    /// `no licence` or Apple's error.
    pub reason: String,
}

/// What ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndingKind {
    /// An authority's APNs push certificate: without it no iPad hears of a change.
    PushCertificate,
    /// An Apps and Books content token (a location's licences).
    ContentToken,
    /// An Apple School Manager server token (new iPads get no enrollment profile).
    AdeToken,
    /// One of tafel's own certificates (district admins only).
    TafelCertificate,
}

impl EndingKind {
    /// The word in the export.
    pub fn german(self) -> &'static str {
        match self {
            EndingKind::PushCertificate => "Push-Zertifikat",
            EndingKind::ContentToken => "Apps-und-Bücher-Token",
            EndingKind::AdeToken => "Apple-School-Manager-Token",
            EndingKind::TafelCertificate => "tafel-Zertifikat",
        }
    }
}

/// A certificate or token ending within the report's days (or already ended).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ending {
    /// What it is.
    pub kind: EndingKind,
    /// Its row (authority id, token id or certificate name).
    pub id: String,
    /// School authority, where it belongs to one.
    pub tenant_id: Option<String>,
    /// Authority name, location or certificate name.
    pub name: String,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// Whole days left (negative: ended).
    pub days_left: i64,
}

/// The authority whose certificates and tokens `scope` sees (`None`: every one).
fn scope_tenant(conn: &mut DbConn, scope: ListScope<'_>) -> QueryResult<Option<String>> {
    Ok(match scope {
        ListScope::Everything => None,
        ListScope::Authority(t) => Some(t.to_owned()),
        ListScope::School(s) | ListScope::Teacher { school: s, .. } => Some(
            schools::table
                .find(s)
                .select(schools::tenant_id)
                .first(conn)
                .optional()?
                .unwrap_or_else(|| "-".into()),
        ),
    })
}

/// Certificates and tokens of `scope` ending before `now + days`, soonest first.
/// The scope's authority: a school admin sees their authority's push certificate and
/// tokens (their iPads depend on them), read-only.
pub fn ending(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    now: DateTime<Utc>,
    days: i64,
) -> QueryResult<Vec<Ending>> {
    let tenant = scope_tenant(conn, scope)?;
    let soon = (now + chrono::Duration::days(days)).naive_utc();
    let mut out = Vec::new();
    let mut push = push_certificates::table
        .inner_join(tenants::table.on(tenants::id.eq(push_certificates::tenant_id)))
        .filter(push_certificates::not_after.lt(soon))
        .select((tenants::id, tenants::name, push_certificates::not_after))
        .into_boxed();
    if let Some(t) = &tenant {
        push = push.filter(push_certificates::tenant_id.eq(t.clone()));
    }
    for (id, name, at) in push.load::<(String, String, NaiveDateTime)>(conn)? {
        out.push(ending_row(
            EndingKind::PushCertificate,
            id.clone(),
            Some(id),
            name,
            at,
            now,
        ));
    }
    let mut vpp = vpp_tokens::table
        .filter(vpp_tokens::expires_at.lt(soon))
        .select((
            vpp_tokens::id,
            vpp_tokens::tenant_id,
            vpp_tokens::location_name,
            vpp_tokens::expires_at,
        ))
        .into_boxed();
    if let Some(t) = &tenant {
        vpp = vpp.filter(vpp_tokens::tenant_id.eq(t.clone()));
    }
    for (id, t, name, at) in vpp.load::<(String, String, String, NaiveDateTime)>(conn)? {
        out.push(ending_row(
            EndingKind::ContentToken,
            id,
            Some(t),
            name,
            at,
            now,
        ));
    }
    let mut ade = ade_tokens::table
        .filter(ade_tokens::expires_at.lt(soon))
        .select((
            ade_tokens::id,
            ade_tokens::tenant_id,
            ade_tokens::server_name,
            ade_tokens::expires_at,
        ))
        .into_boxed();
    if let Some(t) = &tenant {
        ade = ade.filter(ade_tokens::tenant_id.eq(t.clone()));
    }
    for (id, t, name, at) in
        ade.load::<(String, String, Option<String>, Option<NaiveDateTime>)>(conn)?
    {
        if let Some(at) = at {
            let name = name.unwrap_or_else(|| id.clone());
            out.push(ending_row(EndingKind::AdeToken, id, Some(t), name, at, now));
        }
    }
    Ok(out)
}

fn ending_row(
    kind: EndingKind,
    id: String,
    tenant_id: Option<String>,
    name: String,
    at: NaiveDateTime,
    now: DateTime<Utc>,
) -> Ending {
    let ends_at = at.and_utc();
    Ending {
        kind,
        id,
        tenant_id,
        name,
        ends_at,
        days_left: (ends_at - now).num_seconds().div_euclid(86_400),
    }
}

/// tafel's own certificates ending before `now + days`, as report rows.
pub fn tafel_certificates(
    certs: &[crate::pki::lifecycle::CertificateStatus],
    days: i64,
) -> Vec<Ending> {
    certs
        .iter()
        .filter(|c| c.days_left < days)
        .map(|c| Ending {
            kind: EndingKind::TafelCertificate,
            id: c.name.clone(),
            tenant_id: None,
            name: c.name.clone(),
            ends_at: c.not_after,
            days_left: c.days_left,
        })
        .collect()
}

/// A device as loaded for [`DeviceRef`]: id, UDID, serial, name, school id, school.
type RefRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Devices (by id) in `scope`, with their school's name; the ones outside are absent.
fn device_refs(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    ids: &[String],
) -> QueryResult<HashMap<String, DeviceRef>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<RefRow> = crate::devices::scoped(devices::table.into_boxed(), scope)
            .filter(devices::id.eq_any(chunk))
            .left_join(schools::table.on(devices::school_id.eq(schools::id.nullable())))
            .select((
                devices::id,
                devices::udid,
                devices::serial_number,
                devices::name,
                devices::school_id,
                schools::name.nullable(),
            ))
            .load(conn)?;
        for (id, udid, serial_number, name, school_id, school) in rows {
            out.insert(
                id.clone(),
                DeviceRef {
                    id,
                    udid,
                    serial_number,
                    name,
                    school_id,
                    school,
                },
            );
        }
    }
    Ok(out)
}

/// The devices of `blocked` (waiting for a licence) that `scope` may see.
pub fn visible_blocked(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    blocked: Vec<crate::licences::Blocked>,
) -> QueryResult<Vec<crate::licences::Blocked>> {
    if matches!(scope, ListScope::Everything) {
        return Ok(blocked);
    }
    let ids: Vec<String> = blocked.iter().map(|b| b.device_id.clone()).collect();
    let refs = device_refs(conn, scope, &ids)?;
    Ok(blocked
        .into_iter()
        .filter(|b| refs.contains_key(&b.device_id))
        .collect())
}

/// A failed install row as loaded: device, command, item, request type, answered, chain.
type FailedRow = (
    String,
    String,
    Option<String>,
    String,
    Option<NaiveDateTime>,
    Option<String>,
);

/// Installs (apps and profiles tafel sent) that an iPad of `scope`, limited to
/// `school_id` where given, answered with an error at or after `since`, and that no
/// later install of the same item on that iPad has fixed: one page in the order of
/// device and command, from `cursor` (`<device id> <command uuid>`) on.
pub fn failed_installs(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    school_id: Option<&str>,
    since: DateTime<Utc>,
    limit: i64,
    cursor: Option<&str>,
) -> QueryResult<crate::paging::Page<FailedInstall>> {
    let since = since.naive_utc();
    let failed = [QueueState::Error, QueueState::CommandFormatError];
    let mut after: Option<(String, String)> = cursor.and_then(|c| {
        let (d, u) = c.split_once(' ')?;
        Some((d.to_owned(), u.to_owned()))
    });
    let want = usize::try_from(limit).unwrap_or(0) + 1;
    let mut found: Vec<FailedRow> = Vec::new();
    // Superseded failures are dropped after loading, so load until the page is full.
    loop {
        let mut q = command_queue::table
            .inner_join(commands::table)
            .inner_join(devices::table.on(devices::id.eq(command_queue::device_id)))
            .filter(command_queue::status.eq_any(failed))
            .filter(command_queue::answered_at.ge(since))
            .filter(commands::item_key.is_not_null())
            .filter(commands::request_type.eq_any(["InstallApplication", "InstallProfile"]))
            .select((
                command_queue::device_id,
                command_queue::command_uuid,
                commands::item_key,
                commands::request_type,
                command_queue::answered_at,
                command_queue::error_chain,
            ))
            .order((command_queue::device_id, command_queue::command_uuid))
            .limit(want as i64 * 2)
            .into_boxed();
        q = match scope {
            ListScope::Everything => q,
            ListScope::Authority(t) => q.filter(devices::tenant_id.eq(t.to_owned())),
            // Reports are admin work (teachers are refused before): the school's iPads.
            ListScope::School(s) | ListScope::Teacher { school: s, .. } => {
                q.filter(devices::school_id.eq(s.to_owned()))
            }
        };
        if let Some(s) = school_id {
            q = q.filter(devices::school_id.eq(s.to_owned()));
        }
        if let Some((d, u)) = &after {
            q = q.filter(
                command_queue::device_id
                    .gt(d.clone())
                    .or(command_queue::device_id
                        .eq(d.clone())
                        .and(command_queue::command_uuid.gt(u.clone()))),
            );
        }
        let rows: Vec<FailedRow> = q.load(conn)?;
        let exhausted = rows.len() < want * 2;
        after = rows.last().map(|r| (r.0.clone(), r.1.clone()));
        for row in rows {
            if !superseded(conn, &row)? {
                found.push(row);
            }
            if found.len() >= want {
                break;
            }
        }
        if exhausted || found.len() >= want {
            break;
        }
    }
    let page = crate::paging::Page::from_rows(found, limit, |r| format!("{} {}", r.0, r.1));
    let ids: Vec<String> = page.items.iter().map(|r| r.0.clone()).collect();
    let refs = device_refs(conn, scope, &ids)?;
    page.try_map(|rows| {
        Ok(rows
            .into_iter()
            .filter_map(|(device_id, uuid, item, request_type, at, chain)| {
                Some(FailedInstall {
                    device: refs.get(&device_id)?.clone(),
                    item: item.unwrap_or_default(),
                    request_type,
                    command_uuid: uuid,
                    failed_at: at.map(|t| t.and_utc()),
                    error: chain.as_deref().and_then(first_description),
                })
            })
            .collect())
    })
}

/// Whether a later install of the same item on the same iPad was acknowledged.
fn superseded(conn: &mut DbConn, row: &FailedRow) -> QueryResult<bool> {
    let (device_id, _, item, _, at, _) = row;
    let Some(at) = at else { return Ok(false) };
    let later: i64 = command_queue::table
        .inner_join(commands::table)
        .filter(command_queue::device_id.eq(device_id))
        .filter(commands::item_key.eq(item.clone()))
        .filter(command_queue::status.eq(QueueState::Acknowledged))
        .filter(command_queue::answered_at.gt(*at))
        .count()
        .get_result(conn)?;
    Ok(later > 0)
}

/// The first human description in Apple's error chain (stored as JSON).
fn first_description(chain: &str) -> Option<String> {
    let items: Vec<crate::protocol::ErrorChainItem> = serde_json::from_str(chain).ok()?;
    items.into_iter().find_map(|e| {
        e.localized_description
            .or(e.us_english_description)
            .or_else(|| Some(format!("{} {}", e.error_domain, e.error_code)))
    })
}

/// The iPads of `scope` (limited to `school_id`) that wait for a licence, from the
/// licence service's last pass (`blocked`), in the order of device and app: one page
/// from `cursor` (`<device id> <adam id>`) on.
pub fn missing_licences(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    school_id: Option<&str>,
    blocked: &[crate::licences::Blocked],
    limit: i64,
    cursor: Option<&str>,
) -> QueryResult<crate::paging::Page<MissingLicence>> {
    let ids: Vec<String> = blocked.iter().map(|b| b.device_id.clone()).collect();
    let refs = device_refs(conn, scope, &ids)?;
    let mut rows: Vec<&crate::licences::Blocked> = blocked
        .iter()
        .filter(|b| {
            refs.get(&b.device_id)
                .is_some_and(|d| school_id.is_none_or(|s| d.school_id.as_deref() == Some(s)))
        })
        .collect();
    rows.sort_by(|a, b| (&a.device_id, &a.adam_id).cmp(&(&b.device_id, &b.adam_id)));
    rows.dedup_by(|a, b| a.device_id == b.device_id && a.adam_id == b.adam_id);
    if let Some((d, a)) = cursor.and_then(|c| c.split_once(' ')) {
        rows.retain(|b| (b.device_id.as_str(), b.adam_id.as_str()) > (d, a));
    }
    rows.truncate(usize::try_from(limit).unwrap_or(0) + 1);
    let adams: Vec<String> = rows.iter().map(|b| b.adam_id.clone()).collect();
    let names: HashMap<String, String> = apps::table
        .filter(apps::adam_id.eq_any(&adams))
        .filter(apps::deleted_at.is_null())
        .select((apps::adam_id.assume_not_null(), apps::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let page =
        crate::paging::Page::from_rows(rows, limit, |b| format!("{} {}", b.device_id, b.adam_id));
    page.try_map(|rows| {
        Ok(rows
            .into_iter()
            .filter_map(|b| {
                Some(MissingLicence {
                    device: refs.get(&b.device_id)?.clone(),
                    adam_id: b.adam_id.clone(),
                    app: names.get(&b.adam_id).cloned(),
                    needed_from: b.needed_from,
                    reason: b.reason.clone(),
                })
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_description_of_an_error_chain_is_the_ipads_word() {
        let chain = r#"[{"error_code":12064,"error_domain":"MCInstallationErrorDomain","localized_description":"Das Profil konnte nicht installiert werden.","us_english_description":"The profile could not be installed."}]"#;
        assert_eq!(
            first_description(chain).as_deref(),
            Some("Das Profil konnte nicht installiert werden.")
        );
        let english = r#"[{"error_code":1,"error_domain":"D","localized_description":null,"us_english_description":"Busy"}]"#;
        assert_eq!(first_description(english).as_deref(), Some("Busy"));
        let bare = r#"[{"error_code":7,"error_domain":"D","localized_description":null,"us_english_description":null}]"#;
        assert_eq!(first_description(bare).as_deref(), Some("D 7"));
        assert_eq!(first_description("not json"), None);
        assert_eq!(first_description("[]"), None);
    }

    #[test]
    fn days_left_round_down_and_go_negative_once_ended() {
        let now = Utc::now();
        let row = |at: DateTime<Utc>| {
            ending_row(
                EndingKind::PushCertificate,
                "t".into(),
                None,
                "t".into(),
                at.naive_utc(),
                now,
            )
        };
        assert_eq!(row(now + chrono::Duration::hours(47)).days_left, 1);
        assert_eq!(row(now - chrono::Duration::hours(1)).days_left, -1);
    }
}
