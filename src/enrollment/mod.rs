//! Enrollment state from check-in messages: binding UDID ↔ identity certificate,
//! push tokens, check-out, bootstrap tokens.
//!
//! ## The identity rule
//! A device's identity is the SHA-256 of the certificate it signs with (or presents over
//! mTLS), which must chain to our CA. `Authenticate` binds that certificate to the UDID.
//! A UDID already bound to a *different* certificate is accepted only when
//! 1. the new certificate renews the bound one: our SCEP server issued it for a
//!    RenewalReq signed with the bound certificate (recorded as `renewed_from`, possibly
//!    over several renewals), or
//! 2. the enrollment is no longer active (the device checked out), i.e. a fresh
//!    enrollment of a reset or re-enrolled iPad, or
//! 3. the bound certificate has expired, so its holder can no longer use it anyway, or
//! 4. the new certificate was issued through Automated Device Enrollment for this UDID
//!    (its machine info, signed by Apple's device CA, asked for the challenge): the iPad
//!    was erased. [`reset_for_setup`] then forgets what was installed and stops its
//!    open commands, so the reconciler configures it from scratch.
//!
//! Otherwise it is refused. Every other message must come with the bound certificate
//! (or a renewal of it, which then becomes the bound one).

pub mod profile;
pub mod tokens;

use diesel::prelude::*;

use crate::db::schema::{command_queue, device_certificates, devices, scep_challenges};
use crate::db::{new_id, now, DbConn};
use crate::protocol::{Authenticate, CheckOut, TokenUpdate};
use crate::queue;

/// Enrollment states, as stored.
pub mod status {
    /// Authenticate received, no push token yet.
    pub const AUTHENTICATED: &str = "authenticated";
    /// TokenUpdate received: managed and reachable by push.
    pub const ACTIVE: &str = "active";
    /// Checked out (MDM profile removed) or unenrolled.
    pub const INACTIVE: &str = "inactive";
    /// Known (imported, ASM) but never enrolled.
    pub const PENDING: &str = "pending";
}

/// The verified identity a request came with.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Lowercase hex SHA-256 of the certificate's DER.
    pub sha256: String,
    /// End of the certificate's validity.
    pub not_after: chrono::NaiveDateTime,
}

/// The device a request belongs to, after the identity check.
#[derive(Debug, Clone, Queryable)]
pub struct DeviceRef {
    /// Row id.
    pub id: String,
    /// UDID.
    pub udid: Option<String>,
    /// Enrollment state.
    pub enrollment_status: String,
    /// Bound certificate.
    pub identity_cert_sha256: Option<String>,
    /// Its expiry.
    pub identity_cert_not_after: Option<chrono::NaiveDateTime>,
    /// Last contact.
    pub last_seen_at: Option<chrono::NaiveDateTime>,
}

/// Why a device request is refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The UDID is bound to another certificate.
    #[error("device {0} is enrolled with a different identity certificate")]
    IdentityMismatch(String),
    /// The device is not enrolled (no Authenticate yet).
    #[error("device {0} is not enrolled")]
    NotEnrolled(String),
    /// The message lacks a UDID (user-channel messages are not supported).
    #[error("message has no UDID")]
    NoUdid,
}

fn device_select() -> (
    devices::id,
    devices::udid,
    devices::enrollment_status,
    devices::identity_cert_sha256,
    devices::identity_cert_not_after,
    devices::last_seen_at,
) {
    (
        devices::id,
        devices::udid,
        devices::enrollment_status,
        devices::identity_cert_sha256,
        devices::identity_cert_not_after,
        devices::last_seen_at,
    )
}

/// Loads a device by UDID.
pub fn find(conn: &mut DbConn, udid: &str) -> QueryResult<Option<DeviceRef>> {
    devices::table
        .filter(devices::udid.eq(udid))
        .select(device_select())
        .first(conn)
        .optional()
}

/// Is `candidate` a (possibly repeated) renewal of `bound`?
fn renews(conn: &mut DbConn, candidate: &str, bound: &str) -> QueryResult<bool> {
    let mut current = candidate.to_owned();
    // A renewal chain longer than this is not plausible for one device.
    for _ in 0..16 {
        let parent: Option<Option<String>> = device_certificates::table
            .find(&current)
            .select(device_certificates::renewed_from)
            .first(conn)
            .optional()?;
        match parent.flatten() {
            Some(p) if p == bound => return Ok(true),
            Some(p) => current = p,
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// Checks that `identity` may speak for the enrolled `udid`; rebinds on renewal.
/// Also records the contact time (at most once a minute, to keep connects read-only).
pub fn verify_bound(
    conn: &mut DbConn,
    udid: &str,
    identity: &Identity,
) -> Result<DeviceRef, EnrollError> {
    let device = find(conn, udid)?.ok_or_else(|| EnrollError::NotEnrolled(udid.to_owned()))?;
    if device.udid.is_none() || device.enrollment_status == status::PENDING {
        return Err(EnrollError::NotEnrolled(udid.to_owned()));
    }
    let at = now();
    match device.identity_cert_sha256.as_deref() {
        Some(bound) if bound == identity.sha256 => {}
        Some(bound) if renews(conn, &identity.sha256, bound)? => {
            diesel::update(devices::table.find(&device.id))
                .set((
                    devices::identity_cert_sha256.eq(&identity.sha256),
                    devices::identity_cert_not_after.eq(identity.not_after),
                    devices::updated_at.eq(at),
                ))
                .execute(conn)?;
            tracing::info!(udid, "identity certificate renewed");
        }
        _ => return Err(EnrollError::IdentityMismatch(udid.to_owned())),
    }
    if device
        .last_seen_at
        .is_none_or(|t| at - t > chrono::Duration::seconds(60))
    {
        diesel::update(devices::table.find(&device.id))
            .set(devices::last_seen_at.eq(at))
            .execute(conn)?;
    }
    Ok(device)
}

/// `Authenticate`: creates or updates the enrollment and binds the certificate.
pub fn authenticate(
    conn: &mut DbConn,
    udid: &str,
    msg: &Authenticate,
    identity: &Identity,
) -> Result<String, EnrollError> {
    let udid = udid.to_owned();
    conn.write_tx(|conn| {
        let at = now();
        let existing = find(conn, &udid)?;
        let fields = (
            devices::serial_number.eq(msg.serial_number.as_deref()),
            devices::model.eq(msg.model.as_deref()),
            devices::model_name.eq(msg.model_name.as_deref()),
            devices::product_name.eq(msg.product_name.as_deref()),
            devices::os_version.eq(msg.os_version.as_deref()),
            devices::build_version.eq(msg.build_version.as_deref()),
            devices::imei.eq(msg.imei.as_deref()),
            devices::topic.eq(msg.topic.as_deref()),
        );
        let binding = (
            devices::identity_cert_sha256.eq(&identity.sha256),
            devices::identity_cert_not_after.eq(identity.not_after),
            devices::enrollment_status.eq(status::AUTHENTICATED),
            devices::last_seen_at.eq(at),
            devices::updated_at.eq(at),
        );
        let token = tokens::token_of_certificate(conn, &identity.sha256)?;
        let id: Result<String, EnrollError> = match existing {
            Some(device) => {
                // An identity issued through ADE for this very UDID: the iPad was
                // erased and went through Setup Assistant again (rule 4).
                let erased = match device.identity_cert_sha256.as_deref() {
                    Some(bound) if bound == identity.sha256 => false,
                    bound => {
                        tokens::ade_origin(conn, &identity.sha256)?.as_deref()
                            == Some(udid.as_str())
                            && match bound {
                                Some(b) => !renews(conn, &identity.sha256, b)?,
                                None => true,
                            }
                    }
                };
                let allowed = match device.identity_cert_sha256.as_deref() {
                    None => true,
                    Some(bound) if bound == identity.sha256 => true,
                    Some(bound) => {
                        erased
                            || device.enrollment_status == status::INACTIVE
                            || device.enrollment_status == status::PENDING
                            || device.identity_cert_not_after.is_some_and(|t| t <= at)
                            || renews(conn, &identity.sha256, bound)?
                    }
                };
                if !allowed {
                    return Err(EnrollError::IdentityMismatch(udid.clone()));
                }
                if erased && device.enrollment_status != status::PENDING {
                    reset_for_setup(conn, &device.id)?;
                    crate::audit::record(
                        conn,
                        &crate::audit::Entry::new("system:ade", "reset", "device")
                            .object(&device.id)
                            .summary(serde_json::json!({"why": "erased: enrolled again through Automated Device Enrollment", "udid": udid})),
                    )?;
                    // The wait began when its machine info asked for this identity.
                    let asked: Option<chrono::NaiveDateTime> = scep_challenges::table
                        .filter(scep_challenges::udid.eq(&udid))
                        .filter(scep_challenges::used_at.is_not_null())
                        .order(scep_challenges::used_at.desc())
                        .select(scep_challenges::created_at)
                        .first(conn)
                        .optional()?;
                    crate::devices::start_setup(
                        conn,
                        &device.id,
                        msg.serial_number.as_deref(),
                        asked.unwrap_or(at),
                    )?;
                }
                diesel::update(devices::table.find(&device.id))
                    .set((fields, binding))
                    .execute(conn)?;
                Ok(device.id)
            }
            None => {
                // A device imported by serial before it enrolled takes over that row.
                let imported: Option<String> = match msg.serial_number.as_deref() {
                    Some(serial) => devices::table
                        .filter(devices::serial_number.eq(serial))
                        .filter(devices::udid.is_null())
                        .select(devices::id)
                        .first(conn)
                        .optional()?,
                    None => None,
                };
                match imported {
                    Some(id) => {
                        diesel::update(devices::table.find(&id))
                            .set((devices::udid.eq(&udid), fields, binding))
                            .execute(conn)?;
                        Ok(id)
                    }
                    None => {
                        let id = new_id();
                        diesel::insert_into(devices::table)
                            .values((
                                devices::id.eq(&id),
                                devices::udid.eq(&udid),
                                fields,
                                binding,
                                devices::awaiting_configuration.eq(false),
                                devices::created_at.eq(at),
                            ))
                            .execute(conn)?;
                        Ok(id)
                    }
                }
            }
        };
        let id = id?;
        // iOS sends no DeviceName here (macOS does); keep an imported or reported name.
        if let Some(name) = msg.device_name.as_deref() {
            diesel::update(devices::table.find(&id))
                .set(devices::name.eq(name))
                .execute(conn)?;
        }
        if let Some(token) = token {
            land(conn, &id, &token)?;
        }
        Ok(id)
    })
}

/// Puts a device where its enrollment token says: the token's school unless an import
/// already placed it (imports are more specific), plus the token's class and cart.
fn land(conn: &mut DbConn, device_id: &str, token: &tokens::EnrollmentToken) -> QueryResult<()> {
    use crate::org::classes::{self, Membership};
    let school: Option<String> = devices::table
        .find(device_id)
        .select(devices::school_id)
        .first(conn)?;
    let school = match school {
        Some(s) => s,
        None => {
            diesel::update(devices::table.find(device_id))
                .set((
                    devices::tenant_id.eq(&token.tenant_id),
                    devices::school_id.eq(&token.school_id),
                ))
                .execute(conn)?;
            token.school_id.clone()
        }
    };
    if school != token.school_id {
        return Ok(());
    }
    let ids = [device_id.to_owned()];
    for m in [
        token.class_id.as_deref().map(Membership::Class),
        token.group_id.as_deref().map(Membership::Group),
    ]
    .into_iter()
    .flatten()
    {
        match classes::add_devices(conn, &school, m, &ids) {
            Ok(_) => {}
            Err(crate::org::OrgError::Db(e)) => return Err(e),
            // A class or cart deleted since the token was made: the school is enough.
            Err(e) => {
                tracing::warn!(device = device_id, error = %e, "enrollment token names a class or cart that no longer fits")
            }
        }
    }
    Ok(())
}

/// `TokenUpdate`: stores the push token and magic; the enrollment becomes active.
pub fn token_update(
    conn: &mut DbConn,
    device: &DeviceRef,
    msg: &TokenUpdate,
) -> Result<(), EnrollError> {
    let at = now();
    conn.write_tx(|conn| {
        let enrolled_at: Option<chrono::NaiveDateTime> = devices::table
            .find(&device.id)
            .select(devices::enrolled_at)
            .first(conn)?;
        diesel::update(devices::table.find(&device.id))
            .set((
                devices::push_token.eq(msg.token.to_hex()),
                devices::push_magic.eq(msg.push_magic.as_str()),
                devices::topic.eq(msg.topic.as_deref()),
                devices::awaiting_configuration.eq(msg.awaiting_configuration),
                devices::enrollment_status.eq(status::ACTIVE),
                devices::enrolled_at.eq(enrolled_at.or(Some(at))),
                devices::unenrolled_at.eq(None::<chrono::NaiveDateTime>),
                // A new token makes the device reachable again.
                devices::push_invalid_at.eq(None::<chrono::NaiveDateTime>),
                devices::push_failures.eq(0),
                devices::next_push_at.eq(None::<chrono::NaiveDateTime>),
                devices::updated_at.eq(at),
            ))
            .execute(conn)?;
        if let Some(unlock) = &msg.unlock_token {
            diesel::update(devices::table.find(&device.id))
                .set(devices::unlock_token.eq(unlock))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// `CheckOut`: the enrollment becomes inactive and its open commands stop.
pub fn check_out(
    conn: &mut DbConn,
    device: &DeviceRef,
    _msg: &CheckOut,
) -> Result<usize, EnrollError> {
    let at = now();
    conn.write_tx(|conn| {
        diesel::update(devices::table.find(&device.id))
            .set((
                devices::enrollment_status.eq(status::INACTIVE),
                devices::unenrolled_at.eq(at),
                devices::push_token.eq(None::<String>),
                devices::push_magic.eq(None::<String>),
                devices::updated_at.eq(at),
            ))
            .execute(conn)?;
        Ok(stop_open_commands(conn, &device.id, at)?)
    })
}

fn stop_open_commands(
    conn: &mut DbConn,
    device_id: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        command_queue::table
            .filter(command_queue::device_id.eq(device_id))
            .filter(command_queue::status.eq_any(queue::state::OPEN)),
    )
    .set((
        command_queue::status.eq(queue::state::CANCELLED),
        command_queue::updated_at.eq(at),
    ))
    .execute(conn)
}

/// A device came back through Setup Assistant (erased): its enrollment becomes pending,
/// its inventory is forgotten and its open commands stop. Returns commands stopped.
pub fn reset_for_setup(conn: &mut DbConn, device_id: &str) -> QueryResult<usize> {
    use crate::db::schema::{device_apps, device_profiles};
    let at = now();
    diesel::update(devices::table.find(device_id))
        .set((
            devices::enrollment_status.eq(status::PENDING),
            devices::enrolled_at.eq(None::<chrono::NaiveDateTime>),
            devices::awaiting_configuration.eq(false),
            devices::push_token.eq(None::<String>),
            devices::push_magic.eq(None::<String>),
            devices::updated_at.eq(at),
        ))
        .execute(conn)?;
    diesel::delete(device_apps::table.filter(device_apps::device_id.eq(device_id)))
        .execute(conn)?;
    diesel::delete(device_profiles::table.filter(device_profiles::device_id.eq(device_id)))
        .execute(conn)?;
    stop_open_commands(conn, device_id, at)
}

/// `SetBootstrapToken`: stores (or clears) the device's bootstrap token.
pub fn set_bootstrap_token(
    conn: &mut DbConn,
    device: &DeviceRef,
    token: Option<&[u8]>,
) -> QueryResult<()> {
    diesel::update(devices::table.find(&device.id))
        .set((
            devices::bootstrap_token.eq(token),
            devices::updated_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// `GetBootstrapToken`: the stored token, if any.
pub fn bootstrap_token(conn: &mut DbConn, device: &DeviceRef) -> QueryResult<Option<Vec<u8>>> {
    devices::table
        .find(&device.id)
        .select(devices::bootstrap_token)
        .first(conn)
}
