//! May this identity certificate speak for this UDID? The binding decision of
//! `Authenticate`, as a pure function of what tafel knows (loaded by the caller).
//!
//! A certificate is worth exactly what it was issued for: the enrollment token (its
//! authority, school, class or cart) or the ADE machine info it came with, and one UDID
//! for its whole life. The rules:
//! 1. Only certificates our SCEP server issued count, each through an enrollment token.
//! 2. A certificate bound to one UDID never speaks for another.
//! 3. The device's own certificate, or a renewal of it, is always accepted.
//! 4. A UDID new to tafel enrolls through a usable token (not revoked, not expired, not
//!    used up: `max_uses` counts devices). It adopts the pre-registered row of its serial
//!    (CSV import, Apple School Manager) only in the token's school, or an unplaced row
//!    of the token's authority, and only if that row never enrolled.
//! 5. A known UDID with a new certificate (erased, profile removed and installed again,
//!    released by an admin) binds again through a usable token of its own authority; a
//!    released (retired) device through any. It lands where the token says and starts
//!    over: old queue closed, inventory forgotten and asked again. An authority may
//!    require an admin's release first.

use super::tokens::EnrollmentToken;
use super::EnrollmentStatus;

/// What tafel knows about the certificate a request came with.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// Issued by our SCEP server (recorded)?
    pub issued_here: bool,
    /// The UDID it is bound to, if any yet.
    pub bound_udid: Option<String>,
    /// The token it was enrolled with (following renewals back).
    pub token: Option<EnrollmentToken>,
    /// Issued for an ADE machine info (of the UDID in `bound_udid`).
    pub ade: bool,
    /// Does the UDID already count as a device of this token (another certificate of
    /// the token is bound to it)?
    pub udid_counted: bool,
    /// When our SCEP server issued it.
    pub issued_at: Option<chrono::NaiveDateTime>,
}

/// What tafel knows about the device row of the UDID, if there is one.
#[derive(Debug, Clone)]
pub struct DeviceFacts {
    /// Row id.
    pub id: String,
    /// Its authority.
    pub tenant_id: Option<String>,
    /// Its school.
    pub school_id: Option<String>,
    /// Enrollment state.
    pub status: EnrollmentStatus,
    /// Bound certificate.
    pub bound_sha256: Option<String>,
    /// Does the certificate renew the bound one (possibly over several renewals)?
    pub renews_bound: bool,
    /// Was the bound certificate issued through Automated Device Enrollment (or is
    /// none bound)? A machine info may only reset such a device.
    pub bound_via_ade: bool,
    /// Must a re-enrollment of this device wait for an admin's release (its authority's
    /// setting)?
    pub release_required: bool,
    /// When an admin retired (released) it, if it is retired.
    pub retired_at: Option<chrono::NaiveDateTime>,
}

/// A pre-registered row with the serial the message names (no UDID yet).
#[derive(Debug, Clone)]
pub struct SerialRow {
    /// Row id.
    pub id: String,
    /// Its authority.
    pub tenant_id: Option<String>,
    /// Its school.
    pub school_id: Option<String>,
    /// Ever enrolled (a UDID or a bound certificate in the past)?
    pub enrolled_before: bool,
}

/// Why a known device binds a new certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebind {
    /// Erased (EraseDevice acknowledged, or a new ADE identity for it).
    Erased,
    /// Enrolled again without an erase we know of (profile removed, erased on the
    /// device itself, or its old identity expired).
    Reenrolled,
    /// An admin released (retired) it.
    Released,
}

impl Rebind {
    /// As written in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Rebind::Erased => "erased",
            Rebind::Reenrolled => "re-enrolled",
            Rebind::Released => "released",
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The device's bound certificate again (a repeated Authenticate).
    Same,
    /// A renewal of the bound certificate: it becomes the bound one.
    Renewed,
    /// A device new to tafel: a fresh row, or the pre-registered row `adopt`.
    New {
        /// Row to take over.
        adopt: Option<String>,
    },
    /// A known device with a new identity.
    Rebind(Rebind),
}

/// Why a binding is refused (the device gets 403 with this text; the log gets it too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not one of ours.
    #[error("the identity certificate was not issued by this server's SCEP")]
    NotIssuedHere,
    /// Not issued through an enrollment token.
    #[error("the identity certificate was not issued through an enrollment")]
    NoEnrollment,
    /// Bound to another UDID.
    #[error("the identity certificate belongs to another device")]
    OtherDevice,
    /// The token no longer enrolls devices.
    #[error("the enrollment token no longer enrolls devices: {0}")]
    Token(String),
    /// The UDID is enrolled in another authority.
    #[error("this device is managed by another school authority")]
    OtherAuthority,
    /// The authority wants an admin to release the device first.
    #[error("this device was enrolled before: its school authority requires an admin to release it before it enrolls again")]
    ReleaseRequired,
    /// A machine info identity for an iPad enrolled through a link.
    #[error("this device is enrolled through an enrollment link: an admin must release it before it enrolls through Automated Device Enrollment")]
    EnrolledThroughLink,
    /// The certificate is the identity of a device an admin retired.
    #[error("this device was retired with this identity certificate: enroll it again")]
    Retired,
    /// The serial is pre-registered in another school of the authority.
    #[error("serial number {0} is registered to another school: enroll it through that school or move it there first")]
    SerialElsewhere(String),
}

/// Is the token usable for a device it does not count yet?
fn token_usable(
    token: &EnrollmentToken,
    counted: bool,
    at: chrono::NaiveDateTime,
) -> Result<(), Refusal> {
    if token.revoked_at.is_some() {
        return Err(Refusal::Token("it was revoked".into()));
    }
    if token.expires_at.is_some_and(|e| e <= at) {
        return Err(Refusal::Token("it has expired".into()));
    }
    if !counted && token.max_uses.is_some_and(|max| token.uses >= max) {
        return Err(Refusal::Token(format!(
            "it has been used up ({} devices)",
            token.uses
        )));
    }
    Ok(())
}

/// Decides whether `cert` may speak for `udid` (rules in the module documentation).
/// `serial_rows` are the pre-registered rows of the serial the message names; they are
/// looked at only for a UDID without a row.
pub fn may_bind(
    udid: &str,
    cert_sha256: &str,
    cert: &CertFacts,
    device: Option<&DeviceFacts>,
    serial: Option<&str>,
    serial_rows: &[SerialRow],
    at: chrono::NaiveDateTime,
) -> Result<Binding, Refusal> {
    if !cert.issued_here {
        return Err(Refusal::NotIssuedHere);
    }
    if cert.bound_udid.as_deref().is_some_and(|u| u != udid) {
        return Err(Refusal::OtherDevice);
    }
    if let Some(d) = device {
        if d.bound_sha256.as_deref() == Some(cert_sha256) {
            return Ok(Binding::Same);
        }
        if d.renews_bound {
            return Ok(Binding::Renewed);
        }
    }
    let token = cert.token.as_ref().ok_or(Refusal::NoEnrollment)?;
    token_usable(token, cert.udid_counted, at)?;
    let Some(d) = device else {
        // A UDID new to tafel: adopt its serial's pre-registered row where the token
        // may place it; never a row that enrolled before, never one elsewhere.
        let adoptable = |r: &&SerialRow| {
            !r.enrolled_before
                && match r.school_id.as_deref() {
                    Some(s) => s == token.school_id,
                    None => r.tenant_id.as_deref().is_none_or(|t| t == token.tenant_id),
                }
        };
        if let Some(row) = serial_rows.iter().find(adoptable) {
            return Ok(Binding::New {
                adopt: Some(row.id.clone()),
            });
        }
        let elsewhere_here = serial_rows
            .iter()
            .any(|r| !r.enrolled_before && r.tenant_id.as_deref() == Some(&token.tenant_id));
        if elsewhere_here {
            return Err(Refusal::SerialElsewhere(
                serial.unwrap_or_default().to_owned(),
            ));
        }
        return Ok(Binding::New { adopt: None });
    };
    if d.status == EnrollmentStatus::Retired {
        // The identities it had when an admin retired it stay retired with it; only a
        // fresh enrollment (a certificate issued since) brings it back.
        if let (Some(issued), Some(retired)) = (cert.issued_at, d.retired_at) {
            if issued < retired {
                return Err(Refusal::Retired);
            }
        }
        return Ok(Binding::Rebind(Rebind::Released));
    }
    if d.tenant_id.as_deref().is_some_and(|t| t != token.tenant_id) {
        return Err(Refusal::OtherAuthority);
    }
    if d.release_required {
        return Err(Refusal::ReleaseRequired);
    }
    // A machine info is signed by Apple but may come from a pupil's own iPad that was
    // once managed here: it resets only what came through ADE itself.
    if cert.ade && !d.bound_via_ade {
        return Err(Refusal::EnrolledThroughLink);
    }
    if d.status == EnrollmentStatus::Erased || cert.ade {
        return Ok(Binding::Rebind(Rebind::Erased));
    }
    Ok(Binding::Rebind(Rebind::Reenrolled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn token(tenant: &str, school: &str) -> EnrollmentToken {
        EnrollmentToken {
            id: format!("tok-{school}"),
            token_hash: "hash".into(),
            token_sealed: None,
            tenant_id: tenant.into(),
            school_id: school.into(),
            class_id: None,
            group_id: None,
            description: String::new(),
            max_uses: None,
            uses: 0,
            expires_at: None,
            revoked_at: None,
            created_by: None,
            created_at: at(),
        }
    }

    fn cert(t: EnrollmentToken) -> CertFacts {
        CertFacts {
            issued_here: true,
            bound_udid: None,
            token: Some(t),
            ade: false,
            udid_counted: false,
            issued_at: Some(at()),
        }
    }

    fn device(tenant: &str, school: &str, status: EnrollmentStatus) -> DeviceFacts {
        DeviceFacts {
            id: "dev".into(),
            tenant_id: Some(tenant.into()),
            school_id: Some(school.into()),
            status,
            bound_sha256: Some("old".into()),
            renews_bound: false,
            bound_via_ade: false,
            release_required: false,
            retired_at: None,
        }
    }

    fn row(id: &str, tenant: Option<&str>, school: Option<&str>) -> SerialRow {
        SerialRow {
            id: id.into(),
            tenant_id: tenant.map(Into::into),
            school_id: school.map(Into::into),
            enrolled_before: false,
        }
    }

    fn decide(
        c: &CertFacts,
        d: Option<&DeviceFacts>,
        rows: &[SerialRow],
    ) -> Result<Binding, Refusal> {
        may_bind("UDID-1", "new", c, d, Some("SERIAL1"), rows, at())
    }

    #[test]
    fn a_serial_is_adopted_only_in_the_tokens_school_or_unplaced_in_its_authority() {
        let c = cert(token("A", "A1"));
        let mine = row("r1", Some("A"), Some("A1"));
        let unplaced = row("r2", Some("A"), None);
        let other_school = row("r3", Some("A"), Some("A2"));
        let other_authority = row("r4", Some("B"), None);
        assert_eq!(
            decide(&c, None, std::slice::from_ref(&mine)),
            Ok(Binding::New {
                adopt: Some("r1".into())
            })
        );
        assert_eq!(
            decide(&c, None, std::slice::from_ref(&unplaced)),
            Ok(Binding::New {
                adopt: Some("r2".into())
            })
        );
        assert_eq!(
            decide(&c, None, std::slice::from_ref(&other_school)),
            Err(Refusal::SerialElsewhere("SERIAL1".into()))
        );
        // Another authority's row is left alone; the device gets a row of its own.
        assert_eq!(
            decide(&c, None, std::slice::from_ref(&other_authority)),
            Ok(Binding::New { adopt: None })
        );
        let enrolled = SerialRow {
            enrolled_before: true,
            ..mine
        };
        assert_eq!(
            decide(&c, None, &[enrolled]),
            Ok(Binding::New { adopt: None })
        );
    }

    #[test]
    fn one_certificate_speaks_for_one_udid() {
        let mut c = cert(token("A", "A1"));
        c.bound_udid = Some("UDID-2".into());
        assert_eq!(decide(&c, None, &[]), Err(Refusal::OtherDevice));
        c.bound_udid = Some("UDID-1".into());
        let mut d = device("A", "A1", EnrollmentStatus::Active);
        d.bound_sha256 = Some("new".into());
        assert_eq!(decide(&c, Some(&d), &[]), Ok(Binding::Same));
    }

    #[test]
    fn tokens_limit_devices_and_revoked_ones_enroll_no_one_new() {
        let mut t = token("A", "A1");
        t.max_uses = Some(1);
        t.uses = 1;
        let mut c = cert(t.clone());
        assert!(matches!(decide(&c, None, &[]), Err(Refusal::Token(_))));
        // The device it counts already may authenticate again with a new certificate.
        c.udid_counted = true;
        let d = device("A", "A1", EnrollmentStatus::Inactive);
        assert_eq!(
            decide(&c, Some(&d), &[]),
            Ok(Binding::Rebind(Rebind::Reenrolled))
        );
        t.revoked_at = Some(at());
        let c = cert(t);
        assert!(matches!(decide(&c, None, &[]), Err(Refusal::Token(_))));
        // A device whose bound certificate came through the revoked token keeps working.
        let mut d = device("A", "A1", EnrollmentStatus::Active);
        d.bound_sha256 = Some("new".into());
        assert_eq!(decide(&c, Some(&d), &[]), Ok(Binding::Same));
    }

    #[test]
    fn a_known_ipad_binds_again_only_within_its_authority_unless_released() {
        let c = cert(token("A", "A2"));
        for st in [
            EnrollmentStatus::Active,
            EnrollmentStatus::Inactive,
            EnrollmentStatus::Pending,
        ] {
            assert_eq!(
                decide(&c, Some(&device("A", "A1", st)), &[]),
                Ok(Binding::Rebind(Rebind::Reenrolled)),
                "{st}"
            );
            assert_eq!(
                decide(&c, Some(&device("B", "B1", st)), &[]),
                Err(Refusal::OtherAuthority),
                "{st}"
            );
        }
        assert_eq!(
            decide(&c, Some(&device("A", "A1", EnrollmentStatus::Erased)), &[]),
            Ok(Binding::Rebind(Rebind::Erased))
        );
        assert_eq!(
            decide(&c, Some(&device("B", "B1", EnrollmentStatus::Retired)), &[]),
            Ok(Binding::Rebind(Rebind::Released))
        );
        let mut guarded = device("A", "A1", EnrollmentStatus::Erased);
        guarded.release_required = true;
        assert_eq!(
            decide(&c, Some(&guarded), &[]),
            Err(Refusal::ReleaseRequired)
        );
        let mut renewal = device("B", "B1", EnrollmentStatus::Active);
        renewal.renews_bound = true;
        assert_eq!(decide(&c, Some(&renewal), &[]), Ok(Binding::Renewed));
    }

    #[test]
    fn a_machine_info_identity_resets_only_what_came_through_ade() {
        let mut c = cert(token("A", "A1"));
        c.ade = true;
        let link_enrolled = device("A", "A1", EnrollmentStatus::Active);
        assert_eq!(
            decide(&c, Some(&link_enrolled), &[]),
            Err(Refusal::EnrolledThroughLink)
        );
        let ade_enrolled = DeviceFacts {
            bound_via_ade: true,
            ..link_enrolled.clone()
        };
        assert_eq!(
            decide(&c, Some(&ade_enrolled), &[]),
            Ok(Binding::Rebind(Rebind::Erased))
        );
        let released = device("A", "A1", EnrollmentStatus::Retired);
        assert_eq!(
            decide(&c, Some(&released), &[]),
            Ok(Binding::Rebind(Rebind::Released))
        );
        let retired = DeviceFacts {
            retired_at: Some(at()),
            ..released.clone()
        };
        let fresh = CertFacts {
            issued_at: Some(at() + chrono::Duration::seconds(1)),
            ..c.clone()
        };
        assert_eq!(
            decide(&fresh, Some(&retired), &[]),
            Ok(Binding::Rebind(Rebind::Released))
        );
        let old_identity = CertFacts {
            issued_at: Some(at() - chrono::Duration::days(30)),
            ..c.clone()
        };
        assert_eq!(
            decide(&old_identity, Some(&retired), &[]),
            Err(Refusal::Retired),
            "the identity it was retired with does not bring it back"
        );
    }

    #[test]
    fn only_our_enrolled_certificates_count() {
        let mut c = cert(token("A", "A1"));
        c.issued_here = false;
        assert_eq!(decide(&c, None, &[]), Err(Refusal::NotIssuedHere));
        c.issued_here = true;
        c.token = None;
        assert_eq!(decide(&c, None, &[]), Err(Refusal::NoEnrollment));
    }
}
