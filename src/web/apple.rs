//! Apple's services for an authority: its push certificate (the certificate request
//! tafel makes, its `.csr` download, status and upload), its Apps and Books content
//! tokens (status and upload) and the licence counts.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use askama::Template;
use diesel::prelude::*;
use serde::Deserialize;

use super::admin::Choice;
use super::i18n::{Tr, BERLIN};
use super::session::Viewer;
use super::{render, see_other, Chrome, OrPage, PageResult, WebError};
use crate::api::auth::Caller;
use crate::api::authz::{self, Action, Place};
use crate::error::ApiError;
use crate::state::AppState;

/// Routes under `/admin`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/apple", web::get().to(page))
        .route("/apple/{tenant}/push", web::post().to(upload_push))
        .route(
            "/apple/{tenant}/anforderung",
            web::post().to(create_request),
        )
        .route(
            "/apple/{tenant}/anforderung.csr",
            web::get().to(download_request),
        )
        .route("/apple/{tenant}/inhalte", web::post().to(upload_vpp))
        .route("/apple/asm/{token}", web::post().to(upload_asm));
}

/// A row of facts about a certificate or token.
pub struct TokenLine {
    /// What (topic, location).
    pub name: String,
    /// Ends.
    pub ends: String,
    /// Days left.
    pub days: i64,
    /// State, or what to do.
    pub note: String,
}

/// Licences of an app at a location.
pub struct LicenceLine {
    /// App (name, or App Store id).
    pub app: String,
    /// Location.
    pub location: String,
    /// Owned, assigned, available, needed, missing.
    pub counts: [i64; 5],
    /// Licences are missing.
    pub short: bool,
}

#[derive(Template)]
#[template(path = "admin/apple.html")]
struct ApplePage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    tenants: Vec<Choice>,
    tenant: Option<String>,
    may_manage: bool,
    push: Option<TokenLine>,
    /// The pending push certificate request: since when it waits (sentence), its subject.
    request: Option<(String, String)>,
    content: Vec<TokenLine>,
    licences: Vec<LicenceLine>,
    blocked: usize,
    /// Apple School Manager server tokens: id and facts.
    asm: Vec<(String, TokenLine)>,
    /// Placement rules: id, where, what it matches.
    rules: Vec<(String, String, String)>,
    /// The authority's schools, for a new rule.
    schools: Vec<Choice>,
}

#[derive(Deserialize)]
struct TenantQuery {
    schultraeger: Option<String>,
}

/// `GET /admin/apple?schultraeger=…`: an authority's push certificate, content tokens and
/// licences (authority admins: theirs; district admins choose).
async fn page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<TenantQuery>,
) -> PageResult {
    authz::require_admin(&v.p, "do not manage Apple's services").or_page(v.tr)?;
    let t = v.tr;
    let p = v.p.clone();
    let all = state
        .db
        .run(move |conn| crate::org::list_tenants(conn).map_err(ApiError::from))
        .await
        .or_page(t)?;
    let visible: Vec<crate::org::Tenant> = all
        .into_iter()
        .filter(|x| authz::can_see(&p, Place::tenant(&x.id)))
        .collect();
    let chosen = q
        .schultraeger
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| v.p.tenant_id.clone())
        .or_else(|| visible.first().map(|x| x.id.clone()));
    let caller = Caller(v.p.clone());
    let (mut push, mut content, mut may_manage) = (None, vec![], false);
    let mut request = None;
    let (mut asm, mut rules, mut schools) = (vec![], vec![], vec![]);
    if let Some(id) = &chosen {
        let now = crate::db::now();
        let line = |name: String, ends: chrono::NaiveDateTime, note: String| TokenLine {
            name,
            ends: t.datetime(ends, BERLIN),
            days: (ends - now).num_days(),
            note,
        };
        push = crate::api::push::status_as(&state, &caller, id.clone())
            .await
            .or_page(t)?
            .map(|i| {
                line(
                    i.topic.clone(),
                    i.not_after,
                    i.warning.clone().unwrap_or_default(),
                )
            });
        may_manage = authz::require(&v.p, Action::ManageTenant, Place::tenant(id)).is_ok();
        if may_manage {
            request = crate::api::push::pending_request_as(&state, &caller, id.clone())
                .await
                .or_page(t)?
                .map(|r| {
                    let made = t.datetime(r.created_at, BERLIN);
                    (
                        t.with("apple-request-pending", &[("made", made.into())]),
                        r.subject,
                    )
                });
            content = crate::api::licences::tokens_as(&state, &v.p, id.clone())
                .await
                .or_page(t)?
                .into_iter()
                .map(|k| {
                    let note = match &k.last_error {
                        Some(e) => e.clone(),
                        None => t.t(&format!(
                            "content-{}",
                            k.status.as_str().replace(['_', ' '], "-")
                        )),
                    };
                    line(
                        format!("{} ({})", k.location_name, k.org_name),
                        k.expires_at,
                        note,
                    )
                })
                .collect();
            asm = crate::api::ade::tokens_as(&state, &caller, id.clone())
                .await
                .or_page(t)?
                .into_iter()
                .map(|v| {
                    let name = v
                        .token
                        .server_name
                        .clone()
                        .unwrap_or_else(|| t.t("asm-unnamed"));
                    // What an admin must do first (Apple's terms, a new token), then
                    // the expiry warning or what the last sync could not do.
                    use crate::ade::service::ServerTokenStatus as S;
                    let note = match (v.token.status, &v.token.last_error) {
                        (S::WaitingForTerms, _) => t.t("asm-terms"),
                        (S::Failed, Some(e)) => format!("{} ({e})", t.t("asm-failed")),
                        (S::Failed, None) => t.t("asm-failed"),
                        (S::AwaitingToken, _) => t.t("asm-waiting"),
                        (S::Active, last) => [
                            v.warning.clone(),
                            last.as_ref()
                                .map(|e| format!("{} {e}", t.t("asm-last-problem"))),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" – "),
                    };
                    let fact = match v.token.expires_at {
                        Some(e) => line(name, e, note),
                        None => TokenLine {
                            name,
                            ends: "–".into(),
                            days: 0,
                            note,
                        },
                    };
                    (v.token.id, fact)
                })
                .collect();
            let found = crate::api::ade::rules_as(&state, &caller, id.clone())
                .await
                .or_page(t)?;
            let tenant = id.clone();
            let all: Vec<crate::org::School> = state
                .db
                .run(move |conn| {
                    crate::org::list_schools(conn, Some(&tenant)).map_err(ApiError::from)
                })
                .await
                .or_page(t)?;
            let named: std::collections::HashMap<String, String> =
                all.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
            schools = all
                .into_iter()
                .map(|s| Choice {
                    selected: false,
                    value: s.id,
                    label: s.name,
                })
                .collect();
            rules = found
                .into_iter()
                .map(|r| {
                    let matches = match (&r.order_number, r.serial_list().len()) {
                        (Some(o), _) => t.with("asm-rule-order", &[("order", o.clone().into())]),
                        (None, n) => t.n("asm-rule-serials", n as i64),
                    };
                    let school = named.get(&r.school_id).cloned().unwrap_or_default();
                    let what = if r.description.is_empty() {
                        matches
                    } else {
                        format!("{} – {matches}", r.description)
                    };
                    (r.id, school, what)
                })
                .collect();
        }
    }
    let (counts, blocked, _) = crate::api::licences::counts_as(&state, &v.p)
        .await
        .or_page(t)?;
    let adam: Vec<String> = counts.iter().map(|c| c.adam_id.clone()).collect();
    let names: std::collections::HashMap<String, String> = state
        .db
        .run(move |conn| -> Result<_, ApiError> {
            use crate::db::schema::apps;
            let rows: Vec<(Option<String>, String)> = apps::table
                .filter(apps::adam_id.eq_any(&adam))
                .filter(apps::deleted_at.is_null())
                .select((apps::adam_id, apps::name))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .filter_map(|(a, n)| a.map(|a| (a, n)))
                .collect())
        })
        .await
        .or_page(t)?;
    let licences = counts
        .into_iter()
        .map(|c| LicenceLine {
            short: c.missing > 0,
            app: names
                .get(&c.adam_id)
                .cloned()
                .unwrap_or_else(|| c.adam_id.clone()),
            location: c.location,
            counts: [
                i64::from(c.owned),
                i64::from(c.assigned),
                i64::from(c.available),
                c.needed as i64,
                c.missing as i64,
            ],
        })
        .collect();
    render(&ApplePage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/apple", &super::admin::here(&req))),
        csrf: v.csrf.clone(),
        tenants: visible
            .into_iter()
            .map(|x| Choice {
                selected: chosen.as_deref() == Some(x.id.as_str()),
                value: x.id,
                label: x.name,
            })
            .collect(),
        tenant: chosen,
        may_manage,
        push,
        request,
        content,
        licences,
        blocked: blocked.len(),
        asm,
        rules,
        schools,
    })
}

#[derive(Deserialize)]
struct PushForm {
    csrf: String,
    certificate_pem: String,
    /// Missing while a certificate request is pending: tafel holds the key.
    private_key_pem: Option<String>,
    force: Option<String>,
}

/// `POST /admin/apple/{tenant}/push`: the certificate from Apple's Push Certificates
/// Portal, pasted as PEM, with its key unless it was issued for tafel's request.
async fn upload_push(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PushForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let tenant = path.into_inner();
    let f = form.into_inner();
    let upload = crate::api::push::Upload {
        certificate_pem: Some(f.certificate_pem),
        private_key_pem: f.private_key_pem.filter(|k| !k.trim().is_empty()),
        pkcs12_base64: None,
        password: String::new(),
        force: f.force.is_some(),
    };
    crate::api::push::upload_as(&state, &Caller(v.p.clone()), tenant.clone(), upload)
        .await
        .or_page(v.tr)?;
    see_other(&format!(
        "/admin/apple?schultraeger={}",
        super::url_encode(&tenant)
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /admin/apple/{tenant}/anforderung`: tafel makes the key and the certificate
/// request (a pending one is replaced).
async fn create_request(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let tenant = path.into_inner();
    crate::api::push::create_request_as(&state, &Caller(v.p.clone()), tenant.clone())
        .await
        .or_page(v.tr)?;
    see_other(&format!(
        "/admin/apple?schultraeger={}#push-h",
        super::url_encode(&tenant)
    ))
}

/// `GET /admin/apple/{tenant}/anforderung.csr`: the pending request as a `.csr` file
/// for the MDM vendor.
async fn download_request(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let tenant = path.into_inner();
    let request =
        crate::api::push::pending_request_as(&state, &Caller(v.p.clone()), tenant.clone())
            .await
            .or_page(v.tr)?
            .ok_or_else(|| {
                WebError::Api(
                    v.tr,
                    ApiError::not_found(
                        "this school authority has no pending push certificate request",
                    ),
                )
            })?;
    let name: String = tenant
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/pkcs10")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"tafel-push-{name}.csr\""),
        ))
        .body(request.csr_pem))
}

#[derive(Deserialize)]
struct ContentForm {
    csrf: String,
    token_file: String,
}

/// `POST /admin/apple/{tenant}/inhalte`: an Apps and Books content token (the file's
/// text, pasted).
async fn upload_vpp(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ContentForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let tenant = path.into_inner();
    if form.token_file.trim().is_empty() {
        return Err(WebError::Api(
            v.tr,
            ApiError::invalid_field("token_file", "paste the token file's content"),
        ));
    }
    crate::api::licences::upload_as(&state, &v.p, tenant.clone(), form.token_file.trim())
        .await
        .or_page(v.tr)?;
    see_other(&format!(
        "/admin/apple?schultraeger={}",
        super::url_encode(&tenant)
    ))
}

#[derive(Deserialize)]
struct AsmForm {
    csrf: String,
    server_token: String,
}

/// `POST /admin/apple/asm/{token}`: the server token (.p7m) Apple School Manager gave,
/// its text pasted; the API's rules (the authority's admins, Apple's answer checked).
async fn upload_asm(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AsmForm>,
) -> PageResult {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    if f.server_token.trim().is_empty() {
        return Err(WebError::Api(
            v.tr,
            ApiError::invalid_field("server_token", "paste the .p7m file's text"),
        ));
    }
    let token = crate::api::ade::upload_as(
        &state,
        &Caller(v.p.clone()),
        path.into_inner(),
        f.server_token,
    )
    .await
    .or_page(v.tr)?;
    see_other(&format!(
        "/admin/apple?schultraeger={}",
        super::url_encode(&token.tenant_id)
    ))
}
