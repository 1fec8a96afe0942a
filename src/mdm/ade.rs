//! `POST /mdm/ade/enroll`: the URL of every ADE profile. An iPad in Setup Assistant
//! posts its machine info (a plist signed by Apple's device CA); the answer is the
//! signed enrollment profile of the device's school with a one-time SCEP challenge.
//! Where the serial enrolls, and what is stored, is [`crate::ade::enroll`]'s decision.

use actix_web::{web, HttpResponse};

use super::enroll::{signed_profile, MOBILECONFIG};
use crate::ade::machine_info::MachineInfoError;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Path of the endpoint (the ADE profile's `url`).
pub const PATH: &str = "/mdm/ade/enroll";

/// Largest machine-info body (a plist and a certificate chain: a few KiB).
const MAX_BODY: usize = 64 * 1024;

/// Registers the endpoint.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::post().to(enroll)),
    );
}

fn machine_info_error(e: MachineInfoError) -> ApiError {
    match e {
        MachineInfoError::Untrusted(_) | MachineInfoError::BadSignature(_) => {
            ApiError::forbidden(format!("machine info: {e}"))
        }
        MachineInfoError::Crypto(_) | MachineInfoError::Anchors { .. } => ApiError::internal(e),
        other => ApiError::bad_request(format!("machine info: {other}")),
    }
}

async fn enroll(state: web::Data<AppState>, body: web::Bytes) -> ApiResult<HttpResponse> {
    let info = state.ade.machine_info(&body).map_err(machine_info_error)?;
    let digest = hex::encode(openssl::sha::sha256(&body));
    let fallback = state.settings.ade.new_devices_school.clone();
    let i = info.clone();
    let placement = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok(crate::ade::enroll::enroll(
                conn,
                &i,
                &digest,
                fallback.as_deref(),
            )?)
        })
        .await?;
    let signed = signed_profile(
        &state,
        &placement.token,
        &placement.challenge,
        &placement.tenant,
        &placement.school,
        !placement.removable,
    )?;
    tracing::info!(
        serial = %info.serial, product = %info.product, version = %info.version,
        device = %placement.device_id, school = %placement.school.id, returning = placement.returning,
        "ADE enrollment profile handed out"
    );
    Ok(HttpResponse::Ok().content_type(MOBILECONFIG).body(signed))
}
