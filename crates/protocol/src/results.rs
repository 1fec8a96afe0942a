//! Typed views of the command reports tafel keeps as inventory.
//!
//! Each `from_report` takes the whole report dictionary
//! ([`super::connect::ConnectReport::raw`]). Unknown keys are ignored and every
//! per-item key is optional unless noted, because devices differ by OS,
//! version and enrollment type in what they send.

use std::collections::BTreeMap;

use plist::Dictionary;

use super::dict::Fields;
use super::error::ProtocolError;

/// The `QueryResponses` of a DeviceInformation report
/// (`mdm/commands/information.device.yaml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceInformationResult {
    /// `UDID`.
    pub udid: Option<String>,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `OSVersion`, e.g. `17.5.1`.
    pub os_version: Option<String>,
    /// `BuildVersion`, e.g. `21F90`.
    pub build_version: Option<String>,
    /// `ModelName`, e.g. `iPad`.
    pub model_name: Option<String>,
    /// `Model`, e.g. `MK2K3`.
    pub model: Option<String>,
    /// `ModelNumber`.
    pub model_number: Option<String>,
    /// `ProductName`, e.g. `iPad12,1`.
    pub product_name: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `DeviceCapacity` in GB (`<real>`; base-2 GiB on macOS 11 and earlier).
    pub device_capacity: Option<f64>,
    /// `AvailableDeviceCapacity` in GB.
    pub available_device_capacity: Option<f64>,
    /// `BatteryLevel`, 0.0–1.0, or -1.0 when unknown.
    pub battery_level: Option<f64>,
    /// `IsSupervised`.
    pub is_supervised: Option<bool>,
    /// `IsActivationLockEnabled`.
    pub is_activation_lock_enabled: Option<bool>,
    /// `IsMDMLostModeEnabled`.
    pub is_mdm_lost_mode_enabled: Option<bool>,
    /// `AwaitingConfiguration`.
    pub awaiting_configuration: Option<bool>,
    /// `WiFiMAC`.
    pub wifi_mac: Option<String>,
    /// `BluetoothMAC`.
    pub bluetooth_mac: Option<String>,
    /// `IMEI`.
    pub imei: Option<String>,
    /// `MEID`.
    pub meid: Option<String>,
    /// `TimeZone`.
    pub time_zone: Option<String>,
}

impl DeviceInformationResult {
    /// Reads `QueryResponses` (required) from a DeviceInformation report.
    pub fn from_report(report: &Dictionary) -> Result<DeviceInformationResult, ProtocolError> {
        let responses = Fields::new(report)
            .dict("QueryResponses")?
            .ok_or(ProtocolError::MissingKey("QueryResponses"))?;
        let q = Fields::nested(responses, "QueryResponses");
        Ok(DeviceInformationResult {
            udid: q.string("UDID")?,
            device_name: q.string("DeviceName")?,
            os_version: q.string("OSVersion")?,
            build_version: q.string("BuildVersion")?,
            model_name: q.string("ModelName")?,
            model: q.string("Model")?,
            model_number: q.string("ModelNumber")?,
            product_name: q.string("ProductName")?,
            serial_number: q.string("SerialNumber")?,
            device_capacity: q.real("DeviceCapacity")?,
            available_device_capacity: q.real("AvailableDeviceCapacity")?,
            battery_level: q.real("BatteryLevel")?,
            is_supervised: q.boolean("IsSupervised")?,
            is_activation_lock_enabled: q.boolean("IsActivationLockEnabled")?,
            is_mdm_lost_mode_enabled: q.boolean("IsMDMLostModeEnabled")?,
            awaiting_configuration: q.boolean("AwaitingConfiguration")?,
            wifi_mac: q.string("WiFiMAC")?,
            bluetooth_mac: q.string("BluetoothMAC")?,
            imei: q.string("IMEI")?,
            meid: q.string("MEID")?,
            time_zone: q.string("TimeZone")?,
        })
    }
}

/// One app of an InstalledApplicationList report
/// (`mdm/commands/application.installed.list.yaml`; every key optional there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledApp {
    /// `Identifier`: the bundle id.
    pub identifier: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `ShortVersion`: the marketing version, e.g. `14.1`.
    pub short_version: Option<String>,
    /// `Version`: the build version.
    pub version: Option<String>,
    /// `BundleSize` in bytes.
    pub bundle_size: Option<i64>,
    /// `DynamicSize` in bytes (app data).
    pub dynamic_size: Option<i64>,
    /// `ExternalVersionIdentifier`: the App Store version id.
    pub external_version_identifier: Option<i64>,
    /// `Installing`: still downloading or installing.
    pub installing: Option<bool>,
    /// `IsValidated`.
    pub is_validated: Option<bool>,
    /// `AppStoreVendable`.
    pub app_store_vendable: Option<bool>,
    /// `DeviceBasedVPP`.
    pub device_based_vpp: Option<bool>,
    /// `BetaApp`.
    pub beta_app: Option<bool>,
    /// `AdHocCodeSigned`.
    pub ad_hoc_code_signed: Option<bool>,
    /// `HasUpdateAvailable`.
    pub has_update_available: Option<bool>,
    /// `IsAppClip`.
    pub is_app_clip: Option<bool>,
    /// `DistributorIdentifier` (alternative marketplaces).
    pub distributor_identifier: Option<String>,
    /// `Source`.
    pub source: Option<String>,
}

/// An InstalledApplicationList report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledApplicationListResult {
    /// `InstalledApplicationList` (required).
    pub apps: Vec<InstalledApp>,
}

impl InstalledApplicationListResult {
    /// Reads `InstalledApplicationList` from the report.
    pub fn from_report(
        report: &Dictionary,
    ) -> Result<InstalledApplicationListResult, ProtocolError> {
        let items = Fields::new(report)
            .dict_array("InstalledApplicationList")?
            .ok_or(ProtocolError::MissingKey("InstalledApplicationList"))?;
        let apps = items
            .into_iter()
            .map(|(path, item)| {
                let a = Fields::nested(item, &path);
                Ok(InstalledApp {
                    identifier: a.string("Identifier")?,
                    name: a.string("Name")?,
                    short_version: a.string("ShortVersion")?,
                    version: a.string("Version")?,
                    bundle_size: a.integer("BundleSize")?,
                    dynamic_size: a.integer("DynamicSize")?,
                    external_version_identifier: a.integer("ExternalVersionIdentifier")?,
                    installing: a.boolean("Installing")?,
                    is_validated: a.boolean("IsValidated")?,
                    app_store_vendable: a.boolean("AppStoreVendable")?,
                    device_based_vpp: a.boolean("DeviceBasedVPP")?,
                    beta_app: a.boolean("BetaApp")?,
                    ad_hoc_code_signed: a.boolean("AdHocCodeSigned")?,
                    has_update_available: a.boolean("HasUpdateAvailable")?,
                    is_app_clip: a.boolean("IsAppClip")?,
                    distributor_identifier: a.string("DistributorIdentifier")?,
                    source: a.string("Source")?,
                })
            })
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        Ok(InstalledApplicationListResult { apps })
    }
}

/// One managed app's state (`mdm/commands/application.managed.list.yaml`).
///
/// The schema marks every key required; we still read them as optional so one
/// odd entry cannot hide the rest of the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedAppStatus {
    /// `Status`, e.g. `Managed`, `Installing`, `UserRejected`.
    pub status: Option<String>,
    /// `ManagementFlags`.
    pub management_flags: Option<i64>,
    /// `HasConfiguration`.
    pub has_configuration: Option<bool>,
    /// `HasFeedback`.
    pub has_feedback: Option<bool>,
    /// `IsValidated`.
    pub is_validated: Option<bool>,
    /// `ExternalVersionIdentifier`.
    pub external_version_identifier: Option<i64>,
    /// `UnusedRedemptionCode`.
    pub unused_redemption_code: Option<String>,
}

/// A ManagedApplicationList report: bundle id → state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedApplicationListResult {
    /// `ManagedApplicationList` (required), keyed by bundle id.
    pub apps: BTreeMap<String, ManagedAppStatus>,
}

impl ManagedApplicationListResult {
    /// Reads `ManagedApplicationList` from the report.
    pub fn from_report(report: &Dictionary) -> Result<ManagedApplicationListResult, ProtocolError> {
        let list = Fields::new(report)
            .dict("ManagedApplicationList")?
            .ok_or(ProtocolError::MissingKey("ManagedApplicationList"))?;
        let outer = Fields::nested(list, "ManagedApplicationList");
        let mut apps = BTreeMap::new();
        for bundle_id in list.keys() {
            let Some(entry) = outer.dict(bundle_id)? else {
                continue;
            };
            let a = Fields::nested(entry, &outer.path(bundle_id));
            apps.insert(
                bundle_id.clone(),
                ManagedAppStatus {
                    status: a.string("Status")?,
                    management_flags: a.integer("ManagementFlags")?,
                    has_configuration: a.boolean("HasConfiguration")?,
                    has_feedback: a.boolean("HasFeedback")?,
                    is_validated: a.boolean("IsValidated")?,
                    external_version_identifier: a.integer("ExternalVersionIdentifier")?,
                    unused_redemption_code: a.string("UnusedRedemptionCode")?,
                },
            );
        }
        Ok(ManagedApplicationListResult { apps })
    }
}

/// One payload inside a listed profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePayload {
    /// `PayloadType`, e.g. `com.apple.wifi.managed`.
    pub payload_type: Option<String>,
    /// `PayloadIdentifier`.
    pub payload_identifier: Option<String>,
    /// `PayloadUUID`.
    pub payload_uuid: Option<String>,
    /// `PayloadDisplayName`.
    pub payload_display_name: Option<String>,
}

/// One installed profile (`mdm/commands/profile.list.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileListItem {
    /// `PayloadIdentifier` (required): what RemoveProfile takes.
    pub payload_identifier: String,
    /// `PayloadUUID` (required).
    pub payload_uuid: String,
    /// `PayloadDisplayName`.
    pub payload_display_name: Option<String>,
    /// `PayloadOrganization`.
    pub payload_organization: Option<String>,
    /// `PayloadDescription`.
    pub payload_description: Option<String>,
    /// `PayloadVersion`.
    pub payload_version: Option<i64>,
    /// `IsManaged`: installed by MDM (default false).
    pub is_managed: bool,
    /// `PayloadRemovalDisallowed` (default false).
    pub payload_removal_disallowed: bool,
    /// `HasRemovalPasscode` (default false).
    pub has_removal_passcode: bool,
    /// `IsEncrypted` (default false).
    pub is_encrypted: bool,
    /// `Source`.
    pub source: Option<String>,
    /// `PayloadContent`: the profile's payloads.
    pub payload_content: Vec<ProfilePayload>,
}

/// A ProfileList report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileListResult {
    /// `ProfileList` (required).
    pub profiles: Vec<ProfileListItem>,
}

impl ProfileListResult {
    /// Reads `ProfileList` from the report.
    pub fn from_report(report: &Dictionary) -> Result<ProfileListResult, ProtocolError> {
        let items = Fields::new(report)
            .dict_array("ProfileList")?
            .ok_or(ProtocolError::MissingKey("ProfileList"))?;
        let profiles = items
            .into_iter()
            .map(|(path, item)| {
                let p = Fields::nested(item, &path);
                let payload_content = p
                    .dict_array("PayloadContent")?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(path, payload)| {
                        let c = Fields::nested(payload, &path);
                        Ok(ProfilePayload {
                            payload_type: c.string("PayloadType")?,
                            payload_identifier: c.string("PayloadIdentifier")?,
                            payload_uuid: c.string("PayloadUUID")?,
                            payload_display_name: c.string("PayloadDisplayName")?,
                        })
                    })
                    .collect::<Result<Vec<_>, ProtocolError>>()?;
                Ok(ProfileListItem {
                    payload_identifier: p.required_string("PayloadIdentifier")?,
                    payload_uuid: p.required_string("PayloadUUID")?,
                    payload_display_name: p.string("PayloadDisplayName")?,
                    payload_organization: p.string("PayloadOrganization")?,
                    payload_description: p.string("PayloadDescription")?,
                    payload_version: p.integer("PayloadVersion")?,
                    is_managed: p.boolean("IsManaged")?.unwrap_or(false),
                    payload_removal_disallowed: p
                        .boolean("PayloadRemovalDisallowed")?
                        .unwrap_or(false),
                    has_removal_passcode: p.boolean("HasRemovalPasscode")?.unwrap_or(false),
                    is_encrypted: p.boolean("IsEncrypted")?.unwrap_or(false),
                    source: p.string("Source")?,
                    payload_content,
                })
            })
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        Ok(ProfileListResult { profiles })
    }
}

/// `SecurityInfo.ManagementStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementStatus {
    /// `EnrolledViaDEP`.
    pub enrolled_via_dep: Option<bool>,
    /// `UserApprovedEnrollment`.
    pub user_approved_enrollment: Option<bool>,
    /// `IsUserEnrollment`.
    pub is_user_enrollment: Option<bool>,
    /// `IsActivationLockManageable`.
    pub is_activation_lock_manageable: Option<bool>,
}

/// The commonly used keys of a SecurityInfo report
/// (`mdm/commands/information.security.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityInfoResult {
    /// `HardwareEncryptionCaps` (iOS): 1 block-level, 2 file-level, 3 both.
    pub hardware_encryption_caps: Option<i64>,
    /// `PasscodePresent`.
    pub passcode_present: Option<bool>,
    /// `PasscodeCompliant`.
    pub passcode_compliant: Option<bool>,
    /// `PasscodeCompliantWithProfiles`.
    pub passcode_compliant_with_profiles: Option<bool>,
    /// `PasscodeLockGracePeriodEnforced` in seconds.
    pub passcode_lock_grace_period_enforced: Option<i64>,
    /// `FDE_Enabled` (macOS FileVault).
    pub fde_enabled: Option<bool>,
    /// `SystemIntegrityProtectionEnabled` (macOS).
    pub system_integrity_protection_enabled: Option<bool>,
    /// `FirewallSettings.FirewallEnabled` (macOS).
    pub firewall_enabled: Option<bool>,
    /// `IsRecoveryLockEnabled` (macOS).
    pub is_recovery_lock_enabled: Option<bool>,
    /// `BootstrapTokenAllowedForAuthentication` (macOS): `allowed`, `disallowed`, `not supported`.
    pub bootstrap_token_allowed_for_authentication: Option<String>,
    /// `ManagementStatus`.
    pub management_status: Option<ManagementStatus>,
}

impl SecurityInfoResult {
    /// Reads `SecurityInfo` (required) from the report.
    pub fn from_report(report: &Dictionary) -> Result<SecurityInfoResult, ProtocolError> {
        let info = Fields::new(report)
            .dict("SecurityInfo")?
            .ok_or(ProtocolError::MissingKey("SecurityInfo"))?;
        let s = Fields::nested(info, "SecurityInfo");
        let firewall_enabled = match s.dict("FirewallSettings")? {
            Some(fw) => {
                Fields::nested(fw, &s.path("FirewallSettings")).boolean("FirewallEnabled")?
            }
            None => None,
        };
        let management_status = match s.dict("ManagementStatus")? {
            Some(ms) => {
                let m = Fields::nested(ms, &s.path("ManagementStatus"));
                Some(ManagementStatus {
                    enrolled_via_dep: m.boolean("EnrolledViaDEP")?,
                    user_approved_enrollment: m.boolean("UserApprovedEnrollment")?,
                    is_user_enrollment: m.boolean("IsUserEnrollment")?,
                    is_activation_lock_manageable: m.boolean("IsActivationLockManageable")?,
                })
            }
            None => None,
        };
        Ok(SecurityInfoResult {
            hardware_encryption_caps: s.integer("HardwareEncryptionCaps")?,
            passcode_present: s.boolean("PasscodePresent")?,
            passcode_compliant: s.boolean("PasscodeCompliant")?,
            passcode_compliant_with_profiles: s.boolean("PasscodeCompliantWithProfiles")?,
            passcode_lock_grace_period_enforced: s.integer("PasscodeLockGracePeriodEnforced")?,
            fde_enabled: s.boolean("FDE_Enabled")?,
            system_integrity_protection_enabled: s.boolean("SystemIntegrityProtectionEnabled")?,
            firewall_enabled,
            is_recovery_lock_enabled: s.boolean("IsRecoveryLockEnabled")?,
            bootstrap_token_allowed_for_authentication: s
                .string("BootstrapTokenAllowedForAuthentication")?,
            management_status,
        })
    }
}

/// The response keys of InstallApplication (`mdm/commands/application.install.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallApplicationResult {
    /// `Identifier`: the bundle id, if the user accepted.
    pub identifier: Option<String>,
    /// `State`, e.g. `Queued`, `Installing`, `NeedsRedemption`, `Failed`.
    pub state: Option<String>,
    /// `RejectionReason`, e.g. `AppAlreadyInstalled`, `CouldNotVerifyAppID`.
    pub rejection_reason: Option<String>,
}

impl InstallApplicationResult {
    /// Reads the (all optional) response keys from the report.
    pub fn from_report(report: &Dictionary) -> Result<InstallApplicationResult, ProtocolError> {
        let f = Fields::new(report);
        Ok(InstallApplicationResult {
            identifier: f.string("Identifier")?,
            state: f.string("State")?,
            rejection_reason: f.string("RejectionReason")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::{ConnectReport, Status};

    fn report(entries: &str) -> ConnectReport {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CommandUUID</key>
	<string>6A3B9F0E-2C4D-4E5F-8A9B-0C1D2E3F4A5B</string>
{entries}
	<key>Status</key>
	<string>Acknowledged</string>
	<key>UDID</key>
	<string>00008103-000A1C2E3F48801E</string>
</dict>
</plist>"#
        );
        let report = ConnectReport::parse(body.as_bytes()).unwrap();
        assert_eq!(report.status, Status::Acknowledged);
        report
    }

    #[test]
    fn ipad_device_information() {
        let r = report(
            "\t<key>QueryResponses</key>
	<dict>
		<key>AvailableDeviceCapacity</key>
		<real>41.38</real>
		<key>BatteryLevel</key>
		<real>0.87</real>
		<key>BuildVersion</key>
		<string>21F90</string>
		<key>DeviceCapacity</key>
		<integer>64</integer>
		<key>DeviceName</key>
		<string>Klasse 7b – iPad 12</string>
		<key>IsSupervised</key>
		<true/>
		<key>Model</key>
		<string>MK2K3</string>
		<key>ModelName</key>
		<string>iPad</string>
		<key>OSVersion</key>
		<string>17.5.1</string>
		<key>OrganizationInfo</key>
		<dict><key>OrganizationName</key><string>Schule</string></dict>
		<key>ProductName</key>
		<string>iPad12,1</string>
		<key>SerialNumber</key>
		<string>DMPXK2ABCD12</string>
		<key>WiFiMAC</key>
		<string>a4:83:e7:12:34:56</string>
	</dict>",
        );
        let info = DeviceInformationResult::from_report(&r.raw).unwrap();
        assert_eq!(info.device_name.as_deref(), Some("Klasse 7b – iPad 12"));
        assert_eq!(info.os_version.as_deref(), Some("17.5.1"));
        assert_eq!(info.product_name.as_deref(), Some("iPad12,1"));
        assert_eq!(info.device_capacity, Some(64.0));
        assert_eq!(info.available_device_capacity, Some(41.38));
        assert_eq!(info.battery_level, Some(0.87));
        assert_eq!(info.is_supervised, Some(true));
        assert_eq!(info.wifi_mac.as_deref(), Some("a4:83:e7:12:34:56"));
        assert_eq!(info.imei, None);

        let wrong = report(
            "<key>QueryResponses</key><dict><key>IsSupervised</key><string>yes</string></dict>",
        );
        assert_eq!(
            DeviceInformationResult::from_report(&wrong.raw),
            Err(ProtocolError::WrongType {
                key: "QueryResponses.IsSupervised".to_owned(),
                expected: "boolean"
            })
        );
        assert_eq!(
            DeviceInformationResult::from_report(&report("").raw),
            Err(ProtocolError::MissingKey("QueryResponses"))
        );
    }

    #[test]
    fn ipad_installed_application_list() {
        let r = report(
            "\t<key>InstalledApplicationList</key>
	<array>
		<dict>
			<key>BundleSize</key><integer>712458240</integer>
			<key>DynamicSize</key><integer>18530304</integer>
			<key>ExternalVersionIdentifier</key><integer>865432198</integer>
			<key>Identifier</key><string>com.apple.Keynote</string>
			<key>Installing</key><false/>
			<key>Name</key><string>Keynote</string>
			<key>ShortVersion</key><string>14.1</string>
			<key>Version</key><string>7032.0.97</string>
			<key>AppStoreVendable</key><true/>
		</dict>
		<dict>
			<key>Identifier</key><string>de.schule.vokabeltrainer</string>
			<key>Installing</key><true/>
			<key>Name</key><string>Vokabeltrainer</string>
		</dict>
	</array>",
        );
        let list = InstalledApplicationListResult::from_report(&r.raw).unwrap();
        assert_eq!(list.apps.len(), 2);
        let keynote = &list.apps[0];
        assert_eq!(keynote.identifier.as_deref(), Some("com.apple.Keynote"));
        assert_eq!(keynote.short_version.as_deref(), Some("14.1"));
        assert_eq!(keynote.bundle_size, Some(712458240));
        assert_eq!(keynote.installing, Some(false));
        assert_eq!(keynote.app_store_vendable, Some(true));
        assert_eq!(list.apps[1].installing, Some(true));
        assert_eq!(list.apps[1].version, None);
    }

    #[test]
    fn ipad_managed_application_list() {
        let r = report(
            "\t<key>ManagedApplicationList</key>
	<dict>
		<key>com.apple.Keynote</key>
		<dict>
			<key>ExternalVersionIdentifier</key><integer>865432198</integer>
			<key>HasConfiguration</key><false/>
			<key>HasFeedback</key><false/>
			<key>IsValidated</key><true/>
			<key>ManagementFlags</key><integer>1</integer>
			<key>Status</key><string>Managed</string>
		</dict>
		<key>com.apple.Pages</key>
		<dict>
			<key>ManagementFlags</key><integer>0</integer>
			<key>Status</key><string>Installing</string>
		</dict>
	</dict>",
        );
        let list = ManagedApplicationListResult::from_report(&r.raw).unwrap();
        assert_eq!(list.apps.len(), 2);
        let keynote = &list.apps["com.apple.Keynote"];
        assert_eq!(keynote.status.as_deref(), Some("Managed"));
        assert_eq!(keynote.management_flags, Some(1));
        assert_eq!(keynote.is_validated, Some(true));
        assert_eq!(
            list.apps["com.apple.Pages"].status.as_deref(),
            Some("Installing")
        );
    }

    #[test]
    fn ipad_profile_list() {
        let r = report(
            "\t<key>ProfileList</key>
	<array>
		<dict>
			<key>HasRemovalPasscode</key><false/>
			<key>IsEncrypted</key><false/>
			<key>IsManaged</key><true/>
			<key>PayloadContent</key>
			<array>
				<dict>
					<key>PayloadDisplayName</key><string>WLAN</string>
					<key>PayloadIdentifier</key><string>de.schule.wlan.wifi</string>
					<key>PayloadType</key><string>com.apple.wifi.managed</string>
					<key>PayloadUUID</key><string>3C2B1A09-8F7E-4D6C-5B4A-392817161514</string>
					<key>PayloadVersion</key><integer>1</integer>
				</dict>
			</array>
			<key>PayloadDescription</key><string>Schul-WLAN</string>
			<key>PayloadDisplayName</key><string>Schul-WLAN</string>
			<key>PayloadIdentifier</key><string>de.schule.wlan</string>
			<key>PayloadOrganization</key><string>Schule</string>
			<key>PayloadRemovalDisallowed</key><true/>
			<key>PayloadUUID</key><string>9A8B7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>SignerCertificates</key><array><data>MIIB</data></array>
		</dict>
	</array>",
        );
        let list = ProfileListResult::from_report(&r.raw).unwrap();
        assert_eq!(list.profiles.len(), 1);
        let p = &list.profiles[0];
        assert_eq!(p.payload_identifier, "de.schule.wlan");
        assert_eq!(p.payload_uuid, "9A8B7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D");
        assert_eq!(p.payload_display_name.as_deref(), Some("Schul-WLAN"));
        assert!(p.is_managed && p.payload_removal_disallowed && !p.is_encrypted);
        assert_eq!(p.payload_content.len(), 1);
        assert_eq!(
            p.payload_content[0].payload_type.as_deref(),
            Some("com.apple.wifi.managed")
        );

        let nameless = report("<key>ProfileList</key><array><dict><key>PayloadUUID</key><string>U</string></dict></array>");
        assert_eq!(
            ProfileListResult::from_report(&nameless.raw),
            Err(ProtocolError::MissingKey("PayloadIdentifier"))
        );
    }

    #[test]
    fn ipad_security_info() {
        let r = report(
            "\t<key>SecurityInfo</key>
	<dict>
		<key>HardwareEncryptionCaps</key><integer>3</integer>
		<key>ManagementStatus</key>
		<dict>
			<key>EnrolledViaDEP</key><true/>
			<key>IsActivationLockManageable</key><true/>
			<key>IsUserEnrollment</key><false/>
			<key>UserApprovedEnrollment</key><true/>
		</dict>
		<key>PasscodeCompliant</key><true/>
		<key>PasscodeCompliantWithProfiles</key><true/>
		<key>PasscodeLockGracePeriodEnforced</key><integer>0</integer>
		<key>PasscodePresent</key><true/>
	</dict>",
        );
        let info = SecurityInfoResult::from_report(&r.raw).unwrap();
        assert_eq!(info.hardware_encryption_caps, Some(3));
        assert_eq!(info.passcode_present, Some(true));
        assert_eq!(info.fde_enabled, None);
        let ms = info.management_status.unwrap();
        assert_eq!(ms.enrolled_via_dep, Some(true));
        assert_eq!(ms.is_user_enrollment, Some(false));
    }

    #[test]
    fn install_application_response() {
        let r = report(
            "<key>Identifier</key><string>com.apple.Keynote</string>\
             <key>State</key><string>Queued</string>",
        );
        let result = InstallApplicationResult::from_report(&r.raw).unwrap();
        assert_eq!(result.state.as_deref(), Some("Queued"));
        assert_eq!(result.rejection_reason, None);
    }
}
