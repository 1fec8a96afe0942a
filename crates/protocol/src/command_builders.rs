//! Typed constructors for the commands tafel sends, each checked against its
//! schema file in `mdm/commands/` for key names and plist types.

use plist::{Dictionary, Value};

use super::command::Command;
use super::dict::DictWriter;
use super::error::ProtocolError;
use super::ids::CommandUuid;

/// DeviceInformation queries tafel stores as inventory
/// (names from the Queries rangelist of `mdm/commands/information.device.yaml`).
pub const INVENTORY_QUERIES: &[&str] = &[
    "UDID",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ModelNumber",
    "ProductName",
    "SerialNumber",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "IsSupervised",
    "IsActivationLockEnabled",
    "IsMDMLostModeEnabled",
    "AwaitingConfiguration",
    "WiFiMAC",
    "BluetoothMAC",
    "IMEI",
    "MEID",
    "TimeZone",
];

impl Command {
    /// A command of an Apple-defined type with fixed fields.
    fn apple(request_type: &'static str, fields: Dictionary) -> Command {
        Command {
            command_uuid: CommandUuid::new(),
            request_type: request_type.to_owned(),
            fields,
        }
    }

    /// `DeviceInformation` with `Queries` (`<array>` of `<string>`, required;
    /// `mdm/commands/information.device.yaml`).
    pub fn device_information(queries: &[&str]) -> Command {
        let queries = queries.iter().map(|q| Value::from(*q)).collect::<Vec<_>>();
        Command::apple(
            "DeviceInformation",
            DictWriter::new().set("Queries", queries).finish(),
        )
    }

    /// `InstalledApplicationList` with no filters
    /// (`mdm/commands/application.installed.list.yaml`).
    pub fn installed_application_list() -> Command {
        Command::apple("InstalledApplicationList", Dictionary::new())
    }

    /// `ManagedApplicationList` for all managed apps
    /// (`mdm/commands/application.managed.list.yaml`).
    pub fn managed_application_list() -> Command {
        Command::apple("ManagedApplicationList", Dictionary::new())
    }

    /// `ProfileList` (`mdm/commands/profile.list.yaml`).
    pub fn profile_list() -> Command {
        Command::apple("ProfileList", Dictionary::new())
    }

    /// `SecurityInfo` (`mdm/commands/information.security.yaml`; no request keys).
    pub fn security_info() -> Command {
        Command::apple("SecurityInfo", Dictionary::new())
    }

    /// `InstallApplication` (`mdm/commands/application.install.yaml`).
    pub fn install_application(app: &InstallApplication) -> Result<Command, ProtocolError> {
        app.validate()?;
        let (store_id, identifier, manifest_url) = match &app.source {
            AppSource::ITunesStoreId(id) => (Some(*id), None, None),
            AppSource::Identifier(id) => (None, Some(id.as_str()), None),
            AppSource::ManifestUrl(url) => (None, None, Some(url.as_str())),
        };
        let options = app.purchase_method.map(|method| {
            DictWriter::new()
                .set("PurchaseMethod", method as i64)
                .finish()
        });
        let fields = DictWriter::new()
            .opt("iTunesStoreID", store_id)
            .string("Identifier", identifier)
            .string("ManifestURL", manifest_url)
            .opt("Options", options)
            .opt("ManagementFlags", app.management_flags)
            .opt("Configuration", app.configuration.clone())
            .opt("Attributes", app.attributes.clone())
            .string(
                "ChangeManagementState",
                app.take_management.then_some("Managed"),
            )
            .opt("InstallAsManaged", app.install_as_managed)
            .finish();
        Ok(Command::apple("InstallApplication", fields))
    }

    /// `RemoveApplication` with `Identifier` (bundle id, required;
    /// `mdm/commands/application.remove.yaml`).
    pub fn remove_application(identifier: &str) -> Command {
        Command::apple(
            "RemoveApplication",
            DictWriter::new().set("Identifier", identifier).finish(),
        )
    }

    /// `InstallProfile` with `Payload` as `<data>` (the signed or plain
    /// .mobileconfig bytes; `mdm/commands/profile.install.yaml`).
    pub fn install_profile(payload: Vec<u8>) -> Command {
        Command::apple(
            "InstallProfile",
            DictWriter::new()
                .set("Payload", Value::Data(payload))
                .finish(),
        )
    }

    /// `RemoveProfile` with the profile's `PayloadIdentifier` as `Identifier`
    /// (`mdm/commands/profile.remove.yaml`).
    pub fn remove_profile(identifier: &str) -> Command {
        Command::apple(
            "RemoveProfile",
            DictWriter::new().set("Identifier", identifier).finish(),
        )
    }

    /// `DeviceConfigured`: releases a device waiting in Setup Assistant
    /// (`mdm/commands/device.configured.yaml`; no keys).
    pub fn device_configured() -> Command {
        Command::apple("DeviceConfigured", Dictionary::new())
    }

    /// `DeclarativeManagement` with optional `Data` (`<data>`: TokensResponse
    /// JSON bytes; `mdm/commands/declarativemanagement.yaml`).
    pub fn declarative_management(data: Option<Vec<u8>>) -> Command {
        Command::apple(
            "DeclarativeManagement",
            DictWriter::new()
                .opt("Data", data.map(Value::Data))
                .finish(),
        )
    }

    /// `RestartDevice` (`mdm/commands/device.restart.yaml`).
    pub fn restart_device(options: &RestartDevice) -> Command {
        let kext_paths = (!options.kext_paths.is_empty()).then(|| {
            options
                .kext_paths
                .iter()
                .map(|p| Value::from(p.as_str()))
                .collect::<Vec<_>>()
        });
        Command::apple(
            "RestartDevice",
            DictWriter::new()
                .flag("NotifyUser", options.notify_user)
                .flag("RebuildKernelCache", options.rebuild_kernel_cache)
                .opt("KextPaths", kext_paths)
                .finish(),
        )
    }

    /// `DeviceLock` (`mdm/commands/device.lock.yaml`).
    pub fn device_lock(options: &DeviceLock) -> Command {
        Command::apple(
            "DeviceLock",
            DictWriter::new()
                .string("Message", options.message.as_deref())
                .string("PhoneNumber", options.phone_number.as_deref())
                .string("PIN", options.pin.as_deref())
                .finish(),
        )
    }

    /// `EraseDevice` (`mdm/commands/device.erase.yaml`).
    pub fn erase_device(options: &EraseDevice) -> Command {
        let rts = options.return_to_service.as_ref().map(|rts| {
            DictWriter::new()
                .set("Enabled", rts.enabled)
                .data("WiFiProfileData", rts.wifi_profile_data.as_deref())
                .data("MDMProfileData", rts.mdm_profile_data.as_deref())
                .finish()
        });
        Command::apple(
            "EraseDevice",
            DictWriter::new()
                .flag("PreserveDataPlan", options.preserve_data_plan)
                .flag("DisallowProximitySetup", options.disallow_proximity_setup)
                .string("PIN", options.pin.as_deref())
                .string(
                    "ObliterationBehavior",
                    options
                        .obliteration_behavior
                        .map(ObliterationBehavior::as_str),
                )
                .opt("ReturnToService", rts)
                .finish(),
        )
    }
}

impl Command {
    /// `EnableLostMode` (`mdm/commands/device.lostmode.enable.yaml`; supervised, iOS 9.3+):
    /// a `Message` or a `PhoneNumber` must be given, `Footnote` replaces "Slide to Unlock".
    pub fn enable_lost_mode(options: &LostMode) -> Result<Command, ProtocolError> {
        let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !given(&options.message) && !given(&options.phone_number) {
            return Err(ProtocolError::InvalidValue {
                key: "Message".to_owned(),
                reason: "a Message or a PhoneNumber must be provided".to_owned(),
            });
        }
        Ok(Command::apple(
            "EnableLostMode",
            DictWriter::new()
                .string("Message", options.message.as_deref())
                .string("PhoneNumber", options.phone_number.as_deref())
                .string("Footnote", options.footnote.as_deref())
                .finish(),
        ))
    }

    /// `DisableLostMode` (`mdm/commands/device.lostmode.disable.yaml`; no keys).
    pub fn disable_lost_mode() -> Command {
        Command::apple("DisableLostMode", Dictionary::new())
    }

    /// `DeviceLocation` (`mdm/commands/device.lostmode.location.yaml`; no keys; answered
    /// only in Lost Mode).
    pub fn device_location() -> Command {
        Command::apple("DeviceLocation", Dictionary::new())
    }

    /// `PlayLostModeSound` (`mdm/commands/device.lostmode.playsound.yaml`; no keys).
    pub fn play_lost_mode_sound() -> Command {
        Command::apple("PlayLostModeSound", Dictionary::new())
    }

    /// `ShutDownDevice` (`mdm/commands/device.shutdown.yaml`; no keys on iOS).
    pub fn shut_down_device() -> Command {
        Command::apple("ShutDownDevice", Dictionary::new())
    }

    /// `ScheduleOSUpdate` with one `Updates` item (`mdm/commands/system.update.schedule.yaml`):
    /// `InstallAction` (required) and `ProductVersion` or `ProductKey`.
    pub fn schedule_os_update(update: &OsUpdate) -> Command {
        let item = DictWriter::new()
            .set("InstallAction", update.install_action.as_str())
            .string("ProductVersion", update.product_version.as_deref())
            .string("ProductKey", update.product_key.as_deref())
            .finish();
        Command::apple(
            "ScheduleOSUpdate",
            DictWriter::new()
                .set("Updates", vec![Value::Dictionary(item)])
                .finish(),
        )
    }
}

/// The lock screen of EnableLostMode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LostMode {
    /// `Message` shown on the Lock screen.
    pub message: Option<String>,
    /// `PhoneNumber` shown on the Lock screen.
    pub phone_number: Option<String>,
    /// `Footnote` shown instead of "Slide to Unlock".
    pub footnote: Option<String>,
}

/// `InstallAction` of a ScheduleOSUpdate item (the values iOS knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallAction {
    /// `Default`: download or install, depending on the current state.
    Default,
    /// `DownloadOnly`: download, do not install.
    DownloadOnly,
    /// `InstallASAP`: install an update already downloaded.
    InstallAsap,
}

impl InstallAction {
    /// The plist string.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallAction::Default => "Default",
            InstallAction::DownloadOnly => "DownloadOnly",
            InstallAction::InstallAsap => "InstallASAP",
        }
    }
}

/// One update of ScheduleOSUpdate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUpdate {
    /// `InstallAction`.
    pub install_action: InstallAction,
    /// `ProductVersion`, e.g. `18.2` (iOS 11.3+).
    pub product_version: Option<String>,
    /// `ProductKey`, as AvailableOSUpdates reports it.
    pub product_key: Option<String>,
}

/// Where InstallApplication gets the app from (`mdm/commands/application.install.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// `iTunesStoreID` (`<integer>`): an App Store / VPP app.
    ITunesStoreId(i64),
    /// `Identifier`: the bundle id (iOS 7+).
    Identifier(String),
    /// `ManifestURL`: an https URL of an enterprise app manifest.
    ManifestUrl(String),
}

/// `Options.PurchaseMethod` (`<integer>`, 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseMethod {
    /// 0: free apps and legacy VPP redemption codes (iOS only).
    FreeOrRedemptionCode = 0,
    /// 1: Volume Purchase Program app assignment (no Apple Account needed).
    VppAssignment = 1,
}

/// The request of an InstallApplication command.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallApplication {
    /// Which app.
    pub source: AppSource,
    /// `ManagementFlags`: 1 (remove with MDM profile), 4 (no backup) or 5 (both).
    pub management_flags: Option<i64>,
    /// `Options.PurchaseMethod`.
    pub purchase_method: Option<PurchaseMethod>,
    /// `Configuration`: the app's initial managed configuration.
    pub configuration: Option<Dictionary>,
    /// `Attributes` (VPNUUID, Removable, …), passed through.
    pub attributes: Option<Dictionary>,
    /// Sends `ChangeManagementState = Managed`: take over a user-installed app.
    pub take_management: bool,
    /// `InstallAsManaged` (macOS 11+).
    pub install_as_managed: Option<bool>,
}

impl InstallApplication {
    /// An install from the App Store by `iTunesStoreID`, all options unset.
    pub fn from_store(itunes_store_id: i64) -> InstallApplication {
        InstallApplication::with_source(AppSource::ITunesStoreId(itunes_store_id))
    }

    /// An enterprise install from a manifest URL, all options unset.
    pub fn from_manifest(url: impl Into<String>) -> InstallApplication {
        InstallApplication::with_source(AppSource::ManifestUrl(url.into()))
    }

    /// An install with the given source, all options unset.
    pub fn with_source(source: AppSource) -> InstallApplication {
        InstallApplication {
            source,
            management_flags: None,
            purchase_method: None,
            configuration: None,
            attributes: None,
            take_management: false,
            install_as_managed: None,
        }
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        let invalid = |key: &str, reason: &str| ProtocolError::InvalidValue {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        match &self.source {
            AppSource::ITunesStoreId(id) if *id <= 0 => {
                return Err(invalid("iTunesStoreID", "must be a positive integer"));
            }
            AppSource::Identifier(id) if id.is_empty() => {
                return Err(invalid("Identifier", "must not be empty"));
            }
            // application.install.yaml: the manifest URL "needs to begin with 'https:'".
            AppSource::ManifestUrl(url) if !url.starts_with("https:") => {
                return Err(invalid("ManifestURL", "must begin with https:"));
            }
            _ => {}
        }
        // application.install.yaml: ManagementFlags rangelist is 1, 4, 5.
        if let Some(flags) = self.management_flags {
            if ![1, 4, 5].contains(&flags) {
                return Err(invalid("ManagementFlags", "must be 1, 4 or 5"));
            }
        }
        Ok(())
    }
}

/// Options of RestartDevice; all default to false/empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartDevice {
    /// `NotifyUser` (macOS): let the user save work before the restart.
    pub notify_user: bool,
    /// `RebuildKernelCache` (macOS).
    pub rebuild_kernel_cache: bool,
    /// `KextPaths` (macOS), used with RebuildKernelCache.
    pub kext_paths: Vec<String>,
}

/// Options of DeviceLock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLock {
    /// `Message` shown on the lock screen.
    pub message: Option<String>,
    /// `PhoneNumber` shown on the lock screen.
    pub phone_number: Option<String>,
    /// `PIN` (macOS only): the six-character Find My PIN.
    pub pin: Option<String>,
}

/// `ObliterationBehavior` of EraseDevice (macOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObliterationBehavior {
    /// `Default`.
    Default,
    /// `DoNotObliterate`.
    DoNotObliterate,
    /// `ObliterateWithWarning`.
    ObliterateWithWarning,
    /// `Always`.
    Always,
}

impl ObliterationBehavior {
    /// The plist string.
    pub fn as_str(self) -> &'static str {
        match self {
            ObliterationBehavior::Default => "Default",
            ObliterationBehavior::DoNotObliterate => "DoNotObliterate",
            ObliterationBehavior::ObliterateWithWarning => "ObliterateWithWarning",
            ObliterationBehavior::Always => "Always",
        }
    }
}

/// `ReturnToService` of EraseDevice (iOS 17+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnToService {
    /// `Enabled` (required in the dictionary).
    pub enabled: bool,
    /// `WiFiProfileData` (`<data>`).
    pub wifi_profile_data: Option<Vec<u8>>,
    /// `MDMProfileData` (`<data>`).
    pub mdm_profile_data: Option<Vec<u8>>,
}

/// Options of EraseDevice; all default to false/absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EraseDevice {
    /// `PreserveDataPlan` (eSIM).
    pub preserve_data_plan: bool,
    /// `DisallowProximitySetup`.
    pub disallow_proximity_setup: bool,
    /// `PIN` (macOS).
    pub pin: Option<String>,
    /// `ObliterationBehavior` (macOS).
    pub obliteration_behavior: Option<ObliterationBehavior>,
    /// `ReturnToService`.
    pub return_to_service: Option<ReturnToService>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes and parses back, as the device would see it.
    fn on_device(command: &Command) -> Command {
        let parsed = Command::parse(&command.to_xml()).unwrap();
        assert_eq!(&parsed, command);
        parsed
    }

    #[test]
    fn lost_mode_and_update_commands_have_the_schema_keys() {
        let lost = on_device(
            &Command::enable_lost_mode(&LostMode {
                message: Some("Bitte im Sekretariat abgeben".into()),
                phone_number: None,
                footnote: Some("Schule am Markt".into()),
            })
            .unwrap(),
        );
        assert_eq!(lost.request_type, "EnableLostMode");
        assert_eq!(
            lost.fields.get("Footnote").and_then(Value::as_string),
            Some("Schule am Markt")
        );
        assert!(!lost.fields.contains_key("PhoneNumber"));
        // device.lostmode.enable.yaml: a message or phone number must be provided.
        assert!(Command::enable_lost_mode(&LostMode::default()).is_err());
        let update = on_device(&Command::schedule_os_update(&OsUpdate {
            install_action: InstallAction::InstallAsap,
            product_version: Some("18.2".into()),
            product_key: None,
        }));
        let item = update
            .fields
            .get("Updates")
            .and_then(Value::as_array)
            .unwrap()[0]
            .as_dictionary()
            .unwrap();
        assert_eq!(
            item.get("InstallAction").and_then(Value::as_string),
            Some("InstallASAP")
        );
        assert_eq!(
            item.get("ProductVersion").and_then(Value::as_string),
            Some("18.2")
        );
        for (c, name) in [
            (Command::disable_lost_mode(), "DisableLostMode"),
            (Command::device_location(), "DeviceLocation"),
            (Command::play_lost_mode_sound(), "PlayLostModeSound"),
            (Command::shut_down_device(), "ShutDownDevice"),
        ] {
            assert_eq!(on_device(&c).request_type, name);
            assert!(c.fields.is_empty());
        }
    }

    #[test]
    fn inventory_commands_have_the_schema_names() {
        let info = on_device(&Command::device_information(INVENTORY_QUERIES));
        assert_eq!(info.request_type, "DeviceInformation");
        let queries = info
            .fields
            .get("Queries")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(queries.len(), INVENTORY_QUERIES.len());
        for (command, name) in [
            (
                Command::installed_application_list(),
                "InstalledApplicationList",
            ),
            (
                Command::managed_application_list(),
                "ManagedApplicationList",
            ),
            (Command::profile_list(), "ProfileList"),
            (Command::security_info(), "SecurityInfo"),
            (Command::device_configured(), "DeviceConfigured"),
        ] {
            assert_eq!(on_device(&command).request_type, name);
            assert!(command.fields.is_empty());
        }
    }

    #[test]
    fn keynote_for_class_7b_is_a_vpp_install() {
        let mut config = Dictionary::new();
        config.insert("classroom".to_owned(), "7b".into());
        let app = InstallApplication {
            management_flags: Some(1),
            purchase_method: Some(PurchaseMethod::VppAssignment),
            configuration: Some(config),
            take_management: true,
            ..InstallApplication::from_store(361285480)
        };
        let command = on_device(&Command::install_application(&app).unwrap());
        let f = &command.fields;
        assert_eq!(
            f.get("iTunesStoreID"),
            Some(&Value::Integer(361285480.into()))
        );
        assert_eq!(f.get("ManagementFlags"), Some(&Value::Integer(1.into())));
        let options = f.get("Options").and_then(Value::as_dictionary).unwrap();
        assert_eq!(
            options.get("PurchaseMethod"),
            Some(&Value::Integer(1.into()))
        );
        assert_eq!(
            f.get("ChangeManagementState"),
            Some(&Value::String("Managed".into()))
        );
        assert!(f
            .get("Configuration")
            .and_then(Value::as_dictionary)
            .is_some());
        assert!(f.get("ManifestURL").is_none());
    }

    #[test]
    fn install_application_validates_against_the_schema() {
        let http = InstallApplication::from_manifest("http://apps.example/manifest.plist");
        assert!(matches!(
            Command::install_application(&http),
            Err(ProtocolError::InvalidValue { key, .. }) if key == "ManifestURL"
        ));
        let https = InstallApplication::from_manifest("https://apps.example/manifest.plist");
        let command = Command::install_application(&https).unwrap();
        assert_eq!(
            command.fields.get("ManifestURL").and_then(Value::as_string),
            Some("https://apps.example/manifest.plist")
        );
        let flags = InstallApplication {
            management_flags: Some(2),
            ..InstallApplication::from_store(1)
        };
        assert!(Command::install_application(&flags).is_err());
        assert!(Command::install_application(&InstallApplication::from_store(0)).is_err());
    }

    #[test]
    fn profile_and_app_removal_and_install_profile_payload_is_data() {
        let install = on_device(&Command::install_profile(b"<plist/>".to_vec()));
        assert_eq!(
            install.fields.get("Payload"),
            Some(&Value::Data(b"<plist/>".to_vec()))
        );
        let remove = on_device(&Command::remove_profile("de.schule.wlan"));
        assert_eq!(
            remove.fields.get("Identifier").and_then(Value::as_string),
            Some("de.schule.wlan")
        );
        let remove_app = on_device(&Command::remove_application("com.apple.Keynote"));
        assert_eq!(remove_app.request_type, "RemoveApplication");
        assert_eq!(
            remove_app
                .fields
                .get("Identifier")
                .and_then(Value::as_string),
            Some("com.apple.Keynote")
        );
    }

    #[test]
    fn declarative_management_data_is_data() {
        let command = on_device(&Command::declarative_management(Some(
            br#"{"SyncTokens":{}}"#.to_vec(),
        )));
        assert!(matches!(command.fields.get("Data"), Some(Value::Data(_))));
        assert!(Command::declarative_management(None).fields.is_empty());
    }

    #[test]
    fn restart_lock_and_erase_options() {
        let restart = on_device(&Command::restart_device(&RestartDevice {
            notify_user: true,
            ..RestartDevice::default()
        }));
        assert_eq!(
            restart.fields.get("NotifyUser"),
            Some(&Value::Boolean(true))
        );
        assert!(restart.fields.get("KextPaths").is_none());

        let lock = on_device(&Command::device_lock(&DeviceLock {
            message: Some("Bitte im Sekretariat abgeben".to_owned()),
            phone_number: Some("+49 30 1234567".to_owned()),
            pin: None,
        }));
        assert_eq!(lock.fields.len(), 2);

        let erase = on_device(&Command::erase_device(&EraseDevice {
            obliteration_behavior: Some(ObliterationBehavior::DoNotObliterate),
            return_to_service: Some(ReturnToService {
                enabled: true,
                wifi_profile_data: Some(b"wifi".to_vec()),
                mdm_profile_data: None,
            }),
            ..EraseDevice::default()
        }));
        let rts = erase
            .fields
            .get("ReturnToService")
            .and_then(Value::as_dictionary)
            .unwrap();
        assert_eq!(rts.get("Enabled"), Some(&Value::Boolean(true)));
        assert_eq!(
            rts.get("WiFiProfileData"),
            Some(&Value::Data(b"wifi".to_vec()))
        );
        assert_eq!(
            erase
                .fields
                .get("ObliterationBehavior")
                .and_then(Value::as_string),
            Some("DoNotObliterate")
        );
    }
}
