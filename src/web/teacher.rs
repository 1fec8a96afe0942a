//! The teachers' pages, for phones and iPads: my classes, a request for a lesson, and
//! whether the iPads are ready for it (refreshing itself).

use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

use super::admin::{lesson_when, periods_of, request_lines, Choice, RequestLine};
use super::i18n::Tr;
use super::session::Viewer;
use super::{field, fields, here, render, see_other, Chrome, OrPage, PageResult, WebError};
use crate::api::authz;
use crate::assign::TargetKind;
use crate::error::ApiError;
use crate::lessons::readiness::{DeviceState, Readiness};
use crate::lessons::NewRequest;
use crate::state::AppState;

/// Routes under `/unterricht`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(my_classes))
        .route("", web::post().to(create))
        .route("/neu", web::get().to(new_request))
        .route("/{id}", web::get().to(request_page))
        .route("/{id}/bereitschaft", web::get().to(readiness_part))
        .route("/{id}/zurueckziehen", web::post().to(withdraw));
}

/// A class of the teacher.
pub struct ClassLine {
    /// Name.
    pub name: String,
    /// School year.
    pub year: String,
    /// Its iPads.
    pub devices: i64,
}

#[derive(Template)]
#[template(path = "teacher/classes.html")]
struct ClassesPage {
    t: Tr,
    chrome: Option<Chrome>,
    classes: Vec<ClassLine>,
    requests: Vec<RequestLine>,
}

/// `GET /unterricht`: my classes and my requests.
async fn my_classes(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    let t = v.tr;
    let p = v.p.clone();
    let (classes, list) = state
        .db
        .run(move |conn| -> Result<_, ApiError> {
            use crate::org::classes::{self as c, Membership};
            let mut classes = vec![];
            for k in c::classes_of_teacher(conn, &p.user_id)? {
                classes.push(ClassLine {
                    devices: c::device_count(conn, Membership::Class(&k.id))?,
                    name: k.name,
                    year: k.school_year,
                });
            }
            let scope = crate::lessons::RequestScope {
                teacher: Some(&p.user_id),
                ..Default::default()
            };
            let list = crate::lessons::list(conn, &scope, None, 100)?.items;
            Ok((classes, list))
        })
        .await
        .or_page(t)?;
    let mut views = crate::api::lessons::present(&state, list)
        .await
        .or_page(t)?;
    // The newest first: what a teacher just asked for is what they look for.
    views.reverse();
    render(&ClassesPage {
        t,
        chrome: Some(Chrome::new(&v, "/unterricht", &here(&req))),
        classes,
        requests: request_lines(t, views),
    })
}

/// An app to choose.
pub struct AppChoice {
    /// Catalog id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its first letter, as its badge where tafel has no icon.
    pub initial: String,
    /// Its icon (a path on tafel), where tafel has one.
    pub icon: Option<String>,
    /// On the school's list: no admin needs to approve it.
    pub approved: bool,
}

#[derive(Template)]
#[template(path = "teacher/new.html")]
struct NewRequestPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    targets: Vec<Choice>,
    date: String,
    periods: Vec<(String, String)>,
    apps: Vec<AppChoice>,
}

/// `GET /unterricht/neu`: class or cart, date, periods, apps.
async fn new_request(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    let t = v.tr;
    let p = v.p.clone();
    let school = v.p.school_id.clone().ok_or_else(|| {
        WebError::Api(
            t,
            ApiError::forbidden("lesson requests are made by a school's teachers"),
        )
    })?;
    let scope = authz::item_scope(&v.p);
    let (targets, settings, apps) = state
        .db
        .run(move |conn| -> Result<_, ApiError> {
            use crate::org::classes as c;
            let classes = if authz::is_teacher(&p) {
                c::classes_of_teacher(conn, &p.user_id)?
            } else {
                c::classes_of_school(conn, &school, None)?
            };
            let mut targets: Vec<(String, String)> = classes
                .into_iter()
                .map(|k| (format!("class:{}", k.id), k.name))
                .collect();
            for g in c::groups_of_school(conn, &school)? {
                targets.push((format!("group:{}", g.id), g.name));
            }
            let settings = crate::lessons::settings(conn, &school)?;
            let f = crate::catalog::CatalogFilter::default();
            let apps = crate::catalog::list_apps(conn, scope.as_ref(), &f, 500)?.items;
            let adams: Vec<String> = apps.iter().filter_map(|a| a.adam_id.clone()).collect();
            let icons = crate::catalog::icons::with_icons(conn, &adams)?;
            Ok((targets, settings, (apps, icons)))
        })
        .await
        .or_page(t)?;
    let approved = &settings.approved_app_ids;
    let (apps, icons) = apps;
    let mut apps: Vec<AppChoice> = apps
        .into_iter()
        .map(|a| AppChoice {
            icon: a
                .adam_id
                .as_ref()
                .filter(|adam| icons.contains(*adam))
                .map(|adam| format!("/static/icons/{adam}")),
            approved: approved.contains(&a.id),
            initial: a.name.chars().next().map(String::from).unwrap_or_default(),
            id: a.id,
            name: a.name,
        })
        .collect();
    apps.sort_by(|a, b| {
        b.approved
            .cmp(&a.approved)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    let tomorrow = (chrono::Utc::now().with_timezone(&super::i18n::BERLIN)
        + chrono::Duration::days(1))
    .date_naive();
    render(&NewRequestPage {
        t,
        chrome: Some(Chrome::new(&v, "/unterricht/neu", &here(&req))),
        csrf: v.csrf.clone(),
        targets: targets
            .into_iter()
            .map(|(value, name)| Choice {
                label: if value.starts_with("class:") {
                    t.with("target-class", &[("name", name.into())])
                } else {
                    t.with("target-cart", &[("name", name.into())])
                },
                value,
                selected: false,
            })
            .collect(),
        date: tomorrow.format("%Y-%m-%d").to_string(),
        periods: periods_of(&settings),
        apps,
    })
}

/// Ticked periods (in the school's order) as a request's `periods`: "2" or "2-3"; a gap
/// is refused (two lessons are two requests).
pub fn period_range(ticked: &[String], order: &[String]) -> Result<String, &'static str> {
    let idx: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, p)| ticked.contains(p))
        .map(|(i, _)| i)
        .collect();
    let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
        return Err("tick the lesson's periods");
    };
    if last - first + 1 != idx.len() {
        return Err("periods must follow each other");
    }
    Ok(if first == last {
        order[first].clone()
    } else {
        format!("{}-{}", order[first], order[last])
    })
}

/// `POST /unterricht`: the API's request rules, then the request's page.
async fn create(
    v: Viewer,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let t = v.tr;
    let form = form.into_inner();
    let one = |k: &str| field(&form, k);
    let all = |k: &str| fields(&form, k);
    v.check_csrf(&one("csrf").unwrap_or_default())?;
    let bad = |f: &str, m: &str| WebError::Api(t, ApiError::invalid_field(f, m));
    let (kind, target_id) = one("target")
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .ok_or_else(|| bad("target", "choose a class or cart"))?;
    let target_kind = match kind.as_str() {
        "class" => TargetKind::Class,
        "group" => TargetKind::Group,
        _ => return Err(bad("target", "class or cart")),
    };
    let app_ids = all("app");
    if app_ids.is_empty() {
        return Err(bad("app", "choose at least one app"));
    }
    let ticked = all("period");
    let periods = if ticked.is_empty() {
        None
    } else {
        let school = v.p.school_id.clone().unwrap_or_default();
        let settings = state
            .db
            .run(move |conn| crate::lessons::settings(conn, &school).map_err(ApiError::from))
            .await
            .or_page(t)?;
        let order: Vec<String> = periods_of(&settings).into_iter().map(|(n, _)| n).collect();
        Some(period_range(&ticked, &order).map_err(|m| bad("period", m))?)
    };
    let input = NewRequest {
        target_kind,
        target_id,
        app_ids,
        date: one("date").ok_or_else(|| bad("date", "choose the lesson's day"))?,
        start: if periods.is_none() {
            one("start")
        } else {
            None
        },
        end: if periods.is_none() { one("end") } else { None },
        periods,
        repeat_until: None,
        remove_after: Some(one("keep").is_none()),
        note: one("note"),
    };
    let view = crate::api::lessons::request_as(&state, &v.p, input)
        .await
        .or_page(t)?;
    see_other(&format!("/unterricht/{}", view.request.id))
}

/// A device's line of the readiness.
pub struct ReadyLine {
    /// Name.
    pub name: String,
    /// State, in words.
    pub state: String,
    /// CSS class of the state.
    pub class: &'static str,
}

/// The readiness block (also the htmx fragment).
#[derive(Template)]
#[template(path = "teacher/readiness.html")]
struct ReadinessPart {
    t: Tr,
    id: String,
    summary: String,
    all_ready: bool,
    lines: Vec<ReadyLine>,
}

fn readiness_part_of(t: Tr, id: String, r: Readiness) -> ReadinessPart {
    let summary = {
        let mut s = t.with(
            "ready-summary",
            &[
                ("ready", (r.ready as i64).into()),
                ("devices", (r.devices as i64).into()),
            ],
        );
        for (n, key) in [
            (r.installing, "ready-installing"),
            (r.pending, "ready-pending"),
            (r.failed, "ready-failed"),
            (r.no_licence, "ready-no-licence"),
        ] {
            if n > 0 {
                s.push_str(", ");
                s.push_str(&t.n(key, n as i64));
            }
        }
        s
    };
    let lines = r
        .items
        .into_iter()
        .map(|d| {
            let (key, class) = match d.state {
                DeviceState::Ready => ("state-ready", "ok"),
                DeviceState::Installing => ("state-installing", "busy"),
                DeviceState::Pending => ("state-pending", "busy"),
                DeviceState::Failed => ("state-failed", "bad"),
                DeviceState::NoLicence => ("state-no-licence", "bad"),
            };
            let mut state = t.t(key);
            if let Some(since) = d.offline_since {
                state.push_str(" · ");
                state.push_str(&t.with(
                    "state-offline-since",
                    &[("when", t.datetime(since, super::i18n::BERLIN).into())],
                ));
            }
            ReadyLine {
                name: d.name.or(d.udid).unwrap_or_else(|| "–".into()),
                state,
                class,
            }
        })
        .collect();
    ReadinessPart {
        t,
        id,
        summary,
        all_ready: r.devices > 0 && r.ready == r.devices,
        lines,
    }
}

#[derive(Template)]
#[template(path = "teacher/request.html")]
struct RequestPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    line: RequestLine,
    when: String,
    open: bool,
    /// The readiness block, rendered (the same HTML htmx refreshes).
    readiness: String,
}

/// `GET /unterricht/{id}`: the request and the readiness of its iPads.
async fn request_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let t = v.tr;
    let id = path.into_inner();
    let r = crate::api::lessons::load_as(&state, &v.p, id.clone(), authz::Action::View)
        .await
        .or_page(t)?;
    let when = lesson_when(t, &r);
    let open = matches!(
        r.status,
        crate::lessons::RequestStatus::Pending | crate::lessons::RequestStatus::Approved
    );
    let views = crate::api::lessons::present(&state, vec![r])
        .await
        .or_page(t)?;
    let line = request_lines(t, views).pop().ok_or(WebError::Internal(t))?;
    let ready = crate::api::lessons::readiness_as(&state, &v.p, id.clone())
        .await
        .or_page(t)?;
    let section = if authz::is_teacher(&v.p) {
        "/unterricht"
    } else {
        "/admin/antraege"
    };
    render(&RequestPage {
        t,
        chrome: Some(Chrome::new(&v, section, &here(&req))),
        csrf: v.csrf.clone(),
        line,
        when,
        open,
        readiness: readiness_part_of(t, id, ready).render().map_err(|e| {
            tracing::error!(error = %e, "template");
            WebError::Internal(t)
        })?,
    })
}

/// `GET /unterricht/{id}/bereitschaft`: the readiness block alone (htmx refreshes it).
async fn readiness_part(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let t = v.tr;
    let id = path.into_inner();
    let ready = crate::api::lessons::readiness_as(&state, &v.p, id.clone())
        .await
        .or_page(t)?;
    render(&readiness_part_of(t, id, ready))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /unterricht/{id}/zurueckziehen`: withdraw the request.
async fn withdraw(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let id = path.into_inner();
    crate::api::lessons::cancel_as(&state, &v.p, id.clone())
        .await
        .or_page(v.tr)?;
    see_other(&format!("/unterricht/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_periods_become_a_range() {
        let order: Vec<String> = ["1", "2", "3", "4"].iter().map(|s| s.to_string()).collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(period_range(&s(&["3", "2"]), &order), Ok("2-3".into()));
        assert_eq!(period_range(&s(&["4"]), &order), Ok("4".into()));
        assert!(period_range(&s(&["1", "3"]), &order).is_err());
        assert!(period_range(&[], &order).is_err());
    }
}
