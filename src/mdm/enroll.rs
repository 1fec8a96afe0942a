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

/// Unknown links per address before each further guess waits (up to 15 minutes).
const GUESSES: crate::throttle::Limit = crate::throttle::Limit {
    free: 20,
    first: std::time::Duration::from_secs(1),
    ceiling: std::time::Duration::from_secs(15 * 60),
};

async fn profile(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let secret = path.into_inner();
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    // The link's hash names it in the throttle: the secret itself is kept nowhere.
    let link = format!(
        "enroll:link:{}",
        hex::encode(&openssl::sha::sha256(secret.as_bytes())[..8])
    );
    let (by_address, guesses) = (
        format!("enroll:address:{address}"),
        format!("enroll:guess:{address}"),
    );
    let too_many = |secs: u64| {
        ApiError::too_many(
            format!("too many profile downloads: try again in {secs} s"),
            secs,
        )
    };
    if let Some(secs) = state.throttle.wait(&guesses) {
        return Err(too_many(secs));
    }
    if secret.is_empty() || secret.len() > 64 {
        state.throttle.fail(&guesses, GUESSES);
        return Err(ApiError::not_found("unknown enrollment token"));
    }
    // Each download stores a challenge: at most so many per link and per address an
    // hour (a cart of iPads enrolls at once; a loop does not).
    let limits = &state.settings.mdm;
    for (key, per_hour) in [
        (&link, limits.profile_downloads_per_link_hour),
        (&by_address, limits.profile_downloads_per_address_hour),
    ] {
        if let Some(secs) = state.throttle.count(key, per_hour) {
            return Err(too_many(secs));
        }
    }
    let found = state
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
        .await;
    let (token, challenge, tenant, school) = match found {
        Ok(f) => f,
        Err(e) => {
            if e.message == TokenError::Unknown.to_string() {
                state.throttle.fail(&guesses, GUESSES);
            }
            return Err(e);
        }
    };
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
