//! The service desk's ready-made reports (`/api/v1/reports/...`): iPads not seen for N
//! days, failed installs, iPads waiting for a licence, certificates and tokens about to
//! end. Each is scoped like the device list, paged with `limit` and `cursor`, and with
//! `format=csv` (or `Accept: text/csv`) a spreadsheet German Excel opens.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::answer::{EndingPage, FailedInstallPage, MissingLicencePage};
use super::auth::Caller;
use super::authz;
use crate::devices::DeviceFilter;
use crate::error::{ApiError, ApiResult};
use crate::paging::Page;
use crate::reports;
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::get().to(index))
        .route("/reports/unseen", web::get().to(unseen))
        .route("/reports/failed-installs", web::get().to(failed_installs))
        .route("/reports/missing-licences", web::get().to(missing_licences))
        .route("/reports/ending", web::get().to(ending));
}

/// The filters every report takes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Days back (not seen, failed installs: default 30 and 7) or ahead (ending:
    /// default 60); 1 to 3650.
    pub days: Option<i64>,
    /// Only this school (within the caller's scope).
    pub school_id: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `csv`: every row (not a page) as a spreadsheet German Excel opens (`;`, UTF-8
    /// with BOM); also chosen by `Accept: text/csv`. Default `json`.
    pub format: Option<String>,
}

/// One report tafel offers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportInfo {
    /// Its path.
    pub path: &'static str,
    /// What it lists.
    pub title: &'static str,
    /// Default `days`.
    pub days: i64,
}

/// The reports.
const REPORTS: &[ReportInfo] = &[
    ReportInfo {
        path: "/api/v1/reports/unseen",
        title: "iPads not seen for `days` days (the device list with last_seen_before)",
        days: 30,
    },
    ReportInfo {
        path: "/api/v1/reports/failed-installs",
        title: "Apps and profiles an iPad failed to install in the last `days` days, not installed since",
        days: 7,
    },
    ReportInfo {
        path: "/api/v1/reports/missing-licences",
        title: "iPads waiting for an Apps and Books licence",
        days: 0,
    },
    ReportInfo {
        path: "/api/v1/reports/ending",
        title: "Push certificates, content tokens, Apple School Manager tokens and tafel's certificates ending within `days` days",
        days: 60,
    },
];

/// The list of reports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportList {
    /// Every report.
    pub items: &'static [ReportInfo],
}

/// Rows at most in one export.
const MAX_EXPORT: usize = 100_000;

/// Reports are admin work; teachers see their lessons' readiness instead.
fn may_report(caller: &Caller) -> ApiResult<()> {
    authz::require_admin(&caller.0, "do not read the service desk's reports")
}

/// Checked `days`: `default` when absent.
fn days(q: &ReportQuery, default: i64) -> ApiResult<i64> {
    let d = q.days.unwrap_or(default);
    if (1..=reports::MAX_DAYS).contains(&d) {
        Ok(d)
    } else {
        Err(ApiError::invalid_field(
            "days",
            format!("between 1 and {}", reports::MAX_DAYS),
        ))
    }
}

/// Whether the caller asked for a spreadsheet: `format=csv` or `Accept: text/csv`.
pub(crate) fn wants_csv(req: &HttpRequest, format: Option<&str>) -> ApiResult<bool> {
    let accepts_csv = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    match format {
        None => Ok(accepts_csv),
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::invalid_field("format", "csv or json")),
    }
}

/// A CSV file as a download named `<name>-<date>.csv`.
pub(crate) fn csv_download(name: &str, file: Vec<u8>) -> HttpResponse {
    let name = format!("{name}-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(file)
}

#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", operation_id = "list_reports",
    summary = "The ready-made reports",
    responses(
        (status = 200, description = "Every report with its path and default days", body = ReportList),
        (status = 403, description = "Teachers do not read reports", body = ApiError),
    ),
    security(("bearer" = [])))]
async fn index(caller: Caller) -> ApiResult<HttpResponse> {
    may_report(&caller)?;
    Ok(HttpResponse::Ok().json(ReportList { items: REPORTS }))
}

#[utoipa::path(get, path = "/api/v1/reports/unseen", tag = "reports", operation_id = "report_unseen",
    summary = "iPads not seen for `days` days (default 30): the device list, as its `last_seen_before` filter gives it",
    params(ReportQuery),
    responses(
        (status = 200, description = "One page of devices, or every one as CSV", content(
            (super::answer::DevicePage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`days`, `limit`, `cursor` or `format` invalid", body = ApiError),
        (status = 403, description = "Teachers do not read reports", body = ApiError),
    ),
    security(("bearer" = [])))]
async fn unseen(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: crate::error::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    may_report(&caller)?;
    let q = q.into_inner();
    let days = days(&q, 30)?;
    let f = DeviceFilter {
        school_id: q.school_id,
        last_seen_before: Some(chrono::Utc::now() - chrono::Duration::days(days)),
        limit: q.limit,
        cursor: q.cursor,
        format: q.format,
        ..DeviceFilter::default()
    };
    super::devices::list_as(&state, &caller, &req, f, "nicht-gesehen").await
}

#[utoipa::path(get, path = "/api/v1/reports/failed-installs", tag = "reports", operation_id = "report_failed_installs",
    summary = "Apps and profiles an iPad answered with an error in the last `days` days (default 7) and that no later install fixed",
    params(ReportQuery),
    responses(
        (status = 200, description = "One page (by device), or every row as CSV", content(
            (FailedInstallPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`days`, `limit`, `cursor` or `format` invalid", body = ApiError),
        (status = 403, description = "Teachers do not read reports", body = ApiError),
    ),
    security(("bearer" = [])))]
async fn failed_installs(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: crate::error::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    may_report(&caller)?;
    let q = q.into_inner();
    let since = chrono::Utc::now() - chrono::Duration::days(days(&q, 7)?);
    let p = caller.0.clone();
    let school = q.school_id.clone();
    let load = move |conn: &mut crate::db::DbConn, limit: i64, cursor: Option<String>| {
        reports::failed_installs(
            conn,
            authz::list_scope(&p),
            school.as_deref(),
            since,
            limit,
            cursor.as_deref(),
        )
    };
    let csv = Spreadsheet {
        file: "fehlgeschlagene-installationen",
        header: &[
            "Seriennummer",
            "Name",
            "Schule",
            "Objekt",
            "Befehl",
            "Fehlgeschlagen",
            "Meldung des iPads",
        ],
        row: |r: &reports::FailedInstall| {
            vec![
                r.device.serial_number.clone().unwrap_or_default(),
                r.device.name.clone().unwrap_or_default(),
                r.device.school.clone().unwrap_or_default(),
                r.item.clone(),
                r.request_type.clone(),
                berlin(r.failed_at),
                r.error.clone().unwrap_or_default(),
            ]
        },
    };
    paged::<_, FailedInstallPage>(&state, &req, q, load, csv).await
}

/// A time as the spreadsheets show it (Europe/Berlin).
fn berlin(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    crate::export::local_time(at.map(|t| t.naive_utc()), chrono_tz::Europe::Berlin)
}

/// How a report's rows become a spreadsheet.
struct Spreadsheet<T> {
    /// File name (before the date).
    file: &'static str,
    /// Column names.
    header: &'static [&'static str],
    /// A row's cells.
    row: fn(&T) -> Vec<String>,
}

/// A paged report: one page as JSON (`P`), or every row as a spreadsheet.
async fn paged<T, P>(
    state: &AppState,
    req: &HttpRequest,
    q: ReportQuery,
    load: impl Fn(&mut crate::db::DbConn, i64, Option<String>) -> diesel::QueryResult<Page<T>>
        + Send
        + 'static,
    sheet: Spreadsheet<T>,
) -> ApiResult<HttpResponse>
where
    T: Send + 'static,
    P: From<Page<T>> + Serialize,
{
    let csv = wants_csv(req, q.format.as_deref())?;
    let limit = crate::paging::limit(q.limit).map_err(|e| ApiError::invalid_field("limit", e))?;
    // Both paged reports' cursors are two words (`<device id> <command or app>`).
    if q.cursor
        .as_deref()
        .is_some_and(|c| c.len() > 200 || c.split(' ').filter(|w| !w.is_empty()).count() != 2)
    {
        return Err(ApiError::invalid_field(
            "cursor",
            "not a cursor of this report: pass next_cursor as it came",
        ));
    }
    if csv {
        let rows = state
            .db
            .run(move |conn| all_pages(|c| load(conn, crate::paging::MAX, c), None))
            .await?;
        let file = crate::export::csv(sheet.header, rows.iter().map(sheet.row))
            .map_err(ApiError::internal)?;
        return Ok(csv_download(sheet.file, file));
    }
    let cursor = q.cursor;
    let page = state
        .db
        .run(move |conn| load(conn, limit, cursor).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(P::from(page)))
}

/// Every row of a paged report, page after page; 400 past [`MAX_EXPORT`].
fn all_pages<T>(
    mut page: impl FnMut(Option<String>) -> diesel::QueryResult<Page<T>>,
    mut cursor: Option<String>,
) -> ApiResult<Vec<T>> {
    let mut out = Vec::new();
    loop {
        let p = page(cursor)?;
        out.extend(p.items);
        if out.len() > MAX_EXPORT {
            return Err(ApiError::bad_request(format!(
                "more than {MAX_EXPORT} rows: narrow it with school_id or days"
            )));
        }
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/reports/missing-licences", tag = "reports", operation_id = "report_missing_licences",
    summary = "iPads waiting for an Apps and Books licence (from the licence service's last pass)",
    params(ReportQuery),
    responses(
        (status = 200, description = "One page (by device and app), or every row as CSV", content(
            (MissingLicencePage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`limit`, `cursor` or `format` invalid", body = ApiError),
        (status = 403, description = "Teachers do not read reports", body = ApiError),
    ),
    security(("bearer" = [])))]
async fn missing_licences(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: crate::error::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    may_report(&caller)?;
    let q = q.into_inner();
    if q.days.is_some() {
        return Err(ApiError::invalid_field(
            "days",
            "this report has no days: it lists who waits now",
        ));
    }
    let blocked = state.licences.blocked();
    let p = caller.0.clone();
    let school = q.school_id.clone();
    let load = move |conn: &mut crate::db::DbConn, limit: i64, cursor: Option<String>| {
        reports::missing_licences(
            conn,
            authz::list_scope(&p),
            school.as_deref(),
            &blocked,
            limit,
            cursor.as_deref(),
        )
    };
    let csv = Spreadsheet {
        file: "fehlende-lizenzen",
        header: &[
            "Seriennummer",
            "Name",
            "Schule",
            "App",
            "App-Store-ID",
            "Gebraucht ab",
            "Grund",
        ],
        row: |r: &reports::MissingLicence| {
            vec![
                r.device.serial_number.clone().unwrap_or_default(),
                r.device.name.clone().unwrap_or_default(),
                r.device.school.clone().unwrap_or_default(),
                r.app.clone().unwrap_or_default(),
                r.adam_id.clone(),
                berlin(Some(r.needed_from)),
                r.reason.clone(),
            ]
        },
    };
    paged::<_, MissingLicencePage>(&state, &req, q, load, csv).await
}

#[utoipa::path(get, path = "/api/v1/reports/ending", tag = "reports", operation_id = "report_ending",
    summary = "Push certificates, Apps and Books content tokens, Apple School Manager tokens (and for district admins tafel's own certificates) ending within `days` days (default 60) or ended, soonest first",
    params(ReportQuery),
    responses(
        (status = 200, description = "One page, or every row as CSV", content(
            (EndingPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`days`, `limit`, `cursor`, `school_id` or `format` invalid", body = ApiError),
        (status = 403, description = "Teachers do not read reports", body = ApiError),
    ),
    security(("bearer" = [])))]
async fn ending(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: crate::error::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    may_report(&caller)?;
    let q = q.into_inner();
    if q.school_id.is_some() {
        return Err(ApiError::invalid_field(
            "school_id",
            "certificates and tokens belong to the authority, not to a school",
        ));
    }
    let days = days(&q, 60)?;
    let csv = wants_csv(&req, q.format.as_deref())?;
    let limit = crate::paging::limit(q.limit).map_err(|e| ApiError::invalid_field("limit", e))?;
    let now = chrono::Utc::now();
    let p = caller.0.clone();
    let mut rows = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok(reports::ending(conn, authz::list_scope(&p), now, days)?)
        })
        .await?;
    if authz::sees_district(&caller.0) {
        let certs = crate::pki::lifecycle::status(&state.certificates, now);
        rows.extend(reports::tafel_certificates(&certs, days));
    }
    rows.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
    if csv {
        let file = crate::export::csv(
            &["Art", "Name", "Schulträger", "Endet", "Tage übrig"],
            rows.iter().map(|r| {
                vec![
                    r.kind.german().to_owned(),
                    r.name.clone(),
                    r.tenant_id.clone().unwrap_or_default(),
                    berlin(Some(r.ends_at)),
                    if r.days_left < 0 {
                        "abgelaufen".to_owned()
                    } else {
                        r.days_left.to_string()
                    },
                ]
            }),
        )
        .map_err(ApiError::internal)?;
        return Ok(csv_download("ablaufend", file));
    }
    // Few rows: the page is cut from the sorted list; the cursor is the last row's
    // position in it (`<rfc3339> <id>`).
    if let Some(c) = &q.cursor {
        let (at, id) = c
            .split_once(' ')
            .and_then(|(at, id)| Some((chrono::DateTime::parse_from_rfc3339(at).ok()?, id)))
            .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor of this report"))?;
        let at = at.with_timezone(&chrono::Utc);
        rows.retain(|r| (r.ends_at, r.id.as_str()) > (at, id));
    }
    let page = Page::from_rows(rows, limit, |r| {
        format!(
            "{} {}",
            r.ends_at
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            r.id
        )
    });
    Ok(HttpResponse::Ok().json(EndingPage::from(page)))
}
