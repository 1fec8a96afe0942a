//! Admin API for Automated Device Enrollment: server tokens per authority, device sync.

use actix_web::{web, HttpResponse};
use base64::Engine;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::ade::school::{self, NewRule, SchoolAde, SchoolAdeInput};
use crate::ade::service::{ServerToken, ServerTokenStatus};
use crate::db::schema::{ade_devices, ade_rules, ade_tokens, devices};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Days before expiry that a server token is flagged.
const WARN_DAYS: i64 = 30;

/// A server token with a warning when it expires soon.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AdeTokenView)]
pub(crate) struct TokenView {
    #[serde(flatten)]
    pub(crate) token: ServerToken,
    /// What to do, when the token expires within 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
    /// What an administrator must do before the token works again (Apple's new terms to
    /// accept, a new token to upload); absent while nothing is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<String>,
}

/// What an administrator must do for a token in `status`, in words.
pub(crate) fn action_for(status: ServerTokenStatus) -> Option<String> {
    match status {
        ServerTokenStatus::WaitingForTerms => Some(
            "Apple School Manager refuses every request until an administrator of the \
             organization accepts Apple's new terms and conditions: sign in to \
             school.apple.com and accept them. tafel tries again at every sync and goes on \
             by itself once they are accepted."
                .into(),
        ),
        ServerTokenStatus::Failed => Some(
            "Apple rejected this server token: download a new one for this MDM server in \
             Apple School Manager and upload it here."
                .into(),
        ),
        ServerTokenStatus::AwaitingToken | ServerTokenStatus::Active => None,
    }
}

/// The authority's server tokens.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AdeTokenList)]
pub(crate) struct TokenList {
    items: Vec<TokenView>,
}

/// One report per server token synced.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SyncReports {
    items: Vec<crate::ade::service::SyncReport>,
}

/// The placement rules of an authority.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RuleList {
    /// First match wins; serial lists before order numbers.
    items: Vec<school::Rule>,
}

/// A new rule and how many waiting devices it placed at once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedRule {
    #[serde(flatten)]
    rule: school::Rule,
    /// Devices placed by it now.
    placed: usize,
}

/// One page of devices from Apple School Manager.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AdeDevicePage {
    /// The devices of this page, by serial.
    items: Vec<AdeDeviceView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Stored order numbers.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OrderNumbersStored {
    /// What each row did.
    report: crate::org::import::ImportReport,
    /// Devices placed by order-number rules.
    placed: usize,
}

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/ade-tokens", web::post().to(create))
        .route("/tenants/{id}/ade-tokens", web::get().to(list))
        .route("/ade-tokens/{id}/server-token", web::put().to(upload))
        .route("/ade/sync", web::post().to(sync))
        .route("/schools/{id}/ade", web::get().to(get_school))
        .route("/schools/{id}/ade", web::put().to(put_school))
        .route("/tenants/{id}/ade-rules", web::get().to(list_rules))
        .route("/tenants/{id}/ade-rules", web::post().to(create_rule))
        .route("/ade-rules/{id}", web::delete().to(delete_rule))
        .route("/tenants/{id}/ade-devices", web::get().to(list_devices))
        .route(
            "/tenants/{id}/ade-order-numbers",
            web::post().to(import_order_numbers),
        );
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/ade-tokens", tag = "ade", operation_id = "create_ade_token",
    summary = "Make a key pair for an MDM server in Apple School Manager; upload the returned certificate (PEM) there",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 201, description = "The token with the certificate to upload", body = ServerToken),
        (status = 403, description = "Authority admins and district admins only", body = ApiError)),
    security(("bearer" = [])))]
async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let t = create_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Created().json(t))
}

/// Makes a key pair and its certificate for a new server token of `tenant`, for
/// `caller` under the API's rules.
pub(crate) async fn create_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<ServerToken> {
    let tenant = super::org::load_tenant(state, caller, tenant, Action::ManageTenant).await?;
    state
        .ade
        .create(&tenant.id, &caller.0.user_id)
        .await
        .map_err(ApiError::from)
}

/// A server token's certificate (PEM), the public half to upload in Apple School
/// Manager, for the authority's admins.
pub(crate) async fn certificate_as(
    state: &AppState,
    caller: &Caller,
    token: String,
) -> ApiResult<(String, String)> {
    let p = caller.0.clone();
    state
        .db
        .run(move |conn| -> ApiResult<(String, String)> {
            let row: Option<(String, String)> = ade_tokens::table
                .find(&token)
                .select((ade_tokens::tenant_id, ade_tokens::cert_pem))
                .first(conn)
                .optional()?;
            let (tenant, pem) = row
                .filter(|(t, _)| authz::can_see(&p, Place::tenant(t)))
                .ok_or_else(|| ApiError::not_found("no such server token"))?;
            authz::require(&p, Action::ManageTenant, Place::tenant(&tenant))?;
            Ok((tenant, pem))
        })
        .await
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/ade-tokens", tag = "ade", operation_id = "list_ade_tokens",
    summary = "The authority's ADE server tokens, with expiry warnings and what an administrator must do (new terms to accept in Apple School Manager, a new token to upload)",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 200, description = "Tokens", body = TokenList)), security(("bearer" = [])))]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let items = tokens_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TokenList { items }))
}

/// An authority's server tokens with expiry warnings, for `caller` under the API's rules.
pub(crate) async fn tokens_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<Vec<TokenView>> {
    let tenant = super::org::load_tenant(state, caller, tenant, Action::ManageTenant).await?;
    let rows: Vec<ServerToken> = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok(ade_tokens::table
                .filter(ade_tokens::tenant_id.eq(&tenant.id))
                .select(ServerToken::as_select())
                .order(ade_tokens::created_at.asc())
                .load(conn)?)
        })
        .await?;
    let now = crate::db::now();
    Ok(rows
        .into_iter()
        .map(|token| TokenView {
            action: action_for(token.status),
            warning: token
                .expires_at
                .map(|e| (e - now).num_days())
                .filter(|d| *d < WARN_DAYS)
                .map(|days| format!("the server token expires in {days} days: download a new one in Apple School Manager and upload it")),
            token,
        })
        .collect())
}

/// Body of a server-token upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerTokenUpload {
    /// The `.p7m` file from Apple School Manager, base64.
    p7m_base64: String,
}

#[utoipa::path(put, path = "/api/v1/ade-tokens/{id}/server-token", tag = "ade", operation_id = "upload_ade_server_token",
    summary = "Upload the server token (.p7m) Apple School Manager returned; a renewed one replaces the credentials",
    params(("id" = String, Path, description = "ADE token id")), request_body = ServerTokenUpload,
    responses((status = 200, description = "The token: active, or waiting_for_terms while Apple School Manager waits for its new terms to be accepted (the credentials are kept)", body = ServerToken),
        (status = 400, description = "Not a server token for this key, or refused by Apple", body = ApiError)),
    security(("bearer" = [])))]
async fn upload(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ServerTokenUpload>,
) -> ApiResult<HttpResponse> {
    let t = upload_as(
        &state,
        &caller,
        path.into_inner(),
        body.into_inner().p7m_base64,
    )
    .await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Stores the server token Apple School Manager returned (the file's text or base64 of
/// it), for `caller` under the API's rules.
pub(crate) async fn upload_as(
    state: &AppState,
    caller: &Caller,
    id: String,
    raw: String,
) -> ApiResult<ServerToken> {
    let i = id.clone();
    let tenant: String = state
        .db
        .run(move |conn| -> ApiResult<Option<String>> {
            Ok(ade_tokens::table
                .find(&i)
                .select(ade_tokens::tenant_id)
                .first(conn)
                .optional()?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such ADE token"))?;
    authz::require(&caller.0, Action::ManageTenant, Place::tenant(&tenant))?;
    // Accept the file's own bytes (S/MIME text) as well as base64 of them.
    let p7m = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .unwrap_or_else(|_| raw.into_bytes());
    state
        .ade
        .upload(&id, &p7m, &caller.0.user_id)
        .await
        .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/v1/ade/sync", tag = "ade", operation_id = "ade_sync",
    summary = "Sync devices from Apple School Manager now (district admins)",
    responses((status = 200, description = "One report per server token", body = SyncReports)), security(("bearer" = [])))]
async fn sync(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    let reports = state.ade.sync().await.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(SyncReports { items: reports }))
}

#[utoipa::path(get, path = "/api/v1/schools/{id}/ade", tag = "ade", operation_id = "get_school_ade",
    summary = "The school's ADE profile (Setup Assistant) and release policy (defaults until changed)",
    params(("id" = String, Path, description = "School id")),
    responses((status = 200, description = "Settings", body = SchoolAde)), security(("bearer" = [])))]
async fn get_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = school_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(a))
}

/// A school's ADE profile and release policy, for `caller` under the API's rules.
pub(crate) async fn school_as(
    state: &AppState,
    caller: &Caller,
    school: String,
) -> ApiResult<SchoolAde> {
    let school = super::org::load_school(state, caller, school, Action::View).await?;
    state
        .db
        .run(move |conn| -> ApiResult<SchoolAde> { Ok(school::settings(conn, &school.id)?) })
        .await
}

#[utoipa::path(put, path = "/api/v1/schools/{id}/ade", tag = "ade", operation_id = "put_school_ade",
    summary = "Change the school's ADE profile and release policy; a profile change is defined anew at Apple and re-assigned to the school's serials at the next sync",
    params(("id" = String, Path, description = "School id")), request_body = SchoolAdeInput,
    responses((status = 200, description = "Stored", body = SchoolAde),
        (status = 400, description = "A field is invalid (named)", body = ApiError),
        (status = 403, description = "School admins and above only", body = ApiError)),
    security(("bearer" = [])))]
async fn put_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SchoolAdeInput>,
) -> ApiResult<HttpResponse> {
    let a = put_school_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(a))
}

/// Stores a school's ADE profile and release policy for `caller` under the API's rules
/// (the authority's fields only by its admins).
pub(crate) async fn put_school_as(
    state: &AppState,
    caller: &Caller,
    school: String,
    input: SchoolAdeInput,
) -> ApiResult<SchoolAde> {
    let school = super::org::load_school(state, caller, school, Action::ManageSchool).await?;
    let caller = Caller(caller.0.clone());
    // Management that pupils could remove, or Setup Assistant not waiting for the
    // configuration, is the authority's decision, not a school's.
    let authority = authz::require(
        &caller.0,
        Action::ManageTenant,
        Place::tenant(&school.tenant_id),
    )
    .is_ok();
    let a = state
        .db
        .run(move |conn| -> ApiResult<SchoolAde> {
            let now = school::settings(conn, &school.id)?.settings.profile;
            let p = &input.profile;
            if !authority
                && (p.is_mdm_removable != now.is_mdm_removable
                    || p.await_device_configured != now.await_device_configured
                    || p.is_multi_user != now.is_multi_user)
            {
                return Err(ApiError::forbidden(
                    "is_mdm_removable, await_device_configured and is_multi_user are set by the school authority's admins",
                ));
            }
            school::put(conn, &school, &input, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    // The release policy applies to devices waiting now.
    state.reconciler.all();
    Ok(a)
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/ade-rules", tag = "ade", operation_id = "list_ade_rules",
    summary = "Placement rules: serial lists and order numbers that put devices from Apple School Manager into schools",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 200, description = "Rules, first match wins (serial lists before order numbers)", body = RuleList)),
    security(("bearer" = [])))]
async fn list_rules(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let rules = rules_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RuleList { items: rules }))
}

/// An authority's placement rules, for `caller` under the API's rules.
pub(crate) async fn rules_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<Vec<school::Rule>> {
    let tenant = super::org::load_tenant(state, caller, tenant, Action::ManageTenant).await?;
    state
        .db
        .run(move |conn| -> ApiResult<Vec<school::Rule>> { Ok(school::rules(conn, &tenant.id)?) })
        .await
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/ade-rules", tag = "ade", operation_id = "create_ade_rule",
    summary = "Add a placement rule (serial list or order number → school, optionally class and cart); waiting devices it matches are placed at once",
    params(("id" = String, Path, description = "School authority id")), request_body = NewRule,
    responses((status = 201, description = "The rule and how many devices it placed", body = CreatedRule),
        (status = 400, description = "A field is invalid (named)", body = ApiError)),
    security(("bearer" = [])))]
async fn create_rule(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewRule>,
) -> ApiResult<HttpResponse> {
    let (rule, placed) =
        create_rule_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(CreatedRule { rule, placed }))
}

/// Adds a placement rule to `tenant` for `caller` under the API's rules; returns it and
/// how many waiting devices it placed.
pub(crate) async fn create_rule_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
    input: NewRule,
) -> ApiResult<(school::Rule, usize)> {
    let tenant = super::org::load_tenant(state, caller, tenant, Action::ManageTenant).await?;
    let caller = Caller(caller.0.clone());
    let s = state
        .db
        .run({
            let id = input.school_id.clone();
            move |conn| -> ApiResult<Option<crate::org::School>> {
                Ok(crate::org::school(conn, &id)?)
            }
        })
        .await?
        .filter(|s| s.tenant_id == tenant.id)
        .ok_or_else(|| ApiError::invalid_field("school_id", "no such school in this authority"))?;
    state
        .db
        .run(move |conn| -> ApiResult<_> {
            school::create_rule(conn, &s, &input, &caller.0.user_id).map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(delete, path = "/api/v1/ade-rules/{id}", tag = "ade", operation_id = "delete_ade_rule",
    summary = "Delete a placement rule (devices it placed stay where they are)",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule", body = ApiError)),
    security(("bearer" = [])))]
async fn delete_rule(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    delete_rule_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a placement rule for `caller` under the API's rules (returns its authority).
pub(crate) async fn delete_rule_as(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> ApiResult<String> {
    let caller = Caller(caller.0.clone());
    state
        .db
        .run(move |conn| -> ApiResult<String> {
            let rule: school::Rule = ade_rules::table
                .find(&id)
                .select(school::Rule::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("no such rule"))?;
            authz::require(
                &caller.0,
                Action::ManageTenant,
                Place::tenant(&rule.tenant_id),
            )?;
            school::delete_rule(conn, &rule, &caller.0.user_id)?;
            Ok(rule.tenant_id)
        })
        .await
}

/// Filters for the ASM device list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdeDeviceQuery {
    /// Only devices without a school (`true`) or with one (`false`).
    unplaced: Option<bool>,
    /// Include devices Apple deleted (default false).
    deleted: Option<bool>,
    /// Page size (default 100, at most 1000).
    limit: Option<i64>,
    /// `next_cursor` of the previous page (a serial: the page starts after it).
    cursor: Option<String>,
}

/// A device from Apple School Manager with where it landed.
#[derive(Serialize, Queryable, utoipa::ToSchema)]
pub(crate) struct AdeDeviceRow {
    serial_number: String,
    model: Option<String>,
    description: Option<String>,
    color: Option<String>,
    order_number: Option<String>,
    profile_status: Option<String>,
    profile_uuid: Option<String>,
    profile_error: Option<String>,
    #[serde(with = "crate::time::utc_opt")]
    assigned_at: Option<chrono::NaiveDateTime>,
    #[serde(with = "crate::time::utc_opt")]
    deleted_at: Option<chrono::NaiveDateTime>,
    device_id: Option<String>,
    school_id: Option<String>,
    enrollment_status: Option<String>,
}

/// A device from Apple School Manager with the name of the school it landed in.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AdeDeviceView {
    /// The device.
    #[serde(flatten)]
    row: AdeDeviceRow,
    /// The school's name.
    school_name: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/ade-devices", tag = "ade", operation_id = "list_ade_devices",
    summary = "Devices Apple School Manager assigned to tafel, with profile state and school (paged by serial)",
    params(("id" = String, Path, description = "School authority id"), AdeDeviceQuery),
    responses((status = 200, description = "Devices and the cursor of the next page", body = AdeDevicePage),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid", body = ApiError)),
    security(("bearer" = [])))]
async fn list_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::error::Query<AdeDeviceQuery>,
) -> ApiResult<HttpResponse> {
    let tenant =
        super::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "between 1 and 1000"));
    }
    let rows = state
        .db
        .run(move |conn| -> ApiResult<Vec<AdeDeviceView>> {
            let mut b = ade_devices::table
                .left_join(
                    devices::table.on(devices::serial_number
                        .eq(ade_devices::serial_number.nullable())
                        .and(devices::tenant_id.eq(ade_devices::tenant_id.nullable()))),
                )
                .filter(ade_devices::tenant_id.eq(&tenant.id))
                .select((
                    ade_devices::serial_number,
                    ade_devices::model,
                    ade_devices::description,
                    ade_devices::color,
                    ade_devices::order_number,
                    ade_devices::profile_status,
                    ade_devices::profile_uuid,
                    ade_devices::profile_error,
                    ade_devices::assigned_at,
                    ade_devices::deleted_at,
                    devices::id.nullable(),
                    devices::school_id.nullable(),
                    devices::enrollment_status.nullable(),
                ))
                .order(ade_devices::serial_number.asc())
                .limit(limit)
                .into_boxed();
            if !q.deleted.unwrap_or(false) {
                b = b.filter(ade_devices::deleted_at.is_null());
            }
            match q.unplaced {
                Some(true) => b = b.filter(devices::school_id.nullable().is_null()),
                Some(false) => b = b.filter(devices::school_id.nullable().is_not_null()),
                None => {}
            }
            if let Some(a) = q.cursor {
                b = b.filter(ade_devices::serial_number.gt(a));
            }
            let rows: Vec<AdeDeviceRow> = b.load(conn)?;
            let ids = crate::names::ids(&rows, |r| r.school_id.as_deref());
            let schools = crate::names::schools_named(conn, &ids)?;
            Ok(rows
                .into_iter()
                .map(|row| AdeDeviceView {
                    school_name: crate::names::name(&schools, row.school_id.as_deref()),
                    row,
                })
                .collect())
        })
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.row.serial_number.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(AdeDevicePage {
        items: rows,
        next_cursor: next,
    }))
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/ade-order-numbers", tag = "ade", operation_id = "import_ade_order_numbers",
    summary = "Order numbers from Apple School Manager's device export (CSV: serial, order_number); devices then placed by order-number rules",
    params(("id" = String, Path, description = "School authority id")),
    request_body(content = String, content_type = "text/csv", description = "CSV; columns `serial`, `order_number`"),
    responses((status = 200, description = "Stored; `placed` devices got a school", body = OrderNumbersStored),
        (status = 422, description = "Rows rejected; nothing stored", body = super::answer::ImportRejected)),
    security(("bearer" = [])))]
async fn import_order_numbers(
    caller: Caller,
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    body: crate::error::Upload,
) -> ApiResult<HttpResponse> {
    let tenant =
        super::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let text = super::classes::csv_body(&req, &body.0)?;
    let result = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok(school::import_order_numbers(
                conn,
                &tenant.id,
                &text,
                &caller.0.user_id,
            ))
        })
        .await?;
    match result {
        Ok((report, placed)) => Ok(HttpResponse::Ok().json(OrderNumbersStored { report, placed })),
        Err(e) => match super::classes::import_error(e) {
            actix_web::Either::Left(err) => Err(err),
            actix_web::Either::Right(resp) => Ok(resp),
        },
    }
}
