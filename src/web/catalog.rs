//! The catalog's pages: apps and profiles (from templates, their variables as form
//! fields).
//!
//! Every page calls the API's cores (`api::catalog::*_as`), so a form can do exactly
//! what the same person could do with a token, and refuses with the API's reasons.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

use super::admin::{admin_only, here, nonempty, schedule_words, with_db, Choice};
use super::i18n::{Tr, BERLIN};
use super::session::Viewer;
use super::{
    field, render, render_with, see_other, url_encode, Chrome, OrPage, PageResult, WebError,
};
use crate::accounts::Principal;
use crate::api::auth::Caller;
use crate::api::authz::{self, Action, Place};
use crate::api::catalog as core;
use crate::catalog::profiles::{Variable, VariableKind};
use crate::catalog::{self, CatalogFilter, NewApp};
use crate::error::{ApiError, ErrorCode};
use crate::org::Tenant;
use crate::state::AppState;

/// Apps or profiles per page of the catalog.
const PAGE: i64 = 50;

/// The navigation entry of every catalog page.
const SECTION: &str = "/admin/katalog";

/// Routes under `/admin/katalog`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/katalog", web::get().to(catalog_page))
        .route("/katalog/apps/neu", web::get().to(new_app))
        .route("/katalog/apps", web::post().to(create_app))
        .route("/katalog/apps/{id}", web::get().to(app_page))
        .route("/katalog/apps/{id}", web::post().to(update_app))
        .route("/katalog/apps/{id}/loeschen", web::post().to(delete_app))
        .route("/katalog/vorlagen", web::get().to(template_list))
        .route("/katalog/vorlagen/{name}", web::get().to(template_form))
        .route("/katalog/vorlagen/{name}", web::post().to(from_template))
        .route("/katalog/profile/{id}", web::get().to(profile_page))
        .route(
            "/katalog/profile/{id}/loeschen",
            web::post().to(delete_profile),
        );
}

/// Whether a checkbox was ticked.
fn ticked(fields: &[(String, String)], name: &str) -> bool {
    fields.iter().any(|(n, _)| n == name)
}

/// The form's CSRF token is the session's (403 otherwise, before anything is read).
fn csrf_ok(v: &Viewer, fields: &[(String, String)]) -> Result<(), WebError> {
    v.check_csrf(&field(fields, "csrf").unwrap_or_default())
}

/// Where an item belongs, in the page's words.
fn scope_words(t: Tr, tenant: Option<String>, school: Option<String>) -> String {
    match (tenant, school) {
        (_, Some(s)) => t.with("catalog-scope-school", &[("name", s.into())]),
        (Some(a), None) => t.with("catalog-scope-authority", &[("name", a.into())]),
        (None, None) => t.t("catalog-district-wide"),
    }
}

/// Where `p` may add an app: the authorities they manage (value: its id), and the whole
/// district for district admins (value: empty) — the API's `catalog_place` rule.
fn app_places(t: Tr, p: &Principal, tenants: Vec<Tenant>, chosen: &str) -> Vec<Choice> {
    let mut out = vec![];
    if authz::require(p, Action::ManageDistrict, Place::default()).is_ok() {
        out.push(Choice {
            value: String::new(),
            label: t.t("catalog-district-wide"),
            selected: chosen.is_empty(),
        });
    }
    out.extend(
        tenants
            .into_iter()
            .filter(|x| authz::require(p, Action::ManageTenant, Place::tenant(&x.id)).is_ok())
            .map(|x| Choice {
                selected: x.id == chosen,
                value: x.id,
                label: x.name,
            }),
    );
    out
}

async fn tenants(state: &AppState, t: Tr) -> Result<Vec<Tenant>, WebError> {
    with_db(state, t, |conn| Ok(crate::org::list_tenants(conn)?)).await
}

/// The schools whose profiles `p` may render (value: id, label: school and authority).
async fn school_choices(
    state: &AppState,
    v: &Viewer,
    chosen: &str,
) -> Result<Vec<Choice>, WebError> {
    let schools = crate::api::org::schools_as(state, &Caller(v.p.clone()), None)
        .await
        .or_page(v.tr)?;
    Ok(schools
        .into_iter()
        .filter(|s| {
            authz::require(
                &v.p,
                Action::ManageSchool,
                Place::school(&s.school.tenant_id, &s.school.id),
            )
            .is_ok()
        })
        .map(|s| Choice {
            selected: s.school.id == chosen,
            label: match s.tenant_name {
                Some(a) => format!("{} ({a})", s.school.name),
                None => s.school.name,
            },
            value: s.school.id,
        })
        .collect())
}

/// A refused form, shown again: a heading in the page's words and the API's reason.
pub struct Refusal {
    /// What happened ("Diese App ist schon im Katalog").
    pub heading: String,
    /// The API's reason.
    pub reason: String,
}

/// The status and refusal of an API error a form can be corrected after (400, 409);
/// other errors (403, 404, 500) become the error page.
fn refusal(t: Tr, e: ApiError, conflict: &str) -> Result<(StatusCode, Refusal), WebError> {
    let heading = match e.code {
        ErrorCode::Conflict => t.t(conflict),
        ErrorCode::BadRequest => t.t("catalog-not-saved"),
        _ => return Err(e).or_page(t),
    };
    let status = actix_web::ResponseError::status_code(&e);
    Ok((
        status,
        Refusal {
            heading,
            reason: e.message,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// The catalog

/// An app of the list.
pub struct AppLine {
    /// Id (for its page).
    pub id: String,
    /// Name.
    pub name: String,
    /// Bundle identifier.
    pub bundle_id: String,
    /// App Store id (or a dash for an in-house app).
    pub adam_id: String,
    /// "ja"/"nein".
    pub licensed: String,
    /// Its authority, or district-wide.
    pub scope: String,
}

/// A profile of the list.
pub struct ProfileLine {
    /// Id (for its page).
    pub id: String,
    /// Name.
    pub name: String,
    /// PayloadIdentifier.
    pub identifier: String,
    /// Its version (the start of its PayloadUUID).
    pub version: String,
    /// When it last changed.
    pub updated: String,
    /// Its school or authority, or district-wide.
    pub scope: String,
}

#[derive(Template)]
#[template(path = "admin/catalog.html")]
struct CatalogPage {
    t: Tr,
    chrome: Option<Chrome>,
    q: String,
    apps: Vec<AppLine>,
    profiles: Vec<ProfileLine>,
    next_apps: Option<String>,
    next_profiles: Option<String>,
    may_add_app: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    weiter: Option<String>,
    weiter_profile: Option<String>,
}

/// The short form of a profile version.
fn version_words(uuid: Option<&str>) -> String {
    uuid.map(|u| u.chars().take(8).collect())
        .unwrap_or_else(|| "–".to_owned())
}

/// `GET /admin/katalog`: the apps and profiles the admin may use (the API's lists and
/// scope), 50 a page each, searchable by name or identifier.
async fn catalog_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let q = q.into_inner();
    let text = nonempty(&q.q);
    let scope = authz::item_scope(&v.p);
    let (apps_f, profiles_f) = (
        CatalogFilter {
            q: text.clone(),
            cursor: nonempty(&q.weiter),
            ..Default::default()
        },
        CatalogFilter {
            q: text.clone(),
            cursor: nonempty(&q.weiter_profile),
            ..Default::default()
        },
    );
    let (apps, profiles, tenants) = with_db(&state, t, move |conn| {
        let apps = catalog::list_apps(conn, scope.as_ref(), &apps_f, PAGE)?
            .try_map(|l| catalog::apps_with_names(conn, l))?;
        let profiles = catalog::list_profiles(conn, scope.as_ref(), &profiles_f, PAGE)?
            .try_map(|l| catalog::profiles_with_names(conn, l))?;
        Ok((apps, profiles, crate::org::list_tenants(conn)?))
    })
    .await?;
    let search = text
        .as_deref()
        .map(|s| format!("&q={}", url_encode(s)))
        .unwrap_or_default();
    render(&CatalogPage {
        t,
        chrome: Some(Chrome::new(&v, SECTION, &here(&req))),
        q: text.unwrap_or_default(),
        may_add_app: !app_places(t, &v.p, tenants, "").is_empty(),
        next_apps: apps
            .next_cursor
            .map(|c| format!("/admin/katalog?weiter={}{search}", url_encode(&c))),
        next_profiles: profiles
            .next_cursor
            .map(|c| format!("/admin/katalog?weiter_profile={}{search}", url_encode(&c))),
        apps: apps
            .items
            .into_iter()
            .map(|a| AppLine {
                scope: scope_words(t, a.tenant_name, None),
                licensed: t.t(if a.app.licensed { "yes" } else { "no" }),
                adam_id: a.app.adam_id.unwrap_or_else(|| "–".into()),
                id: a.app.id,
                name: a.app.name,
                bundle_id: a.app.bundle_id,
            })
            .collect(),
        profiles: profiles
            .items
            .into_iter()
            .map(|p| ProfileLine {
                scope: scope_words(t, p.tenant_name, p.school_name),
                version: version_words(p.profile.payload_uuid.as_deref()),
                updated: t.datetime(p.profile.updated_at, BERLIN),
                id: p.profile.id,
                name: p.profile.name,
                identifier: p.profile.identifier,
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------
// A new app

#[derive(Template)]
#[template(path = "admin/catalog_app_new.html")]
struct NewAppPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    refusal: Option<Refusal>,
    name: String,
    bundle_id: String,
    adam_id: String,
    licensed: bool,
    places: Vec<Choice>,
}

/// The form for a new app, empty or as it was sent.
async fn app_form(
    req: &HttpRequest,
    v: &Viewer,
    state: &AppState,
    status: StatusCode,
    sent: NewAppPage,
    tenant: &str,
) -> PageResult {
    let places = app_places(v.tr, &v.p, tenants(state, v.tr).await?, tenant);
    if places.is_empty() {
        return Err(WebError::Api(
            v.tr,
            ApiError::forbidden("apps are added by the admins of a school authority"),
        ));
    }
    let page = NewAppPage {
        chrome: Some(Chrome::new(v, SECTION, &here(req))),
        places,
        ..sent
    };
    Ok(render_with(status, &page))
}

/// `GET /admin/katalog/apps/neu`: name, bundle id, App Store id, licence, authority.
async fn new_app(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let blank = NewAppPage {
        t: v.tr,
        chrome: None,
        csrf: v.csrf.clone(),
        refusal: None,
        name: String::new(),
        bundle_id: String::new(),
        adam_id: String::new(),
        licensed: true,
        places: vec![],
    };
    let mine = v.p.tenant_id.clone().unwrap_or_default();
    app_form(&req, &v, &state, StatusCode::OK, blank, &mine).await
}

/// `POST /admin/katalog/apps`: the API's `create_app_as`; a refusal shows the form again
/// with the reason, nothing stored.
async fn create_app(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let f = form.into_inner();
    csrf_ok(&v, &f)?;
    let t = v.tr;
    let tenant = field(&f, "authority").unwrap_or_default();
    let input = NewApp {
        tenant_id: nonempty(&Some(tenant.clone())),
        name: field(&f, "name").unwrap_or_default(),
        bundle_id: field(&f, "bundle_id").unwrap_or_default(),
        adam_id: field(&f, "adam_id"),
        manifest_url: None,
        management_flags: None,
        removable: None,
        configuration: None,
        licensed: Some(ticked(&f, "licensed")),
    };
    let sent = NewAppPage {
        t,
        chrome: None,
        csrf: v.csrf.clone(),
        refusal: None,
        name: input.name.clone(),
        bundle_id: input.bundle_id.clone(),
        adam_id: input.adam_id.clone().unwrap_or_default(),
        licensed: ticked(&f, "licensed"),
        places: vec![],
    };
    match core::create_app_as(&state, &v.p, input).await {
        Ok(app) => see_other(&format!("/admin/katalog/apps/{}", app.id)),
        Err(e) => {
            let (status, r) = refusal(t, e, "catalog-app-exists")?;
            let sent = NewAppPage {
                refusal: Some(r),
                ..sent
            };
            app_form(&req, &v, &state, status, sent, &tenant).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// One app

/// An assignment of an item.
pub struct UseLine {
    /// The class, cart, school … it is assigned to.
    pub target: String,
    /// When.
    pub schedule: String,
    /// The school.
    pub school: String,
}

/// A label and a value.
pub struct Fact {
    /// Label.
    pub label: String,
    /// Value.
    pub value: String,
}

#[derive(Template)]
#[template(path = "admin/catalog_app.html")]
struct AppPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    name: String,
    licensed: bool,
    facts: Vec<Fact>,
    uses: Vec<UseLine>,
    may_change: bool,
}

/// The assignments of catalog item `item_id` in `p`'s scope.
async fn uses_of(state: &AppState, v: &Viewer, item_id: String) -> Result<Vec<UseLine>, WebError> {
    let t = v.tr;
    let scope = authz::item_scope(&v.p);
    let list = with_db(state, t, move |conn| {
        let f = crate::assign::AssignmentFilter {
            item_id: Some(item_id),
            ..Default::default()
        };
        let page = crate::assign::list(conn, scope.as_ref(), &f, 500)?;
        Ok(crate::assign::with_names(conn, page.items)?)
    })
    .await?;
    Ok(list
        .into_iter()
        .map(|a| UseLine {
            target: a
                .target_name
                .clone()
                .unwrap_or_else(|| a.assignment.target_id.clone()),
            schedule: schedule_words(t, &a.assignment.schedule),
            school: a.school_name.clone().unwrap_or_default(),
        })
        .collect())
}

/// `GET /admin/katalog/apps/{id}`: the app, where it is assigned, rename, licence need,
/// delete.
async fn app_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let app = core::load_app(&state, &v.p, path.into_inner())
        .await
        .or_page(t)?;
    let tenant_name = match &app.tenant_id {
        Some(id) => {
            let id = id.clone();
            with_db(&state, t, move |conn| Ok(crate::org::tenant(conn, &id)?))
                .await?
                .map(|x| x.name)
        }
        None => None,
    };
    let uses = uses_of(&state, &v, app.id.clone()).await?;
    let facts = vec![
        Fact {
            label: t.t("catalog-bundle-id"),
            value: app.bundle_id.clone(),
        },
        Fact {
            label: t.t("catalog-adam-id"),
            value: app.adam_id.clone().unwrap_or_else(|| "–".into()),
        },
        Fact {
            label: t.t("catalog-licensed"),
            value: t.t(if app.licensed { "yes" } else { "no" }),
        },
        Fact {
            label: t.t("catalog-scope"),
            value: scope_words(t, tenant_name, None),
        },
        Fact {
            label: t.t("catalog-updated"),
            value: t.datetime(app.updated_at, BERLIN),
        },
    ];
    render(&AppPage {
        t,
        chrome: Some(Chrome::new(&v, SECTION, &here(&req))),
        csrf: v.csrf.clone(),
        may_change: core::may_change(&v.p, app.tenant_id.as_deref(), None).is_ok(),
        id: app.id,
        name: app.name,
        licensed: app.licensed,
        facts,
        uses,
    })
}

/// `POST /admin/katalog/apps/{id}`: the API's `update_app_as` (name, licence need).
async fn update_app(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let f = form.into_inner();
    csrf_ok(&v, &f)?;
    let id = path.into_inner();
    let patch = catalog::AppPatch {
        name: field(&f, "name"),
        licensed: Some(ticked(&f, "licensed")),
    };
    let app = core::update_app_as(&state, &v.p, id, patch)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/katalog/apps/{}", app.id))
}

/// A deletion needs its box ticked ("Ja, löschen"); otherwise 400 and nothing happens.
fn confirmed(t: Tr, f: &[(String, String)]) -> Result<(), WebError> {
    if ticked(f, "confirm") {
        Ok(())
    } else {
        Err(WebError::Api(
            t,
            ApiError::invalid_field("confirm", t.t("catalog-confirm-missing")),
        ))
    }
}

/// `POST /admin/katalog/apps/{id}/loeschen`: the API's `delete_app_as`, confirmed.
async fn delete_app(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let f = form.into_inner();
    csrf_ok(&v, &f)?;
    confirmed(v.tr, &f)?;
    core::delete_app_as(&state, &v.p, path.into_inner())
        .await
        .or_page(v.tr)?;
    see_other("/admin/katalog")
}

// ---------------------------------------------------------------------------------------
// Profiles from templates

/// A template of the list.
pub struct TemplateLine {
    /// Its name (for the form's address).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its variables' names.
    pub variables: String,
}

#[derive(Template)]
#[template(path = "admin/catalog_templates.html")]
struct TemplatesPage {
    t: Tr,
    chrome: Option<Chrome>,
    templates: Vec<TemplateLine>,
    schools: Vec<Choice>,
}

#[derive(Deserialize)]
struct SchoolQuery {
    schule: Option<String>,
}

/// `GET /admin/katalog/vorlagen`: the built-in templates (`GET /profile-templates`).
async fn template_list(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<SchoolQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let all = core::templates_as().or_page(t)?;
    let chosen = nonempty(&q.schule).unwrap_or_default();
    render(&TemplatesPage {
        t,
        chrome: Some(Chrome::new(&v, SECTION, &here(&req))),
        schools: school_choices(&state, &v, &chosen).await?,
        templates: all
            .into_iter()
            .map(|x| TemplateLine {
                variables: x
                    .variables
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                name: x.name,
                description: x.description,
            })
            .collect(),
    })
}

/// One variable of a template as a form field.
pub struct VarField {
    /// The input's name (`var_` and the variable's).
    pub input: String,
    /// The variable's name.
    pub name: String,
    /// Its description, the label.
    pub label: String,
    /// `text`, `password`, `number` or `checkbox`.
    pub kind: &'static str,
    /// Must be given.
    pub required: bool,
    /// What the field shows (never a secret's value).
    pub value: String,
    /// A ticked checkbox.
    pub checked: bool,
    /// A hint under the field.
    pub hint: Option<String>,
    /// `minlength`.
    pub min_length: Option<usize>,
    /// `maxlength`.
    pub max_length: Option<usize>,
    /// `pattern`.
    pub pattern: Option<&'static str>,
}

/// The variables the API fills from the school when not given (`render_for_school`).
const FROM_SCHOOL: [&str; 2] = ["school_name", "school_slug"];

/// The form fields of `vars`, with what was sent (secrets left empty).
fn var_fields(t: Tr, vars: &[Variable], sent: &[(String, String)], posted: bool) -> Vec<VarField> {
    vars.iter()
        .map(|var| {
            let input = format!("var_{}", var.name);
            let from_school = FROM_SCHOOL.contains(&var.name.as_str());
            let default = var.default.as_ref();
            let value = match var.kind {
                VariableKind::Secret | VariableKind::Bool => String::new(),
                _ if posted => field(sent, &input).unwrap_or_default(),
                _ => default
                    .map(|d| match d {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default(),
            };
            let checked = if posted {
                ticked(sent, &input)
            } else {
                default.and_then(|d| d.as_bool()).unwrap_or(false)
            };
            let text = matches!(
                var.kind,
                VariableKind::String | VariableKind::Secret | VariableKind::Slug
            );
            VarField {
                kind: match var.kind {
                    VariableKind::Secret => "password",
                    VariableKind::Integer => "number",
                    VariableKind::Bool => "checkbox",
                    VariableKind::String | VariableKind::Slug => "text",
                },
                required: var.required && !from_school && var.kind != VariableKind::Bool,
                hint: if from_school {
                    Some(t.t("catalog-var-from-school"))
                } else if var.kind == VariableKind::Secret {
                    Some(t.t("catalog-var-secret"))
                } else {
                    None
                },
                min_length: var.min_length.filter(|_| text),
                max_length: var.max_length.filter(|_| text),
                pattern: (var.kind == VariableKind::Slug)
                    .then_some("[a-z0-9]([a-z0-9\\-]*[a-z0-9])?"),
                label: var.description.clone(),
                name: var.name.clone(),
                input,
                value,
                checked,
            }
        })
        .collect()
}

/// The template's values from a posted form: checkboxes true or false, numbers as
/// numbers (anything else as sent, for the API to refuse with its reason), empty text
/// left out (the API fills defaults and the school's name, or says what is missing).
fn var_values(vars: &[Variable], sent: &[(String, String)]) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for var in vars {
        let input = format!("var_{}", var.name);
        let value = match var.kind {
            VariableKind::Bool => Some(serde_json::Value::Bool(ticked(sent, &input))),
            VariableKind::Integer => field(sent, &input).map(|s| match s.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::String(s),
            }),
            // A password is taken as typed: spaces may belong to it.
            VariableKind::Secret => sent
                .iter()
                .find(|(n, _)| *n == input)
                .map(|(_, v)| v.clone())
                .filter(|s| !s.is_empty())
                .map(serde_json::Value::String),
            VariableKind::String | VariableKind::Slug => {
                field(sent, &input).map(serde_json::Value::String)
            }
        };
        if let Some(value) = value {
            out.insert(var.name.clone(), value);
        }
    }
    out
}

#[derive(Template)]
#[template(path = "admin/catalog_template.html")]
struct TemplateFormPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    template: String,
    description: String,
    refusal: Option<Refusal>,
    name: String,
    schools: Vec<Choice>,
    fields: Vec<VarField>,
}

/// The template called `name` (404 when there is none).
fn template_named(t: Tr, name: &str) -> Result<crate::api::answer::TemplateInfo, WebError> {
    core::templates_as()
        .or_page(t)?
        .into_iter()
        .find(|x| x.name == name)
        .ok_or_else(|| WebError::Api(t, ApiError::not_found("no such template")))
}

#[expect(clippy::too_many_arguments, reason = "one page, its parts")]
async fn template_page(
    req: &HttpRequest,
    v: &Viewer,
    state: &AppState,
    status: StatusCode,
    tpl: crate::api::answer::TemplateInfo,
    school: &str,
    sent: Option<&[(String, String)]>,
    refusal: Option<Refusal>,
) -> PageResult {
    let t = v.tr;
    let schools = school_choices(state, v, school).await?;
    if schools.is_empty() {
        return Err(WebError::Api(
            t,
            ApiError::forbidden("profiles are rendered by the admins of a school"),
        ));
    }
    let fields = var_fields(t, &tpl.variables, sent.unwrap_or_default(), sent.is_some());
    let page = TemplateFormPage {
        t,
        chrome: Some(Chrome::new(v, SECTION, &here(req))),
        csrf: v.csrf.clone(),
        name: sent.and_then(|s| field(s, "name")).unwrap_or_default(),
        template: tpl.name,
        description: tpl.description,
        refusal,
        schools,
        fields,
    };
    Ok(render_with(status, &page))
}

/// `GET /admin/katalog/vorlagen/{name}?schule=…`: the template's variables as a form,
/// with the profile's name and school.
async fn template_form(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<SchoolQuery>,
) -> PageResult {
    admin_only(&v)?;
    let tpl = template_named(v.tr, &path.into_inner())?;
    let school = nonempty(&q.schule).unwrap_or_default();
    template_page(&req, &v, &state, StatusCode::OK, tpl, &school, None, None).await
}

/// `POST /admin/katalog/vorlagen/{name}`: the API's `from_template_as`; a refusal shows
/// the form again with the reason and what was sent (but no password).
async fn from_template(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let f = form.into_inner();
    csrf_ok(&v, &f)?;
    let t = v.tr;
    let tpl = template_named(t, &path.into_inner())?;
    let school = field(&f, "school").unwrap_or_default();
    let body = core::FromTemplate {
        template: tpl.name.clone(),
        school_id: school.clone(),
        name: field(&f, "name"),
        values: var_values(&tpl.variables, &f),
    };
    match core::from_template_as(&state, &v.p, body).await {
        Ok(p) => see_other(&format!("/admin/katalog/profile/{}", p.id)),
        Err(e) => {
            let (status, r) = refusal(t, e, "catalog-profile-exists")?;
            template_page(&req, &v, &state, status, tpl, &school, Some(&f), Some(r)).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// One profile

#[derive(Template)]
#[template(path = "admin/catalog_profile.html")]
struct ProfilePage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    name: String,
    facts: Vec<Fact>,
    uses: Vec<UseLine>,
    may_change: bool,
}

/// `GET /admin/katalog/profile/{id}`: the profile, its version, where it is assigned,
/// delete.
async fn profile_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let p = core::load_profile(&state, &v.p, path.into_inner())
        .await
        .or_page(t)?;
    let one = p.clone();
    let view = with_db(&state, t, move |conn| {
        Ok(catalog::profiles_with_names(conn, vec![one])?.pop())
    })
    .await?;
    let (tenant_name, school_name) = view
        .map(|x| (x.tenant_name, x.school_name))
        .unwrap_or_default();
    let uses = uses_of(&state, &v, p.id.clone()).await?;
    let facts = vec![
        Fact {
            label: t.t("catalog-identifier"),
            value: p.identifier.clone(),
        },
        Fact {
            label: t.t("catalog-template"),
            value: p.template.clone().unwrap_or_else(|| "–".into()),
        },
        Fact {
            label: t.t("catalog-payload-types"),
            value: p.payload_types.clone(),
        },
        Fact {
            label: t.t("catalog-version"),
            value: p.payload_uuid.clone().unwrap_or_else(|| "–".into()),
        },
        Fact {
            label: t.t("catalog-scope"),
            value: scope_words(t, tenant_name, school_name),
        },
        Fact {
            label: t.t("catalog-created"),
            value: t.datetime(p.created_at, BERLIN),
        },
        Fact {
            label: t.t("catalog-updated"),
            value: t.datetime(p.updated_at, BERLIN),
        },
    ];
    render(&ProfilePage {
        t,
        chrome: Some(Chrome::new(&v, SECTION, &here(&req))),
        csrf: v.csrf.clone(),
        may_change: core::may_change(&v.p, p.tenant_id.as_deref(), p.school_id.as_deref()).is_ok(),
        id: p.id,
        name: p.name,
        facts,
        uses,
    })
}

/// `POST /admin/katalog/profile/{id}/loeschen`: the API's `delete_profile_as`, confirmed.
async fn delete_profile(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    let f = form.into_inner();
    csrf_ok(&v, &f)?;
    confirmed(v.tr, &f)?;
    core::delete_profile_as(&state, &v.p, path.into_inner())
        .await
        .or_page(v.tr)?;
    see_other("/admin/katalog")
}

/// `GET /static/icons/{adam id}`: an app's icon as tafel keeps it, for anyone logged in
/// (the teacher's app choice, the catalog); 404 where there is none (the page then
/// shows the app's letter).
pub(super) async fn icon(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let adam = path.into_inner();
    let found = with_db(&state, v.tr, move |conn| {
        Ok(catalog::icons::icon(conn, &adam)?)
    })
    .await?;
    match found {
        Some((kind, data)) => Ok(actix_web::HttpResponse::Ok()
            .content_type(kind)
            .insert_header((
                actix_web::http::header::CACHE_CONTROL,
                "private, max-age=86400",
            ))
            .body(data)),
        None => Err(WebError::Api(
            v.tr,
            ApiError::not_found("no icon for this app"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    fn var(name: &str, kind: VariableKind, required: bool) -> Variable {
        Variable {
            name: name.into(),
            description: format!("{name}?"),
            kind,
            required,
            default: None,
            min_length: None,
            max_length: None,
        }
    }

    #[test]
    fn template_variables_become_typed_fields_and_secrets_are_never_echoed() {
        let vars = vec![
            var("ssid", VariableKind::String, true),
            var("password", VariableKind::Secret, true),
            var("hidden", VariableKind::Bool, false),
            var("minutes", VariableKind::Integer, false),
            var("school_slug", VariableKind::Slug, true),
        ];
        let sent: Vec<(String, String)> = [
            ("var_ssid", "Schule-WLAN"),
            ("var_password", "geheim  123"),
            ("var_hidden", "on"),
            ("var_minutes", "45"),
            ("var_school_slug", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let t = Tr { lang: Lang::De };
        let fields = var_fields(t, &vars, &sent, true);
        let kinds: Vec<(&str, bool)> = fields.iter().map(|f| (f.kind, f.required)).collect();
        assert_eq!(
            kinds,
            [
                ("text", true),
                ("password", true),
                ("checkbox", false),
                ("number", false),
                ("text", false), // the API fills it from the school
            ]
        );
        assert_eq!(fields[0].value, "Schule-WLAN");
        assert_eq!(fields[1].value, "", "a password is not shown again");
        assert!(fields[2].checked);
        let values = var_values(&vars, &sent);
        assert_eq!(
            serde_json::to_value(&values).unwrap(),
            serde_json::json!({"ssid": "Schule-WLAN", "password": "geheim  123", "hidden": true, "minutes": 45})
        );
    }
}
