//! Enrollment state from check-in messages: binding UDID ↔ identity certificate,
//! push tokens, check-out, erase and release, bootstrap tokens.
//!
//! ## The identity rule
//! A device's identity is the SHA-256 of the certificate it signs with (or presents over
//! mTLS), which must chain to our CA and be one our SCEP server issued. `Authenticate`
//! binds that certificate to the UDID under the rules of [`binding`]: a certificate is
//! worth what it was issued for (its enrollment token's authority and school, or its
//! ADE machine info) and belongs to one UDID for its whole life. Every other message
//! must come with the bound certificate (or a renewal of it, which then becomes the
//! bound one).

pub mod binding;
pub mod profile;
pub mod tokens;

use diesel::prelude::*;

use crate::db::schema::{command_queue, device_certificates, devices, scep_challenges};
use crate::db::{new_id, now, DbConn};
use crate::protocol::{Authenticate, CheckOut, TokenUpdate};
use crate::queue;

crate::text_enum! {
    /// A device's enrollment state, as stored.
    pub enum EnrollmentStatus("enrollment status") {
        /// Known (imported, ASM) but never enrolled; or back in Setup Assistant after an
        /// ADE reset, until its new identity authenticates.
        Pending = "pending",
        /// Authenticate received, no push token yet.
        Authenticated = "authenticated",
        /// TokenUpdate received: managed and reachable by push.
        Active = "active",
        /// Checked out (MDM profile removed) or unenrolled.
        Inactive = "inactive",
        /// Erased (EraseDevice acknowledged): out of classes' counts, waiting to come back
        /// through a fresh enrollment.
        Erased = "erased",
        /// Released by an admin: no longer managed; may enroll again anywhere.
        Retired = "retired",
    }
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
    pub enrollment_status: EnrollmentStatus,
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
    /// Sealing a device's secret failed.
    #[error("cannot seal a device secret: {0}")]
    Secret(String),
    /// Queueing the inventory of a device that starts over failed.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    /// The certificate may not speak for this UDID.
    #[error("device {udid}: {why}")]
    Refused {
        /// The UDID the message named.
        udid: String,
        /// Why.
        why: binding::Refusal,
    },
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

/// Loads a device by UDID with whether a command is open for it (pending, sent or
/// deferred): the connect path's one read, one statement (one round trip on
/// PostgreSQL) instead of two.
pub fn find_with_open(conn: &mut DbConn, udid: &str) -> QueryResult<Option<(DeviceRef, bool)>> {
    use queue::QueueState as Q;
    let open = command_queue::table
        .filter(command_queue::device_id.eq(devices::id))
        .filter(
            command_queue::status
                .eq(Q::Pending)
                .or(command_queue::status.eq(Q::Sent))
                .or(command_queue::status.eq(Q::NotNow)),
        );
    devices::table
        .filter(devices::udid.eq(udid))
        .select((device_select(), diesel::dsl::exists(open)))
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
    check_bound(conn, device, udid, identity)
}

/// As [`verify_bound`], for a device already loaded (by [`find_with_open`]).
pub fn check_bound(
    conn: &mut DbConn,
    device: DeviceRef,
    udid: &str,
    identity: &Identity,
) -> Result<DeviceRef, EnrollError> {
    let gone = [
        EnrollmentStatus::Pending,
        EnrollmentStatus::Erased,
        EnrollmentStatus::Retired,
    ];
    if device.udid.is_none() || gone.contains(&device.enrollment_status) {
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

/// What tafel knows about a certificate, for [`binding::may_bind`].
fn cert_facts(conn: &mut DbConn, sha256: &str, udid: &str) -> QueryResult<binding::CertFacts> {
    let row: Option<(Option<String>, Option<String>, chrono::NaiveDateTime)> =
        device_certificates::table
            .find(sha256)
            .select((
                device_certificates::udid,
                device_certificates::ade_udid,
                device_certificates::created_at,
            ))
            .first(conn)
            .optional()?;
    let Some((bound_udid, ade_udid, issued_at)) = row else {
        return Ok(binding::CertFacts {
            issued_here: false,
            bound_udid: None,
            token: None,
            ade: false,
            udid_counted: false,
            issued_at: None,
        });
    };
    let token = tokens::token_of_certificate(conn, sha256)?;
    let udid_counted = match &token {
        Some(t) => tokens::counts_device(conn, &t.id, udid, sha256)?,
        None => false,
    };
    Ok(binding::CertFacts {
        issued_here: true,
        bound_udid,
        token,
        ade: ade_udid.is_some(),
        udid_counted,
        issued_at: Some(issued_at),
    })
}

/// What tafel knows about a UDID's row, for [`binding::may_bind`].
fn device_facts(
    conn: &mut DbConn,
    device: &DeviceRef,
    sha256: &str,
) -> QueryResult<binding::DeviceFacts> {
    use crate::db::schema::tenants;
    let (tenant_id, school_id, unenrolled_at): (
        Option<String>,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    ) = devices::table
        .find(&device.id)
        .select((
            devices::tenant_id,
            devices::school_id,
            devices::unenrolled_at,
        ))
        .first(conn)?;
    let renews_bound = match device.identity_cert_sha256.as_deref() {
        Some(bound) if bound != sha256 => renews(conn, sha256, bound)?,
        _ => false,
    };
    let bound_via_ade = match device.identity_cert_sha256.as_deref() {
        Some(bound) => match tokens::token_of_certificate(conn, bound)? {
            Some(t) => tokens::is_ade(conn, &t.id)?,
            None => false,
        },
        None => true,
    };
    let release_required = match &tenant_id {
        Some(t) => tenants::table
            .find(t)
            .select(tenants::reenroll_requires_release)
            .first::<bool>(conn)
            .optional()?
            .unwrap_or(false),
        None => false,
    };
    Ok(binding::DeviceFacts {
        id: device.id.clone(),
        tenant_id,
        school_id,
        status: device.enrollment_status,
        bound_sha256: device.identity_cert_sha256.clone(),
        renews_bound,
        bound_via_ade,
        release_required,
        // `release` stamps the retirement in `unenrolled_at`.
        retired_at: (device.enrollment_status == EnrollmentStatus::Retired)
            .then_some(unenrolled_at)
            .flatten(),
    })
}

/// Rows pre-registered with `serial` that no UDID has taken yet.
fn serial_rows(conn: &mut DbConn, serial: Option<&str>) -> QueryResult<Vec<binding::SerialRow>> {
    let Some(serial) = serial else {
        return Ok(Vec::new());
    };
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    );
    let rows: Vec<Row> = devices::table
        .filter(devices::serial_number.eq(serial))
        .filter(devices::udid.is_null())
        .select((
            devices::id,
            devices::tenant_id,
            devices::school_id,
            devices::identity_cert_sha256,
            devices::enrolled_at,
        ))
        .order(devices::created_at.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, tenant_id, school_id, cert, enrolled)| binding::SerialRow {
                id,
                tenant_id,
                school_id,
                enrolled_before: cert.is_some() || enrolled.is_some(),
            },
        )
        .collect())
}

/// `Authenticate`: decides whether the certificate may speak for the UDID
/// ([`binding::may_bind`]), then creates, adopts or re-binds the enrollment.
pub fn authenticate(
    conn: &mut DbConn,
    udid: &str,
    msg: &Authenticate,
    identity: &Identity,
) -> Result<String, EnrollError> {
    conn.write_tx(|conn| {
        let at = now();
        let existing = find(conn, udid)?;
        let cert = cert_facts(conn, &identity.sha256, udid)?;
        let facts = match &existing {
            Some(d) => Some(device_facts(conn, d, &identity.sha256)?),
            None => None,
        };
        let rows = match existing {
            Some(_) => Vec::new(),
            None => serial_rows(conn, msg.serial_number.as_deref())?,
        };
        let decision = binding::may_bind(
            udid,
            &identity.sha256,
            &cert,
            facts.as_ref(),
            msg.serial_number.as_deref(),
            &rows,
            at,
        )
        .map_err(|why| EnrollError::Refused {
            udid: udid.to_owned(),
            why,
        })?;
        let refused = |why| EnrollError::Refused {
            udid: udid.to_owned(),
            why,
        };
        // A certificate's first binding makes the UDID count for its token.
        if matches!(
            decision,
            binding::Binding::New { .. } | binding::Binding::Rebind(_)
        ) {
            if let Some(token) = &cert.token {
                if !cert.udid_counted && !tokens::count_device(conn, &token.id)? {
                    return Err(refused(binding::Refusal::Token(
                        "it has been used up".into(),
                    )));
                }
            }
            if !tokens::bind_certificate(conn, &identity.sha256, udid)? {
                return Err(refused(binding::Refusal::OtherDevice));
            }
        }
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
        let bind = (
            devices::udid.eq(udid),
            devices::identity_cert_sha256.eq(&identity.sha256),
            devices::identity_cert_not_after.eq(identity.not_after),
            devices::enrollment_status.eq(EnrollmentStatus::Authenticated),
            devices::last_seen_at.eq(at),
            devices::updated_at.eq(at),
        );
        let id = match (&decision, existing, facts) {
            (binding::Binding::New { adopt: Some(row) }, _, _) => row.clone(),
            (binding::Binding::New { adopt: None }, _, _) => {
                let id = new_id();
                diesel::insert_into(devices::table)
                    .values(crate::devices::NewDevice {
                        udid: Some(udid),
                        ..crate::devices::NewDevice::pending(&id, at)
                    })
                    .execute(conn)?;
                id
            }
            (binding::Binding::Rebind(why), Some(_), Some(before)) => {
                let token = cert
                    .token
                    .as_ref()
                    .ok_or(EnrollError::NotEnrolled(udid.to_owned()))?;
                rebind(conn, &before, *why, token, udid, &identity.sha256)?;
                if cert.ade {
                    // The wait began when its machine info asked for this identity.
                    let asked: Option<chrono::NaiveDateTime> = scep_challenges::table
                        .filter(scep_challenges::udid.eq(udid))
                        .filter(scep_challenges::used_at.is_not_null())
                        .order(scep_challenges::used_at.desc())
                        .select(scep_challenges::created_at)
                        .first(conn)
                        .optional()?;
                    crate::devices::start_setup(
                        conn,
                        &before.id,
                        msg.serial_number.as_deref(),
                        asked.unwrap_or(at),
                    )?;
                }
                before.id
            }
            (_, Some(d), _) => d.id,
            (_, None, _) => return Err(EnrollError::NotEnrolled(udid.to_owned())),
        };
        diesel::update(devices::table.find(&id))
            .set((fields, bind))
            .execute(conn)?;
        // iOS sends no DeviceName here (macOS does); keep an imported or reported name.
        if let Some(name) = msg.device_name.as_deref() {
            diesel::update(devices::table.find(&id))
                .set(devices::name.eq(name))
                .execute(conn)?;
        }
        if let Some(token) = &cert.token {
            if !matches!(decision, binding::Binding::Same | binding::Binding::Renewed) {
                land(conn, &id, token)?;
            }
        }
        Ok(id)
    })
}

/// A known device with a new identity starts over where the token says: its old queue
/// closed, its inventory forgotten and asked for again, moved to the token's school
/// (leaving the classes and carts of another school), with an audit entry.
fn rebind(
    conn: &mut DbConn,
    before: &binding::DeviceFacts,
    why: binding::Rebind,
    token: &tokens::EnrollmentToken,
    udid: &str,
    new_certificate: &str,
) -> Result<(), EnrollError> {
    use crate::db::schema::{class_devices, group_devices};
    let stopped = start_over(conn, &before.id)?;
    if before.school_id.as_deref() != Some(token.school_id.as_str()) {
        diesel::delete(class_devices::table.filter(class_devices::device_id.eq(&before.id)))
            .execute(conn)?;
        diesel::delete(group_devices::table.filter(group_devices::device_id.eq(&before.id)))
            .execute(conn)?;
        diesel::update(devices::table.find(&before.id))
            .set((
                devices::tenant_id.eq(&token.tenant_id),
                devices::school_id.eq(&token.school_id),
            ))
            .execute(conn)?;
    }
    crate::inventory::ask(conn, std::slice::from_ref(&before.id), 1)?;
    crate::audit::record(
        conn,
        &crate::audit::Entry::new(&format!("device:{udid}"), "rebind", "device")
            .object(&before.id)
            .scope(Some(&token.tenant_id), Some(&token.school_id))
            .summary(serde_json::json!({
                "why": why.as_str(),
                "udid": udid,
                "commands_closed": stopped,
                "before": {"status": before.status, "school_id": before.school_id, "certificate": before.bound_sha256},
                "after": {"school_id": token.school_id, "certificate": new_certificate, "enrollment_token_id": token.id},
            })),
    )?;
    tracing::info!(udid, device = %before.id, why = why.as_str(), school = %token.school_id, "device bound to a new identity");
    Ok(())
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

/// `TokenUpdate`: stores the push token and magic; the enrollment becomes active. The
/// first one of an enrollment asks the iPad what it is and has (DeviceInformation,
/// InstalledApplicationList, ProfileList, SecurityInfo), after the installs it is due.
/// Returns whether it did (the iPad is then pushed).
pub fn token_update(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    device: &DeviceRef,
    msg: &TokenUpdate,
) -> Result<bool, EnrollError> {
    use crate::secrets::{binding, places};
    // What clears a passcode is kept sealed to this device's row.
    let unlock = match &msg.unlock_token {
        Some(u) => Some(
            secrets
                .seal_for(&binding(places::UNLOCK_TOKEN, &device.id), u)
                .map_err(|e| EnrollError::Secret(e.to_string()))?,
        ),
        None => None,
    };
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
                devices::enrollment_status.eq(EnrollmentStatus::Active),
                devices::enrolled_at.eq(enrolled_at.or(Some(at))),
                devices::unenrolled_at.eq(None::<chrono::NaiveDateTime>),
                // A new token makes the device reachable again.
                devices::push_invalid_at.eq(None::<chrono::NaiveDateTime>),
                devices::push_failures.eq(0),
                devices::next_push_at.eq(None::<chrono::NaiveDateTime>),
                devices::updated_at.eq(at),
            ))
            .execute(conn)?;
        if let Some(unlock) = &unlock {
            diesel::update(devices::table.find(&device.id))
                .set(devices::unlock_token.eq(unlock))
                .execute(conn)?;
        }
        // Never inventoried (a new enrollment, or one that started over and forgot
        // it): ask now. A renewal or a new push token asks nothing again.
        let known = crate::db::schema::device_inventory::table
            .find(&device.id)
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if !known {
            crate::inventory::ask_where_missing(conn, std::slice::from_ref(&device.id), -1)?;
        }
        Ok(!known)
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
                devices::enrollment_status.eq(EnrollmentStatus::Inactive),
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
            .filter(command_queue::status.eq_any(queue::QueueState::OPEN)),
    )
    .set((
        command_queue::status.eq(queue::QueueState::Cancelled),
        command_queue::updated_at.eq(at),
    ))
    .execute(conn)
}

/// A device starts over (erased, re-enrolled, released): its enrollment becomes
/// pending, its inventory is forgotten and its open commands stop. Returns commands
/// stopped.
pub fn start_over(conn: &mut DbConn, device_id: &str) -> QueryResult<usize> {
    use crate::db::schema::{device_apps, device_profiles};
    let at = now();
    diesel::update(devices::table.find(device_id))
        .set((
            devices::enrollment_status.eq(EnrollmentStatus::Pending),
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

/// An acknowledged `EraseDevice`: the device is erased, out of classes' counts and
/// lesson readiness, its open commands closed, waiting to come back through a fresh
/// enrollment (which re-binds it, see [`binding`]).
pub fn mark_erased(conn: &mut DbConn, device_id: &str) -> QueryResult<()> {
    let stopped = start_over(conn, device_id)?;
    diesel::update(devices::table.find(device_id))
        .set(devices::enrollment_status.eq(EnrollmentStatus::Erased))
        .execute(conn)?;
    let (tenant, school): (Option<String>, Option<String>) = devices::table
        .find(device_id)
        .select((devices::tenant_id, devices::school_id))
        .first(conn)?;
    crate::audit::record(
        conn,
        &crate::audit::Entry::new("system:mdm", "erased", "device")
            .object(device_id)
            .scope(tenant.as_deref(), school.as_deref())
            .summary(
                serde_json::json!({"why": "EraseDevice acknowledged", "commands_closed": stopped}),
            ),
    )?;
    Ok(())
}

/// An admin releases (retires) a device: it is no longer managed, its identity no longer
/// speaks for it, its commands stop, it leaves its classes and carts, and it may enroll
/// again through any school's enrollment (its authority's release rule is satisfied).
/// Returns the commands closed.
pub fn release(conn: &mut DbConn, device_id: &str, actor: &str) -> QueryResult<usize> {
    use crate::db::schema::{class_devices, group_devices};
    conn.write_tx(|conn| {
        let (tenant, school, before): (Option<String>, Option<String>, String) = devices::table
            .find(device_id)
            .select((
                devices::tenant_id,
                devices::school_id,
                devices::enrollment_status,
            ))
            .first(conn)?;
        let stopped = start_over(conn, device_id)?;
        diesel::update(devices::table.find(device_id))
            .set((
                devices::enrollment_status.eq(EnrollmentStatus::Retired),
                devices::identity_cert_sha256.eq(None::<String>),
                devices::identity_cert_not_after.eq(None::<chrono::NaiveDateTime>),
                devices::unenrolled_at.eq(now()),
            ))
            .execute(conn)?;
        diesel::delete(class_devices::table.filter(class_devices::device_id.eq(device_id)))
            .execute(conn)?;
        diesel::delete(group_devices::table.filter(group_devices::device_id.eq(device_id)))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "release", "device")
                .object(device_id)
                .scope(tenant.as_deref(), school.as_deref())
                .summary(serde_json::json!({
                    "before": {"status": before},
                    "after": {"status": EnrollmentStatus::Retired},
                    "commands_closed": stopped,
                })),
        )?;
        Ok(stopped)
    })
}

/// An authority's enrollment policy.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentPolicy {
    /// A known iPad that enrolls again with a new identity (erased, profile removed)
    /// waits until an admin releases it (`POST /api/v1/devices/{key}/release`); by
    /// default it binds again at once, within its own authority.
    pub reenroll_requires_release: bool,
}

/// The enrollment policy of authority `tenant_id`.
pub fn policy(conn: &mut DbConn, tenant_id: &str) -> QueryResult<EnrollmentPolicy> {
    use crate::db::schema::tenants;
    let reenroll_requires_release = tenants::table
        .find(tenant_id)
        .select(tenants::reenroll_requires_release)
        .first(conn)?;
    Ok(EnrollmentPolicy {
        reenroll_requires_release,
    })
}

/// Sets the enrollment policy of authority `tenant_id`.
pub fn set_policy(
    conn: &mut DbConn,
    tenant_id: &str,
    policy_: EnrollmentPolicy,
    actor: &str,
) -> QueryResult<EnrollmentPolicy> {
    use crate::db::schema::tenants;
    conn.write_tx(|conn| {
        let before = policy(conn, tenant_id)?;
        diesel::update(tenants::table.find(tenant_id))
            .set((
                tenants::reenroll_requires_release.eq(policy_.reenroll_requires_release),
                tenants::updated_at.eq(now()),
            ))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "update", "enrollment_policy")
                .object(tenant_id)
                .scope(Some(tenant_id), None)
                .summary(serde_json::json!({"before": before, "after": policy_})),
        )?;
        Ok(policy_)
    })
}

/// The item key of the command that renews a device's identity (one open at a time).
pub static RENEWAL_KEY: std::sync::LazyLock<queue::ItemKey> =
    std::sync::LazyLock::new(|| queue::ItemKey::device(queue::DeviceItem::IdentityRenewal));

/// An active device whose identity ends before the renewal horizon.
#[derive(Debug, Clone)]
pub struct DueForRenewal {
    /// Row id.
    pub id: String,
    /// UDID.
    pub udid: String,
    /// The bound certificate.
    pub certificate: String,
    /// The token it was enrolled with (its school, its authority).
    pub token: tokens::EnrollmentToken,
}

/// Active devices whose identity ends before `before` and that have no renewal on its
/// way, oldest end first, at most `limit`.
pub fn due_for_renewal(
    conn: &mut DbConn,
    before: chrono::NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<DueForRenewal>> {
    use crate::db::schema::commands;
    let renewing = command_queue::table
        .inner_join(commands::table)
        .filter(commands::item_key.eq(&*RENEWAL_KEY))
        .filter(command_queue::status.eq_any(queue::QueueState::OPEN))
        .select(command_queue::device_id);
    let rows: Vec<(String, Option<String>, Option<String>)> = devices::table
        .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
        .filter(devices::identity_cert_not_after.lt(before))
        .filter(devices::id.ne_all(renewing))
        .order(devices::identity_cert_not_after.asc())
        .select((devices::id, devices::udid, devices::identity_cert_sha256))
        .limit(limit)
        .load(conn)?;
    let mut due = Vec::with_capacity(rows.len());
    for (id, udid, certificate) in rows {
        let (Some(udid), Some(certificate)) = (udid, certificate) else {
            continue;
        };
        if let Some(token) = tokens::token_of_certificate(conn, &certificate)? {
            due.push(DueForRenewal {
                id,
                udid,
                certificate,
                token,
            });
        }
    }
    Ok(due)
}

/// `SetBootstrapToken`: stores (sealed to the device) or clears its bootstrap token.
pub fn set_bootstrap_token(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    device: &DeviceRef,
    token: Option<&[u8]>,
) -> Result<(), EnrollError> {
    use crate::secrets::{binding, places};
    let sealed = match token {
        Some(t) => Some(
            secrets
                .seal_for(&binding(places::BOOTSTRAP_TOKEN, &device.id), t)
                .map_err(|e| EnrollError::Secret(e.to_string()))?,
        ),
        None => None,
    };
    diesel::update(devices::table.find(&device.id))
        .set((
            devices::bootstrap_token.eq(sealed),
            devices::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// `GetBootstrapToken`: the stored token, if any.
pub fn bootstrap_token(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    device: &DeviceRef,
) -> Result<Option<Vec<u8>>, EnrollError> {
    use crate::secrets::{binding, places};
    let sealed: Option<Vec<u8>> = devices::table
        .find(&device.id)
        .select(devices::bootstrap_token)
        .first(conn)?;
    sealed
        .map(|s| {
            secrets
                .open_for(&binding(places::BOOTSTRAP_TOKEN, &device.id), &s)
                .map_err(|e| EnrollError::Secret(e.to_string()))
        })
        .transpose()
}
