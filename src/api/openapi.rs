//! The OpenAPI 3 document of the admin API, generated from the handlers'
//! `#[utoipa::path]` annotations, served at `GET /api/v1/openapi.json`, and the
//! interactive documentation page at `/api/v1/docs/`. Both need no token. The page is
//! Swagger UI, embedded in the binary at build time (`utoipa-swagger-ui`'s `vendored`
//! feature): it loads nothing from outside, so it works on a network without internet.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where the documentation page is served.
pub const PAGE_PATH: &str = "/api/v1/docs/";
/// Name of the security scheme of every endpoint that needs a token.
const BEARER: &str = "bearer";

/// The document: every path of the admin API and the probes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tafel",
        description = "Apple MDM server for school districts: the admin and teacher REST API.\n\n\
            Send an API token as `Authorization: Bearer tafel_…` (from `POST /api/v1/login`, \
            `POST /api/v1/users/{id}/tokens`, or the one printed at the first start). \
            Errors are `{\"error\": \"<code>\", \"message\": \"…\", \"field\": \"…\"}` with a \
            stable code (see `ErrorCode`). Objects outside the caller's scope answer 404. \
            Any endpoint may also answer 500 (`internal`) or 503 (`unavailable`: the \
            database cannot be reached)."
    ),
    paths(
        super::healthz,
        super::readyz,
        super::metrics,
        document,
        // users
        super::users::create,
        super::users::list,
        super::users::get,
        super::users::patch,
        super::users::delete,
        super::users::me,
        super::users::disable,
        super::users::create_token,
        super::users::list_tokens,
        super::users::revoke_token,
        super::users::login,
        super::passwords::change_own,
        super::passwords::reset,
        super::passwords::first_logins,
        // org
        super::org::create_tenant,
        super::org::list_tenants,
        super::org::get_tenant,
        super::org::patch_tenant,
        super::org::delete_tenant,
        super::org::create_school,
        super::org::get_enrollment_policy,
        super::org::put_enrollment_policy,
        super::org::list_schools,
        super::org::get_school,
        super::org::patch_school,
        super::org::delete_school,
        super::org::create_token,
        super::org::list_tokens,
        super::org::revoke_token,
        // push
        super::push::upload,
        super::push::status,
        super::push::create_request,
        super::push::pending_request,
        super::push::push_now,
        // devices
        super::devices::list,
        super::devices::get,
        super::devices::release,
        super::devices::patch,
        super::devices::retire,
        super::actions::act,
        super::actions::act_on_one,
        // reports
        super::reports::index,
        super::reports::unseen,
        super::reports::failed_installs,
        super::reports::missing_licences,
        super::reports::ending,
        super::certificates::get,
        // commands
        super::commands::enqueue,
        super::commands::list,
        super::commands::cancel,
        // classes
        super::classes::create_class,
        super::classes::list_classes,
        super::classes::my_classes,
        super::classes::get_class,
        super::classes::patch_class,
        super::classes::delete_class,
        super::classes::set_teachers,
        super::classes::add_class_devices,
        super::classes::remove_class_devices,
        super::classes::create_group,
        super::classes::list_groups,
        super::classes::get_group,
        super::classes::patch_group,
        super::classes::delete_group,
        super::classes::add_group_devices,
        super::classes::remove_group_devices,
        super::classes::import_classes,
        super::classes::import_devices,
        // catalog
        super::catalog::create_app,
        super::catalog::list_apps,
        super::catalog::get_app,
        super::catalog::update_app,
        super::catalog::delete_app,
        super::catalog::upload_profile,
        super::catalog::list_profiles,
        super::catalog::get_profile,
        super::catalog::update_profile,
        super::catalog::delete_profile,
        super::catalog::list_templates,
        super::catalog::from_template,
        super::catalog::create_assignment,
        super::catalog::list_assignments,
        super::catalog::get_assignment,
        super::catalog::update_assignment,
        super::catalog::delete_assignment,
        super::catalog::tenant_calendar,
        super::catalog::school_calendar,
        super::catalog::device_state,
        super::catalog::reconcile_now,
        // lessons
        super::lessons::create,
        super::lessons::list,
        super::lessons::get,
        super::lessons::get_readiness,
        super::lessons::approve,
        super::lessons::reject,
        super::lessons::cancel,
        super::lessons::get_settings,
        super::lessons::put_settings,
        // licences
        super::licences::upload,
        super::licences::list,
        super::licences::counts,
        super::licences::sync,
        // ade
        super::ade::create,
        super::ade::list,
        super::ade::upload,
        super::ade::sync,
        super::ade::get_school,
        super::ade::put_school,
        super::ade::list_rules,
        super::ade::create_rule,
        super::ade::delete_rule,
        super::ade::list_devices,
        super::ade::import_order_numbers,
        // audit
        super::audit::list,
    ),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "meta", description = "This document"),
        (name = "users", description = "Users, API tokens and login"),
        (name = "organisation", description = "School authorities (tenants), schools and enrollment tokens"),
        (name = "push", description = "APNs push certificates and waking devices"),
        (name = "devices", description = "Devices, filtered and paged"),
        (name = "reports", description = "The service desk's ready-made reports, paged and as CSV"),
        (name = "commands", description = "The raw MDM command queue"),
        (name = "classes", description = "Classes, device groups (carts), memberships and CSV imports"),
        (name = "catalog", description = "Apps, profiles, templates, assignments, calendars and desired state"),
        (name = "audit", description = "The audit log"),
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// Adds the bearer scheme and, to every operation that needs it, the 401 answer.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tafel_…")
                    .description(Some(
                        "An API token: `tafel_` followed by 40 characters. Only its SHA-256 is stored.",
                    ))
                    .build(),
            ),
        );
        let unauthenticated: RefOr<Response> = ResponseBuilder::new()
            .description("Missing, unknown, expired or revoked token")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ApiError")))
                    .build(),
            )
            .build()
            .into();
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.responses
                        .responses
                        .entry("401".to_owned())
                        .or_insert_with(|| unauthenticated.clone());
                }
            }
        }
    }
}

/// Built once: the document does not change while the server runs.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(document))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("location", PAGE_PATH))
                    .finish()
            }),
        )
        .service(
            SwaggerUi::new("/docs/{_:.*}").config(
                Config::new([DOCUMENT_PATH])
                    // Swagger UI would otherwise send the document to an online validator.
                    .validator_url("none")
                    .try_it_out_enabled(true),
            ),
        );
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3 document of this API", body = Object))
)]
async fn document() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}
