//! Apple School Manager in the console, beside the Apple services page: a new server
//! token (tafel makes the key pair; the admin downloads its certificate for Apple School
//! Manager), and the placement rules that put Apple's devices into schools. Each form
//! goes through the API's cores and rules (`api::ade::*_as`).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::i18n::Tr;
use super::session::Viewer;
use super::{field, fields, render, see_other, Chrome, OrPage, PageResult, WebError};
use crate::ade::school::{SchoolAdeInput, SKIP_KEYS};
use crate::api::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Routes under `/admin`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/apple/{tenant}/asm", web::post().to(create_token))
        .route("/apple/asm/{token}/tafel.pem", web::get().to(certificate))
        .route("/apple/{tenant}/regeln", web::post().to(create_rule))
        .route("/apple/regeln/{rule}/loeschen", web::post().to(delete_rule))
        .route("/schulen/{id}/einrichtung", web::get().to(setup_page))
        .route("/schulen/{id}/einrichtung", web::post().to(save_setup));
}

/// The Apple services page of `tenant`, at its Apple School Manager section.
fn back(tenant: &str) -> PageResult {
    see_other(&format!(
        "/admin/apple?schultraeger={}#asm-h",
        super::url_encode(tenant)
    ))
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

/// `POST /admin/apple/{tenant}/asm`: a new server token; its certificate is offered for
/// download on the page.
async fn create_token(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let token = crate::api::ade::create_as(&state, &Caller(v.p.clone()), path.into_inner())
        .await
        .or_page(v.tr)?;
    back(&token.tenant_id)
}

/// `GET /admin/apple/asm/{token}/tafel.pem`: the certificate to upload in Apple School
/// Manager (Einstellungen → MDM-Server → Öffentlichen Schlüssel hochladen).
async fn certificate(v: Viewer, state: web::Data<AppState>, path: web::Path<String>) -> PageResult {
    let (_, pem) = crate::api::ade::certificate_as(&state, &Caller(v.p.clone()), path.into_inner())
        .await
        .or_page(v.tr)?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"tafel-asm.pem\"",
        ))
        .body(pem))
}

#[derive(Deserialize)]
struct RuleForm {
    csrf: String,
    school_id: String,
    description: Option<String>,
    order_number: Option<String>,
    serials: Option<String>,
}

/// The text of a form field, `None` when blank.
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /admin/apple/{tenant}/regeln`: a placement rule — an order number, or serial
/// numbers (one per line, or separated by commas or spaces) — for a school.
async fn create_rule(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RuleForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let serials: Option<Vec<String>> = given(f.serials).map(|s| {
        s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let order_number = given(f.order_number);
    if serials.is_some() == order_number.is_some() {
        return Err(WebError::Api(
            v.tr,
            ApiError::invalid_field(
                "order_number",
                "give either an order number or serial numbers",
            ),
        ));
    }
    let tenant = path.into_inner();
    crate::api::ade::create_rule_as(
        &state,
        &Caller(v.p.clone()),
        tenant.clone(),
        crate::ade::school::NewRule {
            school_id: f.school_id,
            class_id: None,
            group_id: None,
            order_number,
            serials,
            description: given(f.description),
        },
    )
    .await
    .or_page(v.tr)?;
    back(&tenant)
}

/// `POST /admin/apple/regeln/{rule}/loeschen`: the rule goes; devices it placed stay.
async fn delete_rule(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let tenant = crate::api::ade::delete_rule_as(&state, &Caller(v.p.clone()), path.into_inner())
        .await
        .or_page(v.tr)?;
    back(&tenant)
}

#[derive(Template)]
#[template(path = "admin/school_setup.html")]
struct SetupPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    school_id: String,
    school: String,
    /// The stored settings (or the defaults).
    s: SchoolAdeInput,
    /// Nothing stored yet: these are the defaults.
    default: bool,
    /// Apple's Setup Assistant panes and whether each is skipped.
    skip: Vec<(&'static str, bool)>,
    /// The caller may change the authority's fields.
    authority: bool,
    /// Just saved.
    saved: bool,
}

/// `GET /admin/schulen/{id}/einrichtung`: what Setup Assistant shows on the school's
/// iPads from Apple School Manager, and when a waiting iPad is released.
async fn setup_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    super::admin::admin_only(&v)?;
    let t = v.tr;
    let id = path.into_inner();
    let caller = Caller(v.p.clone());
    let school = crate::api::org::load_school(
        &state,
        &caller,
        id.clone(),
        crate::api::authz::Action::ManageSchool,
    )
    .await
    .or_page(t)?;
    let a = crate::api::ade::school_as(&state, &caller, id)
        .await
        .or_page(t)?;
    let authority = crate::api::authz::require(
        &v.p,
        crate::api::authz::Action::ManageTenant,
        crate::api::authz::Place::tenant(&school.tenant_id),
    )
    .is_ok();
    let skip = SKIP_KEYS
        .iter()
        .map(|k| {
            (
                *k,
                a.settings.profile.skip_setup_items.iter().any(|s| s == k),
            )
        })
        .collect();
    render(&SetupPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &super::here(&req))),
        csrf: v.csrf.clone(),
        school_id: school.id,
        school: school.name,
        s: a.settings,
        default: a.default,
        skip,
        authority,
        saved: req.query_string().split('&').any(|p| p == "gespeichert=1"),
    })
}

/// `POST /admin/schulen/{id}/einrichtung`: the form's settings through the API's rules;
/// what the form does not show (the assignments a release waits for) stays as stored.
async fn save_setup(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    super::admin::admin_only(&v)?;
    let t = v.tr;
    let form = form.into_inner();
    let one = |k: &str| field(&form, k);
    v.check_csrf(&one("csrf").unwrap_or_default())?;
    let id = path.into_inner();
    let caller = Caller(v.p.clone());
    let now = crate::api::ade::school_as(&state, &caller, id.clone())
        .await
        .or_page(t)?
        .settings;
    let timeout = one("release_timeout_minutes")
        .map(|m| m.parse::<i32>())
        .transpose()
        .map_err(|_| {
            WebError::Api(
                t,
                ApiError::invalid_field("release_timeout_minutes", "a whole number of minutes"),
            )
        })?
        .unwrap_or(now.release_timeout_minutes);
    let ticked = |k: &str| one(k).is_some();
    let skip = fields(&form, "skip");
    if let Some(bad) = skip.iter().find(|k| !SKIP_KEYS.contains(&k.as_str())) {
        return Err(WebError::Api(
            t,
            ApiError::invalid_field("skip", format!("{bad:?} is not a Setup Assistant pane")),
        ));
    }
    let mut input = now.clone();
    input.profile.profile_name = one("profile_name");
    input.profile.department = one("department");
    input.profile.support_phone_number = one("support_phone_number");
    input.profile.support_email_address = one("support_email_address");
    input.profile.skip_setup_items = skip;
    input.release_timeout_minutes = timeout;
    // The authority's fields come from the form only where the form showed them as
    // editable; otherwise they stay (and the API refuses a change by a school admin).
    if one("authority").is_some() {
        input.profile.is_mdm_removable = ticked("is_mdm_removable");
        input.profile.await_device_configured = ticked("await_device_configured");
        input.profile.is_multi_user = ticked("is_multi_user");
    }
    crate::api::ade::put_school_as(&state, &caller, id.clone(), input)
        .await
        .or_page(t)?;
    see_other(&format!(
        "/admin/schulen/{}/einrichtung?gespeichert=1",
        super::url_encode(&id)
    ))
}
