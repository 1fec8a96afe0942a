//! Who is talking: the device and user identifiers every check-in message and
//! command report carries.

use super::dict::{DictWriter, Fields};
use super::error::ProtocolError;
use super::ids::Udid;

/// The identity keys shared by check-in messages and command reports.
///
/// A device enrollment sends `UDID`; a user enrollment (iOS 13+, macOS 10.15+)
/// sends `EnrollmentID` instead (`mdm/checkin/authenticate.yaml`, and the
/// schema errata for that file). The user channel (macOS users, Shared iPad
/// users) adds `UserID`/`UserShortName`/`UserLongName`, or `EnrollmentUserID`
/// for a macOS user enrollment (`mdm/checkin/tokenupdate.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollmentIds {
    /// `UDID`; absent for user enrollments.
    pub udid: Option<Udid>,
    /// `EnrollmentID`: the per-enrollment device id of a user enrollment.
    pub enrollment_id: Option<String>,
    /// `EnrollmentUserID`: the per-enrollment user id (macOS user enrollment, user channel).
    pub enrollment_user_id: Option<String>,
    /// `UserID`: macOS user GUID; `FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF` on Shared iPad.
    pub user_id: Option<String>,
    /// `UserShortName`: macOS short name, or the Managed Apple Account on Shared iPad.
    pub user_short_name: Option<String>,
    /// `UserLongName`: the user's full name (macOS).
    pub user_long_name: Option<String>,
}

impl EnrollmentIds {
    /// The identity of a device-channel message from a device enrollment.
    pub fn device(udid: Udid) -> EnrollmentIds {
        EnrollmentIds {
            udid: Some(udid),
            ..EnrollmentIds::default()
        }
    }

    /// The identity of a user enrollment's device channel.
    pub fn user_enrollment(enrollment_id: impl Into<String>) -> EnrollmentIds {
        EnrollmentIds {
            enrollment_id: Some(enrollment_id.into()),
            ..EnrollmentIds::default()
        }
    }

    /// True when the message comes from a user enrollment (no UDID, an EnrollmentID).
    pub fn is_user_enrollment(&self) -> bool {
        self.udid.is_none() && self.enrollment_id.is_some()
    }

    /// True when the message is on a user channel rather than the device channel.
    pub fn is_user_channel(&self) -> bool {
        self.user_id.is_some()
            || self.enrollment_user_id.is_some()
            || self.user_short_name.is_some()
    }

    /// The id the server keys a device enrollment on: the UDID, else the EnrollmentID.
    pub fn device_key(&self) -> Option<&str> {
        self.udid
            .as_ref()
            .map(Udid::as_str)
            .or(self.enrollment_id.as_deref())
    }

    /// Reads the identity keys; a present UDID must be valid.
    pub(crate) fn read(fields: &Fields<'_>) -> Result<EnrollmentIds, ProtocolError> {
        let udid = fields
            .string("UDID")?
            .map(|s| Udid::parse(&s))
            .transpose()?;
        Ok(EnrollmentIds {
            udid,
            enrollment_id: fields.string("EnrollmentID")?,
            enrollment_user_id: fields.string("EnrollmentUserID")?,
            user_id: fields.string("UserID")?,
            user_short_name: fields.string("UserShortName")?,
            user_long_name: fields.string("UserLongName")?,
        })
    }

    /// Fails with `MissingKey("UDID")` unless the device is identified by
    /// UDID or, for a user enrollment, by EnrollmentID.
    pub(crate) fn require_device(&self) -> Result<(), ProtocolError> {
        if self.udid.is_none() && self.enrollment_id.is_none() {
            return Err(ProtocolError::MissingKey("UDID"));
        }
        Ok(())
    }

    /// Writes the present identity keys.
    pub(crate) fn write(&self, writer: DictWriter) -> DictWriter {
        writer
            .string("UDID", self.udid.as_ref().map(Udid::as_str))
            .string("EnrollmentID", self.enrollment_id.as_deref())
            .string("EnrollmentUserID", self.enrollment_user_id.as_deref())
            .string("UserID", self.user_id.as_deref())
            .string("UserShortName", self.user_short_name.as_deref())
            .string("UserLongName", self.user_long_name.as_deref())
    }
}
