//! `GET /enroll/{token}`: the signed enrollment profile a school's iPad installs.

use actix_web::{web, HttpResponse};

use crate::enrollment::profile::EnrollmentProfile;
use crate::enrollment::tokens::{self, TokenError};
use crate::error::{ApiError, ApiResult};
use crate::org;
use crate::state::AppState;

/// Content type of configuration profiles.
pub const MOBILECONFIG: &str = "application/x-apple-aspen-config";

/// Registers the enrollment endpoint.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/enroll/{token}", web::get().to(profile));
}

async fn profile(state: web::Data<AppState>, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let secret = path.into_inner();
    if secret.is_empty() || secret.len() > 64 {
        return Err(ApiError::not_found("unknown enrollment token"));
    }
    let (token, challenge, tenant, school) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let (token, challenge) = tokens::redeem(conn, &secret).map_err(|e| match e {
                TokenError::Db(e) => ApiError::from(e),
                other => ApiError::not_found(other.to_string()),
            })?;
            let tenant = org::tenant(conn, &token.tenant_id)?
                .ok_or_else(|| ApiError::not_found("unknown enrollment token"))?;
            let school = org::school(conn, &token.school_id)?
                .ok_or_else(|| ApiError::not_found("unknown enrollment token"))?;
            Ok((token, challenge, tenant, school))
        })
        .await?;
    let signed = signed_profile(&state, &token, &challenge, &tenant, &school, false)?;
    tracing::info!(token = %token.id, school = %school.id, "enrollment profile handed out");
    Ok(HttpResponse::Ok()
        .content_type(MOBILECONFIG)
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"tafel-{}.mobileconfig\"",
                tenant.slug
            ),
        ))
        .body(signed))
}

/// The signed enrollment profile of a school: our CA, SCEP with `challenge`, MDM.
pub(crate) fn signed_profile(
    state: &AppState,
    token: &tokens::EnrollmentToken,
    challenge: &str,
    tenant: &org::Tenant,
    school: &org::School,
    removal_disallowed: bool,
) -> ApiResult<Vec<u8>> {
    let topic = tenant.push_topic.clone().ok_or_else(|| {
        ApiError::conflict(format!(
            "school authority {:?} has no push certificate yet",
            tenant.name
        ))
    })?;
    let base = state.settings.base_url();
    // The root is the anchor the iPad installs; the issuing CA reaches it through the
    // server's TLS chain, the signed profile and SCEP's GetCACert.
    let ca_der = state.ca.anchor().to_der().map_err(ApiError::internal)?;
    let identifier = format!("de.tafel.enroll.{}", tenant.slug);
    let subject_cn = format!(
        "tafel device {}",
        &token.id[token.id.len().saturating_sub(12)..]
    );
    let unsigned = EnrollmentProfile {
        organization: &tenant.name,
        display_name: &format!("{} (tafel)", school.name),
        identifier: &identifier,
        ca_der: &ca_der,
        scep_url: &format!("{base}/scep"),
        challenge,
        subject_cn: &subject_cn,
        topic: &topic,
        server_url: &format!("{base}{}", state.settings.mdm.connect_path),
        check_in_url: &format!("{base}{}", state.settings.mdm.checkin_path),
        removal_disallowed,
    }
    .to_xml();
    state
        .signer
        .sign(&unsigned, &state.ca)
        .map_err(ApiError::internal)
}
