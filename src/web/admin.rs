//! The admins' pages (district, authority and school admins): overview, devices, schools
//! with their enrollment links as QR codes, lesson requests to decide, assignments.

use actix_web::{web, HttpRequest};
use askama::Template;
use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;

pub(super) use super::here;
use super::i18n::{Tr, BERLIN};
use super::session::Viewer;
use super::{field, fields, render, see_other, Chrome, OrPage, PageResult, WebError};
use crate::api::auth::Caller;
use crate::api::authz::{self, Action, Place};
use crate::assign::ItemKind;
use crate::assign::TargetKind;
use crate::db::DbConn;
use crate::devices::{self, DeviceFilter};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Devices per page of the list.
const PAGE: i64 = 50;

/// Routes under `/admin`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(overview))
        .route("/geraete", web::get().to(device_list))
        .route("/geraete/{key}", web::get().to(device_page))
        .route("/geraete/{key}/aktion", web::post().to(device_action))
        .route("/schulen", web::get().to(school_list))
        .route("/schulen/{id}", web::get().to(school_page))
        .route("/schulen/{id}/links", web::post().to(create_link))
        .route("/schulen/{id}/druck", web::get().to(print_sheet))
        .route("/schulen/{id}/ferien", web::post().to(upload_closures))
        .route(
            "/schultraeger/{id}/ferien",
            web::post().to(upload_authority_closures),
        )
        .route("/antraege", web::get().to(requests))
        .route("/antraege/{id}/genehmigen", web::post().to(approve))
        .route("/antraege/{id}/ablehnen", web::post().to(reject))
        .route("/zuweisungen", web::get().to(assignments))
        .route("/zuweisungen/neu", web::get().to(new_assignment))
        .route("/zuweisungen", web::post().to(create_assignment))
        .route("/protokoll", web::get().to(audit_log));
}

/// Teachers have no admin pages: theirs are under `/unterricht`.
pub(super) fn admin_only(v: &Viewer) -> Result<(), WebError> {
    authz::require_admin(&v.p, "use the lesson pages").or_page(v.tr)
}

/// Runs `f` on a connection; the API's errors become the page's.
pub(super) async fn with_db<T: Send + 'static>(
    state: &AppState,
    t: Tr,
    f: impl FnOnce(&mut DbConn) -> ApiResult<T> + Send + 'static,
) -> Result<T, WebError> {
    state.db.run(f).await.or_page(t)
}

// ---------------------------------------------------------------------------------------
// Overview

/// A figure of the overview with the list it links to.
pub struct Figure {
    /// What it counts.
    pub label: String,
    /// The number.
    pub value: i64,
    /// Where the devices or items are listed.
    pub href: String,
    /// Something to act on (shown as a warning when not zero).
    pub warn: bool,
}

/// Something expiring.
pub struct Expiring {
    /// What.
    pub what: String,
    /// When (formatted).
    pub when: String,
    /// Days left (negative: expired).
    pub days: i64,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    t: Tr,
    chrome: Option<Chrome>,
    figures: Vec<Figure>,
    shortages: Vec<String>,
    expiring: Vec<Expiring>,
}

/// `GET /admin`: what needs attention in the admin's scope.
async fn overview(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let p = v.p.clone();
    let now = Utc::now();
    let ago = move |days: i64| now - chrono::Duration::days(days);
    let (counts, requests_open, shortages, expiring) = with_db(&state, t, move |conn| {
        let scope = authz::list_scope(&p);
        let counts = devices::figures(conn, scope, now)?;
        let scope_r = crate::api::lessons::request_scope(&p, Some("pending"), None);
        let open = crate::lessons::count(conn, &scope_r)?;
        let shortages = shortages(conn, &p, now)?;
        let expiring = crate::reports::ending(conn, scope, now, 60)?;
        Ok((counts, open, shortages, expiring))
    })
    .await?;
    let devices::Figures {
        total,
        online,
        unseen_week: unseen7,
        unseen_month: unseen30,
        failing,
    } = counts;
    let ago = |days: i64| ago(days).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let figures = vec![
        Figure {
            label: t.t("overview-devices"),
            value: total,
            href: "/admin/geraete".into(),
            warn: false,
        },
        Figure {
            label: t.t("overview-online"),
            value: online,
            href: format!("/admin/geraete?gesehen_nach={}", ago(1)),
            warn: false,
        },
        Figure {
            label: t.t("overview-unseen-7"),
            value: unseen7,
            href: format!("/admin/geraete?nicht_gesehen_seit={}", ago(7)),
            warn: unseen7 > 0,
        },
        Figure {
            label: t.t("overview-unseen-30"),
            value: unseen30,
            href: format!("/admin/geraete?nicht_gesehen_seit={}", ago(30)),
            warn: unseen30 > 0,
        },
        Figure {
            label: t.t("overview-failing"),
            value: failing,
            href: format!("/admin/geraete?fehler_seit={}", ago(7)),
            warn: failing > 0,
        },
        Figure {
            label: t.t("overview-requests"),
            value: requests_open,
            href: "/admin/antraege".into(),
            warn: requests_open > 0,
        },
    ];
    let mut expiring: Vec<Expiring> = expiring
        .into_iter()
        .map(|e| Expiring {
            what: t.with(
                match e.kind {
                    crate::reports::EndingKind::PushCertificate => "expiring-push",
                    crate::reports::EndingKind::ContentToken => "expiring-vpp",
                    crate::reports::EndingKind::AdeToken => "expiring-ade",
                    crate::reports::EndingKind::TafelCertificate => "expiring-tafel-cert",
                },
                &[("name", e.name.into())],
            ),
            when: t.datetime(e.ends_at.naive_utc(), BERLIN),
            days: e.days_left,
        })
        .collect();
    if authz::sees_district(&v.p) {
        for c in crate::pki::lifecycle::status(&state.certificates, now) {
            if c.days_left <= 60 {
                expiring.push(Expiring {
                    what: t.with("expiring-tafel-cert", &[("name", c.name.clone().into())]),
                    when: String::new(),
                    days: c.days_left,
                });
            }
        }
    }
    expiring.sort_by_key(|e| e.days);
    let shortages = shortages
        .into_iter()
        .map(|(app, needed, available, at)| {
            t.with(
                "shortage-line",
                &[
                    ("app", app.into()),
                    ("needed", (needed as i64).into()),
                    ("available", available.into()),
                    ("when", t.datetime(at, BERLIN).into()),
                ],
            )
        })
        .collect();
    render(&OverviewPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin", &here(&req))),
        figures,
        shortages,
        expiring,
    })
}

/// Licence shortages of the next two weeks in `p`'s scope: app, needed, free, when.
fn shortages(
    conn: &mut DbConn,
    p: &crate::accounts::Principal,
    now: chrono::DateTime<Utc>,
) -> QueryResult<Vec<(String, usize, i64, chrono::NaiveDateTime)>> {
    use crate::db::schema::apps;
    let tenant = if authz::sees_district(p) {
        None
    } else {
        p.tenant_id.as_deref()
    };
    let list = crate::licences::upcoming_shortfalls(conn, tenant, now, chrono::Duration::days(14))?;
    let mut out = Vec::new();
    for s in list.into_iter().take(20) {
        let name: Option<String> = apps::table
            .filter(apps::adam_id.eq(&s.adam_id))
            .select(apps::name)
            .first(conn)
            .optional()?;
        out.push((
            name.unwrap_or(s.adam_id),
            s.needed,
            s.available,
            s.next_window.naive_utc(),
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Devices

/// A device as a row of the list.
pub struct DeviceLine {
    /// Link key (UDID, serial or id), URL-encoded.
    pub key: String,
    /// Name (or serial).
    pub name: String,
    /// Serial number.
    pub serial: String,
    /// Model.
    pub model: String,
    /// OS version.
    pub os: String,
    /// School.
    pub school: String,
    /// Classes and carts.
    pub groups: String,
    /// Last seen.
    pub last_seen: String,
    /// Enrollment status, in words.
    pub status: String,
}

/// A choice in a select.
pub struct Choice {
    /// Value.
    pub value: String,
    /// Label.
    pub label: String,
    /// Chosen.
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/devices.html")]
struct DevicesPage {
    t: Tr,
    chrome: Option<Chrome>,
    q: String,
    schools: Vec<Choice>,
    classes: Vec<Choice>,
    statuses: Vec<Choice>,
    devices: Vec<DeviceLine>,
    next: Option<String>,
    filtered: bool,
}

/// The list's query (German names: they are in the address bar).
#[derive(Deserialize, Default)]
struct DeviceQuery {
    q: Option<String>,
    schule: Option<String>,
    klasse: Option<String>,
    status: Option<String>,
    gesehen_nach: Option<String>,
    nicht_gesehen_seit: Option<String>,
    fehler_seit: Option<String>,
    weiter: Option<String>,
}

pub(super) fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn status_word(t: Tr, s: crate::enrollment::EnrollmentStatus) -> String {
    t.t(&format!("status-{}", s.as_str().replace(['_', ' '], "-")))
}

/// `GET /admin/geraete`: search, filters, paging.
async fn device_list(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<DeviceQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let q = q.into_inner();
    let parse_time =
        |s: &Option<String>, field: &str| -> Result<Option<chrono::DateTime<Utc>>, WebError> {
            nonempty(s)
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|_| {
                            WebError::Api(t, ApiError::invalid_field(field, "a time (RFC 3339)"))
                        })
                })
                .transpose()
        };
    let text = nonempty(&q.q);
    if text.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(WebError::Api(
            t,
            ApiError::invalid_field("q", "at most 100 characters"),
        ));
    }
    let status = nonempty(&q.status);
    if let Some(s) = &status {
        crate::api::errors::parse_word::<crate::enrollment::EnrollmentStatus>("status", s)
            .or_page(t)?;
    }
    let filter = DeviceFilter {
        school_id: nonempty(&q.schule),
        class_id: nonempty(&q.klasse),
        status: status.clone(),
        q: text.clone(),
        last_seen_after: parse_time(&q.gesehen_nach, "gesehen_nach")?,
        last_seen_before: parse_time(&q.nicht_gesehen_seit, "nicht_gesehen_seit")?,
        failed_since: parse_time(&q.fehler_seit, "fehler_seit")?,
        cursor: nonempty(&q.weiter),
        ..Default::default()
    };
    let filtered = text.is_some()
        || filter.school_id.is_some()
        || status.is_some()
        || filter.last_seen_after.is_some()
        || filter.last_seen_before.is_some()
        || filter.failed_since.is_some();
    let schools = crate::api::org::schools_as(&state, &Caller(v.p.clone()), None)
        .await
        .or_page(t)?;
    let p = v.p.clone();
    let school = filter.school_id.clone();
    let (rows, next, classes) = with_db(&state, t, move |conn| {
        let scope = authz::list_scope(&p);
        let (rows, next) = devices::list(conn, scope, &filter, PAGE)?;
        let classes = match &school {
            Some(s)
                if authz::can_see(
                    &p,
                    Place {
                        tenant_id: None,
                        school_id: Some(s),
                    },
                ) || authz::sees_district(&p) =>
            {
                crate::org::classes::classes_of_school(conn, s, None)?
            }
            _ => vec![],
        };
        Ok((devices::with_names(conn, rows)?, next, classes))
    })
    .await?;
    let devices = rows.into_iter().map(|d| line(t, d)).collect();
    let chosen = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
    let statuses = ["active", "pending", "retired"]
        .iter()
        .map(|s| Choice {
            value: (*s).into(),
            label: t.t(&format!("status-{s}")),
            selected: chosen(&status, s),
        })
        .collect();
    let next = next.map(|c| {
        let mut pairs: Vec<(&str, String)> = vec![];
        let kept = [
            ("q", &text),
            ("schule", &q.schule),
            ("klasse", &q.klasse),
            ("status", &status),
            ("gesehen_nach", &q.gesehen_nach),
            ("nicht_gesehen_seit", &q.nicht_gesehen_seit),
            ("fehler_seit", &q.fehler_seit),
        ];
        for (k, val) in kept {
            if let Some(x) = nonempty(val) {
                pairs.push((k, x));
            }
        }
        pairs.push(("weiter", c));
        format!(
            "/admin/geraete?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    render(&DevicesPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/geraete", &here(&req))),
        q: text.unwrap_or_default(),
        schools: schools
            .into_iter()
            .map(|s| Choice {
                selected: chosen(&q.schule, &s.school.id),
                value: s.school.id,
                label: s.school.name,
            })
            .collect(),
        classes: classes
            .into_iter()
            .map(|c| Choice {
                selected: chosen(&q.klasse, &c.id),
                label: format!("{} ({})", c.name, c.school_year),
                value: c.id,
            })
            .collect(),
        statuses,
        devices,
        next,
        filtered,
    })
}

fn line(t: Tr, d: devices::DeviceView) -> DeviceLine {
    let r = &d.device;
    let mut groups = d.class_names.clone();
    groups.extend(d.group_names.iter().cloned());
    DeviceLine {
        key: super::url_encode(
            &r.udid
                .clone()
                .or_else(|| r.serial_number.clone())
                .unwrap_or_else(|| r.id.clone()),
        ),
        name: r
            .name
            .clone()
            .or_else(|| r.serial_number.clone())
            .unwrap_or_else(|| "–".into()),
        serial: r.serial_number.clone().unwrap_or_default(),
        model: r
            .model_name
            .clone()
            .or_else(|| r.product_name.clone())
            .unwrap_or_default(),
        os: r.os_version.clone().unwrap_or_default(),
        school: d.school_name.clone().unwrap_or_default(),
        groups: groups.join(", "),
        last_seen: t.datetime_opt(r.last_seen_at, BERLIN),
        status: status_word(t, r.enrollment_status),
    }
}

/// A row of a two-column table.
pub struct Fact {
    /// Label.
    pub label: String,
    /// Value.
    pub value: String,
}

/// A wanted item and where it stands.
pub struct Wanted {
    /// Name.
    pub name: String,
    /// State, in words.
    pub state: String,
    /// Why (failed, no licence), or when next.
    pub note: String,
    /// Something went wrong.
    pub bad: bool,
}

/// A command of the history.
pub struct CommandLine {
    /// Type.
    pub request_type: String,
    /// State.
    pub status: String,
    /// Queued.
    pub created: String,
    /// Answered.
    pub answered: String,
    /// Failed.
    pub bad: bool,
}

#[derive(Template)]
#[template(path = "admin/device.html")]
struct DevicePage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    /// The device's key in this page's address (URL-encoded).
    key: String,
    /// The admin may act on it, and it is enrolled (has a UDID).
    actions: bool,
    /// What was just sent (after an action).
    sent: Option<String>,
    title: String,
    facts: Vec<Fact>,
    inventory: Vec<Fact>,
    wanted: Vec<Wanted>,
    apps: Vec<Fact>,
    profiles: Vec<Fact>,
    commands: Vec<CommandLine>,
}

#[derive(Deserialize)]
struct SentQuery {
    gesendet: Option<String>,
}

/// `GET /admin/geraete/{key}`: one device (404 outside the admin's scope, as in the API).
async fn device_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<SentQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let key = path.into_inner();
    let page_key = super::url_encode(&key);
    let p = v.p.clone();
    let (detail, wanted, commands) = with_db(&state, t, move |conn| {
        let d = devices::find(conn, authz::list_scope(&p), &key)?
            .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
        let wanted = crate::assign::views::device_state(conn, &d.id, Utc::now())?;
        let commands = crate::queue::list(conn, &d.id, None, None, 25)?;
        Ok((devices::detail(conn, d)?, wanted, commands))
    })
    .await?;
    let d = &detail.device.device;
    let yes_no = |b: Option<bool>| match b {
        Some(true) => t.t("yes"),
        Some(false) => t.t("no"),
        None => "–".into(),
    };
    let fact = |label: &str, value: String| Fact {
        label: t.t(label),
        value,
    };
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "–".into());
    let mut groups = detail.device.class_names.clone();
    groups.extend(detail.device.group_names.iter().cloned());
    let facts = vec![
        fact("device-serial", opt(&d.serial_number)),
        fact("device-udid", opt(&d.udid)),
        fact(
            "device-model",
            d.model_name
                .clone()
                .or_else(|| d.product_name.clone())
                .unwrap_or_else(|| "–".into()),
        ),
        fact("device-os", opt(&d.os_version)),
        fact("device-school", opt(&detail.device.school_name)),
        fact(
            "device-groups",
            if groups.is_empty() {
                "–".into()
            } else {
                groups.join(", ")
            },
        ),
        fact("device-status", status_word(t, d.enrollment_status)),
        fact("device-enrolled", t.datetime_opt(d.enrolled_at, BERLIN)),
        fact("device-last-seen", t.datetime_opt(d.last_seen_at, BERLIN)),
    ];
    let inventory = match &detail.inventory {
        Some(i) => vec![
            fact(
                "inv-battery",
                i.battery_level
                    .map(|b| format!("{:.0} %", b * 100.0))
                    .unwrap_or_else(|| "–".into()),
            ),
            fact(
                "inv-storage",
                match (i.available_gb, i.capacity_gb) {
                    (Some(a), Some(c)) => t.with(
                        "inv-storage-free",
                        &[
                            ("free", format!("{a:.1}").into()),
                            ("total", format!("{c:.0}").into()),
                        ],
                    ),
                    _ => "–".into(),
                },
            ),
            fact("inv-supervised", yes_no(i.supervised)),
            fact("inv-passcode", yes_no(i.passcode_present)),
            fact("inv-wifi-mac", opt(&i.wifi_mac)),
            fact("inv-reported", t.datetime(i.updated_at, BERLIN)),
        ],
        None => vec![],
    };
    use crate::assign::views::ItemProgress as P;
    let wanted = wanted
        .into_iter()
        .map(|w| Wanted {
            bad: matches!(w.state, P::Failed),
            state: t.t(&format!(
                "item-{}",
                w.state.as_str().replace(['_', ' '], "-")
            )),
            note: w
                .reason
                .clone()
                .or_else(|| w.next_window.map(|n| t.datetime(n.naive_utc(), BERLIN)))
                .unwrap_or_default(),
            name: w.name,
        })
        .collect();
    let apps = detail
        .apps
        .iter()
        .map(|a| Fact {
            label: a.name.clone().unwrap_or_else(|| a.bundle_id.clone()),
            value: format!(
                "{} · {}{}",
                a.version.clone().unwrap_or_else(|| "–".into()),
                a.status,
                if a.by_tafel { " · tafel" } else { "" }
            ),
        })
        .collect();
    let profiles = detail
        .profiles
        .iter()
        .map(|p| Fact {
            label: p.name.clone().unwrap_or_else(|| p.identifier.clone()),
            value: format!(
                "{}{}",
                p.identifier,
                if p.by_tafel { " · tafel" } else { "" }
            ),
        })
        .collect();
    use crate::queue::QueueState as Q;
    let commands = commands
        .into_iter()
        .map(|c| CommandLine {
            bad: matches!(c.status, Q::Error | Q::CommandFormatError),
            status: t.t(&format!(
                "queue-{}",
                c.status.as_str().replace(['_', ' '], "-")
            )),
            created: t.datetime(c.created_at, BERLIN),
            answered: t.datetime_opt(c.answered_at, BERLIN),
            request_type: match where_it_was(&c.request_type, c.result.as_deref()) {
                Some(at) => format!("{} · {at}", c.request_type),
                None => c.request_type,
            },
        })
        .collect();
    let actions = d.udid.is_some()
        && d.enrollment_status != crate::enrollment::EnrollmentStatus::Retired
        && authz::require(
            &v.p,
            Action::ManageSchool,
            Place {
                tenant_id: d.tenant_id.as_deref(),
                school_id: d.school_id.as_deref(),
            },
        )
        .is_ok();
    let sent = q
        .gesendet
        .as_deref()
        .filter(|a| ACTIONS.contains(a))
        .map(|a| t.t(&format!("action-sent-{a}")));
    render(&DevicePage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/geraete", &here(&req))),
        csrf: v.csrf.clone(),
        key: page_key,
        actions,
        sent,
        title: d
            .name
            .clone()
            .or_else(|| d.serial_number.clone())
            .unwrap_or_else(|| d.id.clone()),
        facts,
        inventory,
        wanted,
        apps,
        profiles,
        commands,
    })
}

/// Where a located iPad was: `Latitude, Longitude` of an answered DeviceLocation
/// (`mdm/commands/device.lostmode.location.yaml`).
fn where_it_was(request_type: &str, result: Option<&[u8]>) -> Option<String> {
    if request_type != "DeviceLocation" {
        return None;
    }
    let answer = crate::protocol::bounded::parse(result?, crate::protocol::bounded::Limits::DEVICE)
        .ok()?
        .into_dictionary()?;
    let coordinate = |k: &str| answer.get(k).and_then(plist::Value::as_real);
    Some(format!(
        "{:.5}, {:.5}",
        coordinate("Latitude")?,
        coordinate("Longitude")?
    ))
}

/// The device page's actions.
const ACTIONS: [&str; 11] = [
    "inventory",
    "restart",
    "shut-down",
    "lock",
    "clear-passcode",
    "lost-mode-on",
    "lost-mode-off",
    "locate",
    "play-sound",
    "erase",
    "retire",
];

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    action: String,
    /// The checkbox of a disruptive action.
    sure: Option<String>,
    /// An erase: the serial number typed again.
    confirm: Option<String>,
    /// Lost Mode: the Lock screen's message.
    message: Option<String>,
    /// Lost Mode: the Lock screen's phone number.
    phone_number: Option<String>,
    /// Lost Mode: the footnote.
    footnote: Option<String>,
}

/// `POST /admin/geraete/{key}/aktion`: ask for its state, restart, shut down, lock, clear
/// its passcode, Lost Mode on and off, locate, play a sound, erase (the serial typed again)
/// or retire it; disruptive ones need their checkbox. The API's typed device actions
/// apply (scope, the iPad's checks, audit, push after commit).
async fn device_action(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let t = v.tr;
    let f = form.into_inner();
    let key = path.into_inner();
    let action = ACTIONS
        .iter()
        .find(|a| **a == f.action)
        .copied()
        .ok_or_else(|| WebError::Api(t, ApiError::invalid_field("action", ACTIONS.join(", "))))?;
    if !matches!(action, "inventory" | "erase" | "locate") && f.sure.is_none() {
        return Err(WebError::Api(
            t,
            ApiError::invalid_field("sure", t.t("action-confirm-missing")),
        ));
    }
    let p = v.p.clone();
    let k = key.clone();
    let device = with_db(&state, t, move |conn| {
        devices::find(conn, authz::list_scope(&p), &k)?
            .ok_or_else(|| ApiError::not_found(format!("no device {k}")))
    })
    .await?;
    let caller = Caller(v.p.clone());
    if action == "retire" {
        authz::require(
            &v.p,
            Action::ManageSchool,
            Place {
                tenant_id: device.tenant_id.as_deref(),
                school_id: device.school_id.as_deref(),
            },
        )
        .or_page(t)?;
        let (id, actor) = (device.id.clone(), v.p.user_id.clone());
        with_db(&state, t, move |conn| {
            Ok(crate::enrollment::release(conn, &id, &actor)?)
        })
        .await?;
    } else {
        let udid = device
            .udid
            .clone()
            .ok_or_else(|| WebError::Api(t, ApiError::conflict("the iPad has not enrolled yet")))?;
        use crate::actions::DeviceAction as A;
        let typed = match action {
            "inventory" => A::RefreshInventory {},
            "restart" => A::Restart {},
            "shut-down" => A::ShutDown {},
            "lock" => A::Lock {
                message: nonempty(&f.message),
                phone_number: nonempty(&f.phone_number),
            },
            "clear-passcode" => A::ClearPasscode {},
            "lost-mode-on" => A::LostModeOn {
                message: nonempty(&f.message),
                phone_number: nonempty(&f.phone_number),
                footnote: nonempty(&f.footnote),
            },
            "lost-mode-off" => A::LostModeOff {},
            "locate" => A::Locate {},
            "play-sound" => A::PlaySound {},
            _ => A::Erase {
                confirm: nonempty(&f.confirm).unwrap_or_default(),
                preserve_data_plan: false,
                disallow_proximity_setup: false,
                return_to_service: None,
            },
        };
        let req = crate::api::actions::ActionRequest {
            target: crate::api::actions::ActionTarget::Devices(vec![udid]),
            action: typed,
            skip_unsuitable: false,
        };
        crate::api::actions::act_as(&state, caller, req)
            .await
            .or_page(t)?;
    }
    see_other(&format!(
        "/admin/geraete/{}?gesendet={action}",
        super::url_encode(&key)
    ))
}

// ---------------------------------------------------------------------------------------
// Schools and enrollment links

/// A school in the list.
pub struct SchoolLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Authority.
    pub authority: String,
}

#[derive(Template)]
#[template(path = "admin/schools.html")]
struct SchoolsPage {
    t: Tr,
    chrome: Option<Chrome>,
    schools: Vec<SchoolLine>,
}

/// `GET /admin/schulen`.
async fn school_list(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let schools = crate::api::org::schools_as(&state, &Caller(v.p.clone()), None)
        .await
        .or_page(v.tr)?;
    render(&SchoolsPage {
        t: v.tr,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        schools: schools
            .into_iter()
            .map(|s| SchoolLine {
                id: s.school.id,
                name: s.school.name,
                authority: s.tenant_name.unwrap_or_default(),
            })
            .collect(),
    })
}

/// A class or cart of a school.
pub struct GroupLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Devices in it.
    pub devices: i64,
    /// "Klasse 7b" / "Geräte-Wagen 1", for the link's choice.
    pub link_label: String,
}

/// An enrollment link with its QR code.
pub struct LinkLine {
    /// What it is for.
    pub title: String,
    /// The URL.
    pub url: String,
    /// The QR code as inline SVG.
    pub qr: String,
    /// Uses (of the most).
    pub uses: String,
}

#[derive(Template)]
#[template(path = "admin/school.html")]
struct SchoolPage {
    t: Tr,
    chrome: Option<Chrome>,
    id: String,
    name: String,
    classes: Vec<GroupLine>,
    carts: Vec<GroupLine>,
    links: Vec<LinkLine>,
    may_manage: bool,
    csrf: String,
    /// Holidays and closed days from today on (the school's and its authority's).
    closures: Vec<Fact>,
    /// Where the holidays form posts.
    closures_action: String,
}

/// A QR code of `text` as SVG for inline use (dark modules on white, a quiet zone).
pub fn qr_svg(text: &str, label: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(180, 180)
        .quiet_zone(true)
        .build();
    // The renderer writes an XML declaration first; inline SVG starts at <svg.
    let start = svg.find("<svg")?;
    let label = askama::filters::escape(label, askama::filters::Html)
        .ok()?
        .to_string();
    Some(svg[start..].replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{label}\""),
        1,
    ))
}

async fn school_data(
    state: &AppState,
    v: &Viewer,
    id: String,
) -> Result<(crate::org::School, Vec<GroupLine>, Vec<GroupLine>, bool), WebError> {
    let t = v.tr;
    let caller = Caller(v.p.clone());
    let school = crate::api::org::load_school(state, &caller, id, Action::View)
        .await
        .or_page(t)?;
    let may_manage = authz::require(
        &v.p,
        Action::ManageSchool,
        Place::school(&school.tenant_id, &school.id),
    )
    .is_ok();
    let sid = school.id.clone();
    let (classes, carts) = with_db(state, t, move |conn| {
        use crate::org::classes::{self as c, Membership};
        let mut classes = vec![];
        for k in c::classes_of_school(conn, &sid, None)? {
            let n = c::device_count(conn, Membership::Class(&k.id))?;
            classes.push(GroupLine {
                link_label: t.with("link-for-class", &[("name", k.name.clone().into())]),
                name: format!("{} ({})", k.name, k.school_year),
                id: k.id,
                devices: n,
            });
        }
        let mut carts = vec![];
        for g in c::groups_of_school(conn, &sid)? {
            let n = c::device_count(conn, Membership::Group(&g.id))?;
            carts.push(GroupLine {
                link_label: t.with("link-for-cart", &[("name", g.name.clone().into())]),
                name: g.name,
                id: g.id,
                devices: n,
            });
        }
        Ok((classes, carts))
    })
    .await?;
    Ok((school, classes, carts, may_manage))
}

fn link_lines(t: Tr, links: Vec<crate::api::org::TokenView>) -> Vec<LinkLine> {
    let now = Utc::now().naive_utc();
    links
        .into_iter()
        .filter(|l| l.token.revoked_at.is_none() && l.token.expires_at.is_none_or(|e| e > now))
        .map(|l| {
            let title = match (&l.class_name, &l.group_name) {
                (Some(c), _) => t.with("link-for-class", &[("name", c.clone().into())]),
                (_, Some(g)) => t.with("link-for-cart", &[("name", g.clone().into())]),
                _ => t.t("link-for-school"),
            };
            let title = if l.token.description.is_empty() {
                title
            } else {
                format!("{title} – {}", l.token.description)
            };
            LinkLine {
                qr: qr_svg(
                    &l.url,
                    &t.with("qr-label", &[("title", title.clone().into())]),
                )
                .unwrap_or_default(),
                uses: match l.token.max_uses {
                    Some(m) => format!("{} / {m}", l.token.uses),
                    None => l.token.uses.to_string(),
                },
                url: l.url,
                title,
            }
        })
        .collect()
}

/// `GET /admin/schulen/{id}`: classes, carts, and (for those who manage the school) the
/// enrollment links as QR codes.
async fn school_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let (school, classes, carts, may_manage) = school_data(&state, &v, path.into_inner()).await?;
    let links = if may_manage {
        link_lines(
            t,
            crate::api::org::links_as(&state, &Caller(v.p.clone()), school.id.clone())
                .await
                .or_page(t)?,
        )
    } else {
        vec![]
    };
    let closures =
        closure_facts(&state, t, school.tenant_id.clone(), Some(school.id.clone())).await?;
    render(&SchoolPage {
        closures,
        closures_action: format!("/admin/schulen/{}/ferien", school.id),
        t,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        id: school.id,
        name: school.name,
        classes,
        carts,
        links,
        may_manage,
        csrf: v.csrf.clone(),
    })
}

/// Holidays and closed days from today on, as facts: an authority's own (`school`
/// none), or a school's with its authority's.
pub(super) async fn closure_facts(
    state: &AppState,
    t: Tr,
    tenant: String,
    school: Option<String>,
) -> Result<Vec<Fact>, WebError> {
    let rows = with_db(state, t, move |conn| {
        use crate::db::schema::closures as c;
        let today = chrono::Utc::now()
            .with_timezone(&BERLIN)
            .date_naive()
            .to_string();
        let mut q = c::table
            .filter(c::tenant_id.eq(tenant))
            .filter(c::to_date.ge(today))
            .order(c::from_date.asc())
            .select((c::name, c::from_date, c::to_date))
            .limit(30)
            .into_boxed();
        q = match school {
            Some(s) => q.filter(c::school_id.eq(s).or(c::school_id.is_null())),
            None => q.filter(c::school_id.is_null()),
        };
        Ok(q.load::<(String, String, String)>(conn)?)
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, from, to)| {
            let day = |d: &str| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map(|d| t.date(d))
                    .unwrap_or_else(|_| d.to_owned())
            };
            Fact {
                label: name,
                value: if from == to {
                    day(&from)
                } else {
                    format!("{} – {}", day(&from), day(&to))
                },
            }
        })
        .collect())
}

#[derive(Deserialize)]
struct LinkForm {
    csrf: String,
    /// `class:<id>`, `group:<id>` or empty (the school).
    target: Option<String>,
    description: Option<String>,
}

/// `POST /admin/schulen/{id}/links`: a new enrollment link for the school, a class or a cart.
async fn create_link(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LinkForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let id = path.into_inner();
    let mut input = crate::enrollment::tokens::NewToken {
        description: nonempty(&f.description),
        ..Default::default()
    };
    match nonempty(&f.target).as_deref().map(|s| s.split_once(':')) {
        None => {}
        Some(Some(("class", c))) => input.class_id = Some(c.to_owned()),
        Some(Some(("group", g))) => input.group_id = Some(g.to_owned()),
        Some(_) => {
            return Err(WebError::Api(
                v.tr,
                ApiError::invalid_field("target", "class:<id> or group:<id>"),
            ))
        }
    }
    crate::api::org::create_link_as(&state, &Caller(v.p.clone()), id.clone(), input)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/schulen/{id}#links"))
}

#[derive(Deserialize)]
struct ClosuresForm {
    csrf: String,
    calendar: String,
    replace: Option<String>,
}

/// `POST /admin/schulen/{id}/ferien`: the school's holidays and closed days, as CSV
/// lines (`Name,2026-12-21,2027-01-02`) or an iCalendar file's text; the API's calendar
/// rules (every assignment planned again).
async fn upload_closures(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ClosuresForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let t = v.tr;
    let caller = Caller(v.p.clone());
    let school =
        crate::api::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool)
            .await
            .or_page(t)?;
    store_closures(
        &state,
        &v,
        school.tenant_id.clone(),
        Some(school.id.clone()),
        form.into_inner(),
        format!("/admin/schulen/{}#ferien", school.id),
    )
    .await
}

/// `POST /admin/schultraeger/{id}/ferien`: the authority's holidays (every school of it
/// keeps them), as for a school; the authority's admins only.
async fn upload_authority_closures(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ClosuresForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let t = v.tr;
    let caller = Caller(v.p.clone());
    let tenant =
        crate::api::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant)
            .await
            .or_page(t)?;
    store_closures(
        &state,
        &v,
        tenant.id.clone(),
        None,
        form.into_inner(),
        format!("/admin/schultraeger/{}#ferien", tenant.id),
    )
    .await
}

/// Stores the holidays of a form for an authority or one of its schools (the caller's
/// right already checked) through the API's calendar core, then back to `back`.
async fn store_closures(
    state: &AppState,
    v: &Viewer,
    tenant: String,
    school: Option<String>,
    f: ClosuresForm,
    back: String,
) -> PageResult {
    crate::api::catalog::calendar_as(
        state,
        &Caller(v.p.clone()),
        tenant,
        school,
        f.replace.is_some(),
        "",
        f.calendar.as_bytes(),
    )
    .await
    .or_page(v.tr)?;
    see_other(&back)
}

#[derive(Template)]
#[template(path = "admin/print.html")]
struct PrintPage {
    t: Tr,
    chrome: Option<Chrome>,
    school: String,
    links: Vec<LinkLine>,
}

/// `GET /admin/schulen/{id}/druck`: the school's enrollment links to print, one per A4 page.
async fn print_sheet(v: Viewer, state: web::Data<AppState>, path: web::Path<String>) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let caller = Caller(v.p.clone());
    let school =
        crate::api::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool)
            .await
            .or_page(t)?;
    let links = link_lines(
        t,
        crate::api::org::links_as(&state, &caller, school.id.clone())
            .await
            .or_page(t)?,
    );
    render(&PrintPage {
        t,
        chrome: None,
        school: school.name,
        links,
    })
}

// ---------------------------------------------------------------------------------------
// Lesson requests

/// A request as a row.
pub struct RequestLine {
    /// Id.
    pub id: String,
    /// Teacher.
    pub teacher: String,
    /// Class or cart.
    pub target: String,
    /// Date and time.
    pub when: String,
    /// Apps.
    pub apps: String,
    /// Note of the teacher.
    pub note: String,
    /// Status, in words.
    pub status: String,
    /// Pending (decide).
    pub pending: bool,
    /// Licence gaps, in words.
    pub shortfalls: Vec<String>,
}

/// A stored lesson date and time as the page shows it.
pub fn lesson_when(t: Tr, r: &crate::lessons::LessonRequest) -> String {
    let date = chrono::NaiveDate::parse_from_str(&r.lesson_date, "%Y-%m-%d")
        .map(|d| t.date(d))
        .unwrap_or_else(|_| r.lesson_date.clone());
    format!("{date}, {}–{}", r.start_time, r.end_time)
}

/// Lesson requests as rows.
pub fn request_lines(t: Tr, list: Vec<crate::lessons::RequestView>) -> Vec<RequestLine> {
    list.into_iter()
        .map(|r| RequestLine {
            when: lesson_when(t, &r.request),
            teacher: r.teacher_name.clone().unwrap_or_default(),
            target: r.target_name.clone().unwrap_or_default(),
            apps: r
                .apps
                .iter()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            note: r.request.note.clone().unwrap_or_default(),
            status: t.t(&format!("request-{}", r.request.status.as_str())),
            pending: r.request.status == crate::lessons::RequestStatus::Pending,
            shortfalls: r
                .licence_shortfalls
                .iter()
                .map(|s| {
                    t.with(
                        "request-no-licence",
                        &[
                            ("app", s.app_name.clone().into()),
                            ("n", (s.without_licence as i64).into()),
                            ("m", (s.devices as i64).into()),
                        ],
                    )
                })
                .collect(),
            id: r.request.id,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    pending: Vec<RequestLine>,
}

/// `GET /admin/antraege`: open lesson requests to approve or reject.
async fn requests(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let p = v.p.clone();
    let list = with_db(&state, t, move |conn| {
        let scope = crate::api::lessons::request_scope(&p, Some("pending"), None);
        Ok(crate::lessons::list(conn, &scope, None, 200)?.items)
    })
    .await?;
    let views = crate::api::lessons::present(&state, list)
        .await
        .or_page(t)?;
    render(&RequestsPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/antraege", &here(&req))),
        csrf: v.csrf.clone(),
        pending: request_lines(t, views),
    })
}

#[derive(Deserialize)]
struct DecideForm {
    csrf: String,
    reason: Option<String>,
}

/// `POST /admin/antraege/{id}/genehmigen`.
async fn approve(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecideForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    crate::api::lessons::approve_as(&state, &v.p, path.into_inner())
        .await
        .or_page(v.tr)?;
    see_other("/admin/antraege")
}

/// `POST /admin/antraege/{id}/ablehnen`: with a reason.
async fn reject(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecideForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let reason = nonempty(&form.reason)
        .ok_or_else(|| WebError::Api(v.tr, ApiError::invalid_field("reason", "say why")))?;
    crate::api::lessons::reject_as(&state, &v.p, path.into_inner(), reason)
        .await
        .or_page(v.tr)?;
    see_other("/admin/antraege")
}

// ---------------------------------------------------------------------------------------
// Assignments

/// An assignment as a row.
pub struct AssignmentLine {
    /// What.
    pub item: String,
    /// To whom.
    pub target: String,
    /// When.
    pub schedule: String,
    /// School.
    pub school: String,
}

#[derive(Template)]
#[template(path = "admin/assignments.html")]
struct AssignmentsPage {
    t: Tr,
    chrome: Option<Chrome>,
    schools: Vec<SchoolLine>,
    list: Vec<AssignmentLine>,
}

/// How a stored schedule reads: "immer", or its windows: weekly ones as timetables
/// write them ("Di 2-3", "Di 08:00–09:30"), one-off ones with their date
/// ("Mi, 09.12.2026, 08:50–10:40"), ranges from–to.
pub(super) fn schedule_words(t: Tr, stored: &str) -> String {
    use serde_json::Value;
    let v: Value = serde_json::from_str(stored).unwrap_or_default();
    if v.get("kind").and_then(Value::as_str) != Some("windows") {
        return t.t("schedule-always");
    }
    let text = |w: &Value, k: &str| w.get(k).and_then(Value::as_str).map(str::to_owned);
    // The hours of a window: the school's periods, or clock times; none is the whole day.
    let hours = |w: &Value| {
        text(w, "periods").or_else(|| match (text(w, "start"), text(w, "end")) {
            (Some(s), Some(e)) => Some(format!("{s}–{e}")),
            _ => None,
        })
    };
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let date = |w: &Value, k: &str| {
        text(w, k).map(
            |d| match chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
                Ok(d) => t.date(d),
                Err(_) => d,
            },
        )
    };
    let mut out: Vec<String> = vec![];
    for w in list("weekly") {
        out.push(match &w {
            Value::String(s) => s.clone(),
            w => {
                let raw = text(w, "weekday").unwrap_or_default();
                let day = weekday_of(&raw).map_or(raw, |d| t.weekday_short(d).to_owned());
                match hours(w) {
                    Some(h) => format!("{day} {h}"),
                    None => day,
                }
            }
        });
    }
    for w in list("dates") {
        let day = date(&w, "date").unwrap_or_default();
        out.push(match hours(&w) {
            Some(h) => format!("{day}, {h}"),
            None => day,
        });
    }
    for w in list("ranges") {
        let (from, to) = (date(&w, "from"), date(&w, "to"));
        out.push(format!(
            "{}–{}",
            from.unwrap_or_default(),
            to.unwrap_or_default()
        ));
    }
    if out.is_empty() {
        t.t("schedule-windows")
    } else {
        out.join("; ")
    }
}

/// A weekday as stored schedules write it (`tue`, `tuesday`; German `di` too).
fn weekday_of(code: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    const DAYS: [chrono::Weekday; 7] = [Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    const EN: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const DE: [&str; 7] = ["mo", "di", "mi", "do", "fr", "sa", "so"];
    let c = code.trim().to_lowercase();
    EN.iter()
        .position(|d| c.starts_with(d))
        .or_else(|| DE.iter().position(|d| c == *d))
        .map(|i| DAYS[i])
}

/// `GET /admin/zuweisungen`: the assignments of the admin's scope.
async fn assignments(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let scope = authz::item_scope(&v.p);
    let list = with_db(&state, t, move |conn| {
        let page = crate::assign::list(conn, scope.as_ref(), &Default::default(), 200)?;
        Ok(crate::assign::with_names(conn, page.items)?)
    })
    .await?;
    let schools = crate::api::org::schools_as(&state, &Caller(v.p.clone()), None)
        .await
        .or_page(t)?;
    render(&AssignmentsPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/zuweisungen", &here(&req))),
        schools: schools
            .into_iter()
            .map(|s| SchoolLine {
                id: s.school.id,
                name: s.school.name,
                authority: s.tenant_name.unwrap_or_default(),
            })
            .collect(),
        list: list
            .into_iter()
            .map(|a| AssignmentLine {
                item: a
                    .item_name
                    .clone()
                    .unwrap_or_else(|| a.assignment.item_id.clone()),
                target: a
                    .target_name
                    .clone()
                    .unwrap_or_else(|| a.assignment.target_id.clone()),
                schedule: schedule_words(t, &a.assignment.schedule),
                school: a.school_name.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

/// A period of the school's timetable.
pub struct PeriodCol {
    /// Its name ("1", "2" …).
    pub name: String,
    /// Its times.
    pub times: String,
}

/// A weekday of the picker.
pub struct DayRow {
    /// German abbreviation as schedules write it ("Di").
    pub code: &'static str,
    /// Name in the page's language.
    pub name: String,
}

#[derive(Template)]
#[template(path = "admin/assignment_new.html")]
struct NewAssignmentPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    school_id: String,
    school: String,
    targets: Vec<Choice>,
    items: Vec<Choice>,
    periods: Vec<PeriodCol>,
    days: Vec<DayRow>,
}

/// The school's periods in order of their start: (name, "08:00–08:45").
pub fn periods_of(settings: &crate::lessons::LessonSettings) -> Vec<(String, String)> {
    let mut v: Vec<(String, String, String)> = settings
        .periods
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, p)| {
                    let s = p
                        .get("start")
                        .and_then(|x| x.as_str())
                        .unwrap_or("")
                        .to_owned();
                    let e = p
                        .get("end")
                        .and_then(|x| x.as_str())
                        .unwrap_or("")
                        .to_owned();
                    (k.clone(), s, e)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v.into_iter()
        .map(|(k, s, e)| (k, format!("{s}–{e}")))
        .collect()
}

/// Weekdays as schedules name them (German abbreviations, Monday to Friday).
const DAYS: [&str; 5] = ["Mo", "Di", "Mi", "Do", "Fr"];

#[derive(Deserialize)]
struct SchoolQuery {
    schule: Option<String>,
}

/// `GET /admin/zuweisungen/neu?schule=…`: assign an app or profile to a class or cart,
/// always or in the school's periods.
async fn new_assignment(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<SchoolQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let id = nonempty(&q.schule)
        .ok_or_else(|| WebError::Api(t, ApiError::invalid_field("schule", "choose a school")))?;
    let (school, classes, carts, may_manage) = school_data(&state, &v, id).await?;
    if !may_manage {
        return Err(WebError::Api(
            t,
            ApiError::forbidden("you may not change this school"),
        ));
    }
    let scope = authz::item_scope(&v.p);
    let sid = school.id.clone();
    let (settings, apps, profiles) = with_db(&state, t, move |conn| {
        let settings = crate::lessons::settings(conn, &sid)?;
        let f = crate::catalog::CatalogFilter::default();
        let apps = crate::catalog::list_apps(conn, scope.as_ref(), &f, 500)?.items;
        let profiles = crate::catalog::list_profiles(conn, scope.as_ref(), &f, 500)?.items;
        Ok((settings, apps, profiles))
    })
    .await?;
    let place = Place::school(&school.tenant_id, &school.id);
    let mut items: Vec<Choice> = apps
        .into_iter()
        .filter(|a| {
            authz::item_reaches(
                Place {
                    tenant_id: a.tenant_id.as_deref(),
                    school_id: None,
                },
                place,
            )
        })
        .map(|a| Choice {
            value: format!("app:{}", a.id),
            label: format!("{} ({})", a.name, t.t("kind-app")),
            selected: false,
        })
        .collect();
    items.extend(
        profiles
            .into_iter()
            .filter(|p| {
                authz::item_reaches(
                    Place {
                        tenant_id: p.tenant_id.as_deref(),
                        school_id: p.school_id.as_deref(),
                    },
                    place,
                )
            })
            .map(|p| Choice {
                value: format!("profile:{}", p.id),
                label: format!("{} ({})", p.name, t.t("kind-profile")),
                selected: false,
            }),
    );
    let mut targets: Vec<Choice> = classes
        .into_iter()
        .map(|c| Choice {
            value: format!("class:{}", c.id),
            label: t.with("target-class", &[("name", c.name.into())]),
            selected: false,
        })
        .collect();
    targets.extend(carts.into_iter().map(|g| Choice {
        value: format!("group:{}", g.id),
        label: t.with("target-cart", &[("name", g.name.into())]),
        selected: false,
    }));
    render(&NewAssignmentPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/zuweisungen", &here(&req))),
        csrf: v.csrf.clone(),
        school_id: school.id,
        school: school.name,
        targets,
        items,
        periods: periods_of(&settings)
            .into_iter()
            .map(|(name, times)| PeriodCol { name, times })
            .collect(),
        days: DAYS
            .iter()
            .enumerate()
            .map(|(i, code)| DayRow {
                code,
                name: t.weekday(i as u32 + 1),
            })
            .collect(),
    })
}

/// Ticked boxes `Di:2`, `Di:3`, `Mo:1` as weekly windows `["Mo 1", "Di 2-3"]`: runs of
/// the school's consecutive periods per day become one window.
pub fn weekly_windows(slots: &[(String, String)], periods: &[String]) -> Vec<String> {
    let mut out = vec![];
    for day in DAYS {
        let ticked: Vec<usize> = periods
            .iter()
            .enumerate()
            .filter(|(_, p)| slots.iter().any(|(d, q)| d == day && q == *p))
            .map(|(i, _)| i)
            .collect();
        let mut i = 0;
        while i < ticked.len() {
            let start = ticked[i];
            let mut end = start;
            while i + 1 < ticked.len() && ticked[i + 1] == end + 1 {
                i += 1;
                end = ticked[i];
            }
            out.push(if start == end {
                format!("{day} {}", periods[start])
            } else {
                format!("{day} {}-{}", periods[start], periods[end])
            });
            i += 1;
        }
    }
    out
}

/// `POST /admin/zuweisungen`: the API's assignment rules, then back to the list.
async fn create_assignment(
    v: Viewer,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let form = form.into_inner();
    let one = |k: &str| field(&form, k);
    v.check_csrf(&one("csrf").unwrap_or_default())?;
    let bad = |f: &str, m: &str| WebError::Api(t, ApiError::invalid_field(f, m));
    let school_id = one("school").ok_or_else(|| bad("school", "missing"))?;
    let (kind, target_id) = one("target")
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .ok_or_else(|| bad("target", "choose a class or cart"))?;
    let target_kind = match kind.as_str() {
        "class" => TargetKind::Class,
        "group" => TargetKind::Group,
        _ => return Err(bad("target", "class or cart")),
    };
    let (ik, item_id) = one("item")
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .ok_or_else(|| bad("item", "choose an app or profile"))?;
    let item_kind = match ik.as_str() {
        "app" => ItemKind::App,
        "profile" => ItemKind::Profile,
        _ => return Err(bad("item", "app or profile")),
    };
    let schedule = if one("when").as_deref() == Some("periods") {
        let sid = school_id.clone();
        let settings = with_db(&state, t, move |conn| {
            Ok(crate::lessons::settings(conn, &sid)?)
        })
        .await?;
        let periods: Vec<String> = periods_of(&settings).into_iter().map(|(n, _)| n).collect();
        let slots: Vec<(String, String)> = fields(&form, "slot")
            .iter()
            .filter_map(|v| v.split_once(':').map(|(d, p)| (d.to_owned(), p.to_owned())))
            .collect();
        let weekly = weekly_windows(&slots, &periods);
        if weekly.is_empty() {
            return Err(bad("slot", "tick at least one period"));
        }
        Some(serde_json::json!({"kind": "windows", "weekly": weekly}))
    } else {
        None
    };
    let body = crate::api::catalog::AssignmentBody {
        item_kind,
        item_id,
        target_kind,
        target_id,
        schedule,
    };
    crate::api::catalog::assign_as(&state, &v.p, body)
        .await
        .or_page(t)?;
    see_other("/admin/zuweisungen")
}

// ---------------------------------------------------------------------------------------
// Audit log

/// An entry of the audit log.
pub struct AuditLine {
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What was done, to what.
    pub action: String,
    /// Which object.
    pub object: String,
    /// Where.
    pub place: String,
    /// Details (JSON as stored).
    pub summary: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    t: Tr,
    chrome: Option<Chrome>,
    action: String,
    object_type: String,
    lines: Vec<AuditLine>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct AuditQuery {
    aktion: Option<String>,
    art: Option<String>,
    weiter: Option<String>,
}

/// `GET /admin/protokoll`: the audit log of the admin's scope, newest first, filtered by
/// action and kind of object, 100 a page.
async fn audit_log(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let q = q.into_inner();
    let filter = crate::api::audit::AuditQuery {
        action: nonempty(&q.aktion),
        object_type: nonempty(&q.art),
        cursor: nonempty(&q.weiter),
        limit: Some(100),
        ..Default::default()
    };
    let (items, next) = crate::api::audit::entries_as(&state, v.p.clone(), filter)
        .await
        .or_page(t)?;
    let next = next.map(|c| {
        let mut pairs: Vec<(&str, String)> = vec![];
        for (k, val) in [("aktion", &q.aktion), ("art", &q.art)] {
            if let Some(x) = nonempty(val) {
                pairs.push((k, x));
            }
        }
        pairs.push(("weiter", c));
        format!(
            "/admin/protokoll?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let lines = items
        .into_iter()
        .map(|e| AuditLine {
            at: t.datetime(e.entry.at, BERLIN),
            actor: e
                .actor_name
                .clone()
                .unwrap_or_else(|| e.entry.actor.clone()),
            action: format!("{} · {}", e.entry.action, e.entry.object_type),
            object: e.entry.object_id.clone().unwrap_or_default(),
            place: e
                .school_name
                .clone()
                .or_else(|| e.tenant_name.clone())
                .unwrap_or_default(),
            summary: e.entry.summary.clone(),
        })
        .collect();
    render(&AuditPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/protokoll", &here(&req))),
        action: nonempty(&q.aktion).unwrap_or_default(),
        object_type: nonempty(&q.art).unwrap_or_default(),
        lines,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_periods_become_windows() {
        let periods: Vec<String> = ["1", "2", "3", "4"].iter().map(|s| s.to_string()).collect();
        let slots: Vec<(String, String)> = [
            ("Di", "2"),
            ("Di", "3"),
            ("Mo", "1"),
            ("Di", "4"),
            ("Fr", "1"),
            ("Fr", "3"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            weekly_windows(&slots, &periods),
            vec!["Mo 1", "Di 2-4", "Fr 1", "Fr 3"]
        );
        assert!(weekly_windows(&[], &periods).is_empty());
    }

    #[test]
    fn schedules_read_as_timetables_write_them() {
        let de = Tr {
            lang: super::super::i18n::Lang::De,
        };
        let en = Tr {
            lang: super::super::i18n::Lang::En,
        };
        let weekly = r#"{"kind":"windows","timezone":"Europe/Berlin","weekly":[{"weekday":"tue","periods":"2-3"},{"weekday":"thu","start":"08:00","end":"09:30"}],"lead_minutes":0,"after":"remove","exclude_holidays":true}"#;
        assert_eq!(schedule_words(de, weekly), "Di 2-3; Do 08:00–09:30");
        assert_eq!(schedule_words(en, weekly), "Tue 2-3; Thu 08:00–09:30");
        let lesson =
            r#"{"kind":"windows","dates":[{"date":"2026-12-09","start":"08:50","end":"10:40"}]}"#;
        assert_eq!(schedule_words(de, lesson), "Mi, 09.12.2026, 08:50–10:40");
        assert_eq!(schedule_words(de, r#"{"kind":"always"}"#), "immer");
        assert_eq!(
            schedule_words(de, r#"{"kind":"windows"}"#),
            "zu bestimmten Zeiten"
        );
    }

    #[test]
    fn qr_codes_are_inline_svg_with_a_label() {
        let svg = qr_svg("https://mdm.example/enroll/abc", "Klasse <7b>").unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"Klasse &#60;7b&#62;\"")
                || svg.starts_with("<svg role=\"img\" aria-label=\"Klasse &lt;7b&gt;\""),
            "{}",
            &svg[..80]
        );
        assert!(svg.contains("<path") || svg.contains("<rect"));
    }
}
