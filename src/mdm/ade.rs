//! `POST /mdm/ade/enroll`: the URL of every ADE profile. An iPad in Setup Assistant
//! posts its machine info (a plist signed by Apple's device CA); the answer is the
//! signed enrollment profile of the device's school with a one-time SCEP challenge.
//!
//! Only serials Apple's sync reported as assigned to this server are admitted. The
//! school: where the import or a placement rule put the serial; serials without a
//! school go to `ade.new_devices_school` when it is set (and belongs to the serial's
//! authority) and are refused otherwise (403 with the reason). A machine info body is
//! good for one identity ([`tokens::redeem_ade`]). An iPad known to
//! tafel that comes back through Setup Assistant was erased: its enrollment starts
//! over when the identity issued for this request authenticates
//! ([`crate::enrollment::binding`], [`crate::enrollment::start_over`]).

use actix_web::{web, HttpResponse};
use diesel::prelude::*;

use super::enroll::{signed_profile, MOBILECONFIG};
use crate::ade::machine_info::MachineInfoError;
use crate::db::schema::{ade_devices, devices};
use crate::db::{new_id, now};
use crate::enrollment::{tokens, EnrollmentStatus};
use crate::error::{ApiError, ApiResult};
use crate::org;
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

/// Where a serial enrolls, decided from what tafel knows.
struct Placement {
    tenant: org::Tenant,
    school: org::School,
    device_id: String,
    returning: bool,
    removable: bool,
}

async fn enroll(state: web::Data<AppState>, body: web::Bytes) -> ApiResult<HttpResponse> {
    let info = state.ade.machine_info(&body).map_err(machine_info_error)?;
    let digest = hex::encode(openssl::sha::sha256(&body));
    let fallback = state.settings.ade.new_devices_school.clone();
    let i = info.clone();
    let (placement, token, challenge) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            conn.write_tx(|conn| {
                let serial = i.serial.as_str();
                let in_asm: Option<String> = ade_devices::table
                    .find(serial)
                    .filter(ade_devices::deleted_at.is_null())
                    .select(ade_devices::tenant_id)
                    .first(conn)
                    .optional()?;
                let mut q = devices::table
                    .filter(devices::serial_number.eq(serial))
                    .into_boxed();
                // The authority's own row of the serial (Apple says whose it is).
                if let Some(t) = &in_asm {
                    q = q.filter(devices::tenant_id.eq(t.clone()));
                }
                let known: Option<(String, Option<String>, Option<String>, EnrollmentStatus)> = q
                    .select((devices::id, devices::school_id, devices::udid, devices::enrollment_status))
                    .order(devices::created_at.asc())
                    .first(conn)
                    .optional()?;
                let known_before = known.as_ref().map(|k| (k.0.clone(), k.1.clone()));
                let mut school_id = known.as_ref().and_then(|k| k.1.clone());
                if school_id.is_none() {
                    if let Some(tenant) = &in_asm {
                        crate::ade::school::place(conn, tenant, Some(&[serial.to_owned()]))?;
                        school_id = devices::table
                            .filter(devices::serial_number.eq(serial))
                            .filter(devices::tenant_id.eq(tenant))
                            .filter(devices::school_id.is_not_null())
                            .select(devices::school_id)
                            .first::<Option<String>>(conn)
                            .optional()?
                            .flatten();
                    }
                }
                // Apple sends only the devices assigned to this server to the ADE
                // URL: a serial its sync never reported is not one of ours, whatever
                // the body says (an OTA profile-service body is signed the same way).
                if in_asm.is_none() {
                    return Err(ApiError::forbidden(format!(
                        "serial {serial} is not assigned to this MDM server in Apple School Manager (or not synced yet: POST /api/v1/ade/sync)"
                    )));
                }
                let school_id = match (school_id, &fallback) {
                    (Some(s), _) => s,
                    (None, Some(f)) => f.clone(),
                    (None, None) => {
                        return Err(ApiError::forbidden(format!(
                            "serial {serial} has no school in tafel: add a placement rule or import it"
                        )))
                    }
                };
                let school = org::school(conn, &school_id)?.ok_or_else(|| {
                    ApiError::forbidden(format!("serial {serial}: its school no longer exists"))
                })?;
                if in_asm.as_ref().is_some_and(|t| *t != school.tenant_id) {
                    return Err(ApiError::forbidden(format!(
                        "serial {serial} belongs to another school authority than the new-devices school"
                    )));
                }
                let tenant = org::tenant(conn, &school.tenant_id)?
                    .ok_or_else(|| ApiError::forbidden("the school's authority no longer exists"))?;
                if tenant.push_topic.is_none() {
                    // Checked before anything is stored: without a topic there is no profile.
                    return Err(ApiError::conflict(format!(
                        "school authority {:?} has no push certificate yet",
                        tenant.name
                    )));
                }
                let at = now();
                // An enrolled iPad in Setup Assistant again was erased. Nothing changes
                // here (machine info can be replayed): its enrollment starts over when
                // the identity issued for this request authenticates.
                let (device_id, returning) = match known {
                    Some((id, current, udid, st)) => {
                        if current.is_none() {
                            diesel::update(devices::table.find(&id))
                                .set((
                                    devices::tenant_id.eq(&school.tenant_id),
                                    devices::school_id.eq(&school.id),
                                ))
                                .execute(conn)?;
                        }
                        (id, udid.is_some() && st != EnrollmentStatus::Pending)
                    }
                    None => {
                        let id = new_id();
                        diesel::insert_into(devices::table)
                            .values((
                                devices::id.eq(&id),
                                devices::serial_number.eq(serial),
                                devices::tenant_id.eq(&school.tenant_id),
                                devices::school_id.eq(&school.id),
                                devices::enrollment_status.eq(EnrollmentStatus::Pending),
                                devices::awaiting_configuration.eq(false),
                                devices::created_at.eq(at),
                                devices::updated_at.eq(at),
                            ))
                            .execute(conn)?;
                        (id, false)
                    }
                };
                if known_before.as_ref() != Some(&(device_id.clone(), Some(school.id.clone()))) {
                    crate::audit::record(
                        conn,
                        &crate::audit::Entry::new(&format!("device:{serial}"), "ade_enroll", "device")
                            .object(&device_id)
                            .scope(Some(&school.tenant_id), Some(&school.id))
                            .summary(serde_json::json!({"after": {"school_id": school.id, "product": i.product}})),
                    )?;
                }
                if !returning {
                    // The Setup Assistant wait starts now.
                    crate::devices::start_setup(conn, &device_id, Some(serial), at)?;
                }
                let removable = crate::ade::school::settings(conn, &school.id)?
                    .settings
                    .profile
                    .is_mdm_removable;
                let (token, challenge) = tokens::redeem_ade(conn, &school.tenant_id, &school.id, &i.udid, serial, &digest)
                    .map_err(|e| match e {
                        tokens::TokenError::Db(e) => ApiError::from(e),
                        tokens::TokenError::MachineInfoUsed => ApiError::forbidden(e.to_string()),
                        other => ApiError::internal(other),
                    })?;
                Ok((
                    Placement { tenant, school, device_id, returning, removable },
                    token,
                    challenge,
                ))
            })
        })
        .await?;
    let signed = signed_profile(
        &state,
        &token,
        &challenge,
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
