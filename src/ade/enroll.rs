//! Where an iPad in Setup Assistant enrolls: from the serial in its machine info (signed
//! by Apple's device CA, checked by [`super::machine_info`]) to its school, its device
//! row and a one-time SCEP challenge, in one transaction.
//!
//! Load what tafel knows of the serial, decide the school ([`decide_school`], pure), then
//! write. Only serials Apple's sync reported as assigned to this server are admitted. The
//! school: where the import or a placement rule put the serial; serials without a school
//! go to `ade.new_devices_school` when it is set (and belongs to the serial's authority)
//! and are refused otherwise. An iPad known to tafel that comes back through Setup
//! Assistant was erased: nothing changes here (machine info can be replayed); its
//! enrollment starts over when the identity issued for this request authenticates.

use diesel::prelude::*;

use super::machine_info::MachineInfo;
use crate::db::schema::{ade_devices, devices};
use crate::db::{new_id, now, DbConn};
use crate::enrollment::{tokens, EnrollmentStatus};
use crate::org::{self, School, Tenant};

/// Why a serial may not enroll (each names the serial and what to do).
#[derive(Debug, thiserror::Error)]
pub enum EnrollRefusal {
    /// Apple's sync never reported the serial as assigned to this server.
    #[error("serial {0} is not assigned to this MDM server in Apple School Manager (or not synced yet: POST /api/v1/ade/sync)")]
    NotAssigned(String),
    /// No import, rule or new-devices school places the serial.
    #[error("serial {0} has no school in tafel: add a placement rule or import it")]
    NoSchool(String),
    /// The school it was placed in was deleted.
    #[error("serial {0}: its school no longer exists")]
    SchoolGone(String),
    /// The new-devices school belongs to another authority than the serial.
    #[error("serial {0} belongs to another school authority than the new-devices school")]
    OtherAuthority(String),
    /// The school's authority was deleted.
    #[error("the school's authority no longer exists")]
    AuthorityGone,
    /// Without the authority's push topic there is no enrollment profile.
    #[error("school authority {0:?} has no push certificate yet")]
    NoPushCertificate(String),
    /// This machine info body already got an identity.
    #[error(transparent)]
    MachineInfoUsed(tokens::TokenError),
}

/// Why an enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The serial may not enroll.
    #[error(transparent)]
    Refused(#[from] EnrollRefusal),
    /// Storage.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The enrollment token or challenge could not be made.
    #[error("enrollment token: {0}")]
    Token(tokens::TokenError),
}

/// Where a serial enrolls, and with what.
#[derive(Debug)]
pub struct Enrollment {
    /// The device's authority.
    pub tenant: Tenant,
    /// The device's school.
    pub school: School,
    /// Its device row.
    pub device_id: String,
    /// Enrolled before (erased since).
    pub returning: bool,
    /// Pupils may remove management (the school's ADE profile setting).
    pub removable: bool,
    /// The school's ADE enrollment token.
    pub token: tokens::EnrollmentToken,
    /// The one-time SCEP challenge for this body.
    pub challenge: String,
}

/// What tafel knows of a serial before it enrolls.
struct Known {
    /// The authority Apple's sync reported the serial for.
    in_asm: Option<String>,
    /// Its device row: id, school, UDID, status (the authority's own, oldest first).
    row: Option<(String, Option<String>, Option<String>, EnrollmentStatus)>,
    /// Its school after placement rules had their say.
    school_id: Option<String>,
}

/// The school a serial enrolls into: where it was placed, else the new-devices school;
/// only for serials Apple assigned to this server.
pub fn decide_school(
    serial: &str,
    in_asm: Option<&str>,
    placed: Option<&str>,
    new_devices_school: Option<&str>,
) -> Result<String, EnrollRefusal> {
    if in_asm.is_none() {
        // Apple sends only the devices assigned to this server to the ADE URL: a
        // serial its sync never reported is not one of ours, whatever the body says
        // (an OTA profile-service body is signed the same way).
        return Err(EnrollRefusal::NotAssigned(serial.to_owned()));
    }
    placed
        .or(new_devices_school)
        .map(str::to_owned)
        .ok_or_else(|| EnrollRefusal::NoSchool(serial.to_owned()))
}

/// Places the serial of `info` (whose body hashed to `body_sha256`), stores its device
/// and hands out its challenge, in one transaction; nothing is stored when refused.
pub fn enroll(
    conn: &mut DbConn,
    info: &MachineInfo,
    body_sha256: &str,
    new_devices_school: Option<&str>,
) -> Result<Enrollment, EnrollError> {
    conn.write_tx(|conn| {
        let serial = info.serial.as_str();
        let known = load(conn, serial)?;
        let school_id = decide_school(
            serial,
            known.in_asm.as_deref(),
            known.school_id.as_deref(),
            new_devices_school,
        )?;
        let school = org::school(conn, &school_id)?
            .ok_or_else(|| EnrollRefusal::SchoolGone(serial.to_owned()))?;
        if known
            .in_asm
            .as_ref()
            .is_some_and(|t| *t != school.tenant_id)
        {
            return Err(EnrollRefusal::OtherAuthority(serial.to_owned()).into());
        }
        let tenant = org::tenant(conn, &school.tenant_id)?.ok_or(EnrollRefusal::AuthorityGone)?;
        if tenant.push_topic.is_none() {
            // Checked before anything is stored: without a topic there is no profile.
            return Err(EnrollRefusal::NoPushCertificate(tenant.name.clone()).into());
        }
        let (device_id, returning) = write_device(conn, info, &school, known.row)?;
        let removable = super::school::settings(conn, &school.id)?
            .settings
            .profile
            .is_mdm_removable;
        let (token, challenge) = tokens::redeem_ade(
            conn,
            &school.tenant_id,
            &school.id,
            &info.udid,
            serial,
            body_sha256,
        )
        .map_err(|e| match e {
            tokens::TokenError::Db(e) => EnrollError::Db(e),
            e @ tokens::TokenError::MachineInfoUsed => EnrollRefusal::MachineInfoUsed(e).into(),
            other => EnrollError::Token(other),
        })?;
        Ok(Enrollment {
            tenant,
            school,
            device_id,
            returning,
            removable,
            token,
            challenge,
        })
    })
}

/// The serial as Apple and tafel know it; a serial without a school meets the
/// authority's placement rules first.
fn load(conn: &mut DbConn, serial: &str) -> QueryResult<Known> {
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
    let row = q
        .select((
            devices::id,
            devices::school_id,
            devices::udid,
            devices::enrollment_status,
        ))
        .order(devices::created_at.asc())
        .first(conn)
        .optional()?;
    let mut school_id = row
        .as_ref()
        .and_then(|r: &(_, Option<String>, _, _)| r.1.clone());
    if let (None, Some(tenant)) = (&school_id, &in_asm) {
        super::school::place(conn, tenant, Some(&[serial.to_owned()]))?;
        school_id = devices::table
            .filter(devices::serial_number.eq(serial))
            .filter(devices::tenant_id.eq(tenant))
            .filter(devices::school_id.is_not_null())
            .select(devices::school_id)
            .first::<Option<String>>(conn)
            .optional()?
            .flatten();
    }
    Ok(Known {
        in_asm,
        row,
        school_id,
    })
}

/// The device row of the serial in its school (created, or given the school it lacked),
/// an audit entry when that changed, and the start of its Setup Assistant wait for a
/// first enrollment. Returns the device id and whether it enrolled before.
fn write_device(
    conn: &mut DbConn,
    info: &MachineInfo,
    school: &School,
    row: Option<(String, Option<String>, Option<String>, EnrollmentStatus)>,
) -> QueryResult<(String, bool)> {
    let serial = info.serial.as_str();
    let at = now();
    let before = row.as_ref().map(|r| (r.0.clone(), r.1.clone()));
    let (device_id, returning) = match row {
        Some((id, current, udid, status)) => {
            if current.is_none() {
                diesel::update(devices::table.find(&id))
                    .set((
                        devices::tenant_id.eq(&school.tenant_id),
                        devices::school_id.eq(&school.id),
                    ))
                    .execute(conn)?;
            }
            (id, udid.is_some() && status != EnrollmentStatus::Pending)
        }
        None => {
            let id = new_id();
            diesel::insert_into(devices::table)
                .values(crate::devices::NewDevice {
                    serial_number: Some(serial),
                    tenant_id: Some(&school.tenant_id),
                    school_id: Some(&school.id),
                    ..crate::devices::NewDevice::pending(&id, at)
                })
                .execute(conn)?;
            (id, false)
        }
    };
    if before != Some((device_id.clone(), Some(school.id.clone()))) {
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(&format!("device:{serial}"), "ade_enroll", "device")
                .object(&device_id)
                .scope(Some(&school.tenant_id), Some(&school.id))
                .summary(
                    serde_json::json!({"after": {"school_id": school.id, "product": info.product}}),
                ),
        )?;
    }
    if !returning {
        // The Setup Assistant wait starts now.
        crate::devices::start_setup(conn, &device_id, Some(serial), at)?;
    }
    Ok((device_id, returning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_apple_did_not_assign_is_refused_whatever_tafel_knows_of_it() {
        let r = decide_school("F9FXXX", None, Some("s1"), Some("new"));
        assert!(matches!(r, Err(EnrollRefusal::NotAssigned(s)) if s == "F9FXXX"));
    }

    #[test]
    fn a_placed_serial_goes_to_its_school_an_unplaced_one_to_the_new_devices_school() {
        assert_eq!(
            decide_school("S", Some("t1"), Some("s1"), Some("new")).ok(),
            Some("s1".into())
        );
        assert_eq!(
            decide_school("S", Some("t1"), None, Some("new")).ok(),
            Some("new".into())
        );
        let r = decide_school("S", Some("t1"), None, None);
        assert!(matches!(r, Err(EnrollRefusal::NoSchool(_))));
        assert!(r
            .err()
            .is_some_and(|e| e.to_string().contains("add a placement rule")));
    }
}
