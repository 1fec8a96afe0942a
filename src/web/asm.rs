//! Apple School Manager in the console, beside the Apple services page: a new server
//! token (tafel makes the key pair; the admin downloads its certificate for Apple School
//! Manager), and the placement rules that put Apple's devices into schools. Each form
//! goes through the API's cores and rules (`api::ade::*_as`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::session::Viewer;
use super::{see_other, OrPage, PageResult, WebError};
use crate::api::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Routes under `/admin`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/apple/{tenant}/asm", web::post().to(create_token))
        .route("/apple/asm/{token}/tafel.pem", web::get().to(certificate))
        .route("/apple/{tenant}/regeln", web::post().to(create_rule))
        .route("/apple/regeln/{rule}/loeschen", web::post().to(delete_rule));
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
