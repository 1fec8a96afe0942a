//! Typed device actions for the service desk (lock, clear the passcode, Lost Mode, locate,
//! restart, rename, erase, …): what each one sends to an iPad, what it needs of the
//! device (supervision, an iPadOS version, an unlock token, Lost Mode), and the pure check
//! of one device against those needs. The rules come from Apple's schema files named at
//! each action; the API (`api::actions`) loads the devices, checks and queues.

use serde::{Deserialize, Serialize};

use crate::protocol::{self, Command};

/// Longest text shown on a Lock screen (message, footnote) that tafel sends.
const MAX_TEXT: usize = 300;
/// Longest phone number.
const MAX_PHONE: usize = 40;
/// Largest Wi-Fi profile for Return to Service.
const MAX_WIFI_PROFILE: usize = 64 * 1024;

/// What to do with the iPads. Tagged by `type`; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceAction {
    /// Lock the screen now (`DeviceLock`, `mdm/commands/device.lock.yaml`), optionally
    /// with a message and a phone number on the Lock screen (iOS 7+). Any iPad.
    Lock {
        /// Shown on the Lock screen.
        #[serde(default)]
        message: Option<String>,
        /// Shown on the Lock screen.
        #[serde(default)]
        phone_number: Option<String>,
    },
    /// Clear a forgotten passcode (`ClearPasscode`, `mdm/commands/passcode.clear.yaml`) with
    /// the unlock token the iPad sent at enrollment. Needs that token.
    ClearPasscode {},
    /// Lost Mode on (`EnableLostMode`, `mdm/commands/device.lostmode.enable.yaml`):
    /// the iPad locks and shows the message or phone number (one is required) and the
    /// footnote. Supervised, iPadOS 9.3+.
    LostModeOn {
        /// Shown on the Lock screen (this or `phone_number` is required).
        #[serde(default)]
        message: Option<String>,
        /// Shown on the Lock screen.
        #[serde(default)]
        phone_number: Option<String>,
        /// Shown instead of "Slide to Unlock".
        #[serde(default)]
        footnote: Option<String>,
    },
    /// Lost Mode off (`DisableLostMode`). Supervised, iPadOS 9.3+.
    LostModeOff {},
    /// Where the iPad is (`DeviceLocation`, `mdm/commands/device.lostmode.location.yaml`):
    /// the answer (Latitude, Longitude, …) is in the device's command list. Supervised,
    /// iPadOS 9.3+, in Lost Mode.
    Locate {},
    /// Play a sound until found (`PlayLostModeSound`). Supervised, iPadOS 10.3+, in Lost
    /// Mode.
    PlaySound {},
    /// Restart now (`RestartDevice`). Supervised, iPadOS 10.3+.
    Restart {},
    /// Shut down now (`ShutDownDevice`). Supervised, iPadOS 10.3+.
    ShutDown {},
    /// Rename one iPad (`Settings` with `DeviceName`, `mdm/commands/settings.yaml`): tafel
    /// stores the name and sends it. Supervised; one device per request.
    Rename {
        /// The new name (1 to 100 characters).
        name: String,
    },
    /// Ask the iPads what they have now (DeviceInformation, InstalledApplicationList,
    /// ProfileList, SecurityInfo). Any iPad.
    RefreshInventory {},
    /// Update iPadOS (`ScheduleOSUpdate`, `mdm/commands/system.update.schedule.yaml`) to
    /// `product_version`. Supervised, iPadOS 11.3+ (for ProductVersion); iPads already on
    /// that version or later are not suitable.
    UpdateOs {
        /// The iPadOS version to go to, e.g. `18.2`.
        product_version: String,
        /// What the iPad does: download and install as it sees fit (`default`), only
        /// download (`download_only`) or install a downloaded update now (`install_asap`).
        #[serde(default)]
        install_action: Option<UpdateAction>,
    },
    /// Erase the iPads (`EraseDevice`, `mdm/commands/device.erase.yaml`): everything on them
    /// is gone. Confirm with the serial number of the one iPad, or with the number of iPads
    /// when there are several. A PIN exists for Macs only.
    Erase {
        /// The serial number of the one iPad, or the number of iPads.
        confirm: String,
        /// Keep the eSIM's data plan (iPadOS 11+).
        #[serde(default)]
        preserve_data_plan: bool,
        /// Skip Proximity Setup in Setup Assistant afterwards (iPadOS 11.3+).
        #[serde(default)]
        disallow_proximity_setup: bool,
        /// Return to Service (iPadOS 17+, supervised iPads enrolled through Apple School
        /// Manager): the iPad joins the Wi-Fi and enrolls again by itself after the erase.
        #[serde(default)]
        return_to_service: Option<ReturnToServiceOptions>,
    },
}

/// `InstallAction` of an OS update, as iPads know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    /// `Default`: download or install, as the iPad's state allows.
    Default,
    /// `DownloadOnly`.
    DownloadOnly,
    /// `InstallASAP`: install a downloaded update.
    InstallAsap,
}

/// Return to Service after an erase.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnToServiceOptions {
    /// The Wi-Fi profile (`.mobileconfig`, base64) the iPad installs after the erase to
    /// reach tafel again (`WiFiProfileData`; required unless it has Ethernet).
    #[serde(default)]
    pub wifi_profile: Option<String>,
}

impl DeviceAction {
    /// The action's name as the API spells it (`lost_mode_on`).
    pub fn name(&self) -> &'static str {
        match self {
            DeviceAction::Lock { .. } => "lock",
            DeviceAction::ClearPasscode {} => "clear_passcode",
            DeviceAction::LostModeOn { .. } => "lost_mode_on",
            DeviceAction::LostModeOff {} => "lost_mode_off",
            DeviceAction::Locate {} => "locate",
            DeviceAction::PlaySound {} => "play_sound",
            DeviceAction::Restart {} => "restart",
            DeviceAction::ShutDown {} => "shut_down",
            DeviceAction::Rename { .. } => "rename",
            DeviceAction::RefreshInventory {} => "refresh_inventory",
            DeviceAction::UpdateOs { .. } => "update_os",
            DeviceAction::Erase { .. } => "erase",
        }
    }

    /// Apple's RequestType the action sends.
    pub fn request_type(&self) -> &'static str {
        match self {
            DeviceAction::Lock { .. } => "DeviceLock",
            DeviceAction::ClearPasscode {} => "ClearPasscode",
            DeviceAction::LostModeOn { .. } => "EnableLostMode",
            DeviceAction::LostModeOff {} => "DisableLostMode",
            DeviceAction::Locate {} => "DeviceLocation",
            DeviceAction::PlaySound {} => "PlayLostModeSound",
            DeviceAction::Restart {} => "RestartDevice",
            DeviceAction::ShutDown {} => "ShutDownDevice",
            DeviceAction::Rename { .. } => "Settings",
            DeviceAction::RefreshInventory {} => "DeviceInformation",
            DeviceAction::UpdateOs { .. } => "ScheduleOSUpdate",
            DeviceAction::Erase { .. } => "EraseDevice",
        }
    }

    /// What the action needs of an iPad (iOS/iPadOS rows of the schema files).
    pub fn needs(&self) -> Needs {
        let base = Needs {
            min_os: OsVersion::new(4, 0, 0),
            supervised: false,
            unlock_token: false,
            lost_mode: false,
            below: None,
        };
        let supervised = |major, minor| Needs {
            min_os: OsVersion::new(major, minor, 0),
            supervised: true,
            ..base.clone()
        };
        match self {
            // device.lock.yaml: Message and PhoneNumber from iOS 7.
            DeviceAction::Lock {
                message,
                phone_number,
            } if message.is_some() || phone_number.is_some() => Needs {
                min_os: OsVersion::new(7, 0, 0),
                ..base
            },
            DeviceAction::Lock { .. } | DeviceAction::RefreshInventory {} => base,
            DeviceAction::ClearPasscode {} => Needs {
                unlock_token: true,
                ..base
            },
            DeviceAction::LostModeOn { .. } | DeviceAction::LostModeOff {} => supervised(9, 3),
            DeviceAction::Locate {} => Needs {
                lost_mode: true,
                ..supervised(9, 3)
            },
            DeviceAction::PlaySound {} => Needs {
                lost_mode: true,
                ..supervised(10, 3)
            },
            DeviceAction::Restart {} | DeviceAction::ShutDown {} => supervised(10, 3),
            // settings.yaml: DeviceName is for supervised devices (Settings from iOS 5).
            DeviceAction::Rename { .. } => supervised(5, 0),
            // system.update.schedule.yaml: ProductVersion from iOS 11.3.
            DeviceAction::UpdateOs {
                product_version, ..
            } => Needs {
                below: OsVersion::parse(product_version),
                ..supervised(11, 3)
            },
            DeviceAction::Erase {
                preserve_data_plan,
                disallow_proximity_setup,
                return_to_service,
                ..
            } => {
                // device.erase.yaml: ReturnToService from iOS 17 (and without MDMProfileData,
                // which tafel does not send, only for supervised iPads from ADE),
                // DisallowProximitySetup from 11.3, PreserveDataPlan from 11.
                if return_to_service.is_some() {
                    supervised(17, 0)
                } else if *disallow_proximity_setup {
                    Needs {
                        min_os: OsVersion::new(11, 3, 0),
                        ..base
                    }
                } else if *preserve_data_plan {
                    Needs {
                        min_os: OsVersion::new(11, 0, 0),
                        ..base
                    }
                } else {
                    base
                }
            }
        }
    }

    /// Checks the action's own values (before any device is looked at).
    pub fn validate(&self) -> Result<(), Invalid> {
        let text = |field: &'static str, v: &Option<String>, max: usize| match v {
            Some(s) if s.trim().is_empty() => Err(Invalid::new(field, "must not be empty")),
            Some(s) if s.chars().count() > max => {
                Err(Invalid::new(field, format!("at most {max} characters")))
            }
            _ => Ok(()),
        };
        match self {
            DeviceAction::Lock {
                message,
                phone_number,
            } => {
                text("message", message, MAX_TEXT)?;
                text("phone_number", phone_number, MAX_PHONE)
            }
            DeviceAction::LostModeOn {
                message,
                phone_number,
                footnote,
            } => {
                text("message", message, MAX_TEXT)?;
                text("phone_number", phone_number, MAX_PHONE)?;
                text("footnote", footnote, MAX_TEXT)?;
                if message.is_none() && phone_number.is_none() {
                    return Err(Invalid::new(
                        "message",
                        "Lost Mode shows a message or a phone number: give one of them",
                    ));
                }
                Ok(())
            }
            DeviceAction::Rename { name } => crate::devices::check_device_name(name)
                .map(|_| ())
                .map_err(|_| Invalid::new("name", "1 to 100 characters")),
            DeviceAction::UpdateOs {
                product_version, ..
            } => match OsVersion::parse(product_version) {
                Some(_) => Ok(()),
                None => Err(Invalid::new(
                    "product_version",
                    "an iPadOS version such as 18.2 or 17.6.1",
                )),
            },
            DeviceAction::Erase {
                confirm,
                return_to_service,
                ..
            } => {
                if confirm.trim().is_empty() {
                    return Err(Invalid::new(
                        "confirm",
                        "an erase wipes the iPads: confirm with the serial number of the one iPad, or with the number of iPads",
                    ));
                }
                if let Some(wifi) = return_to_service
                    .as_ref()
                    .and_then(|r| r.wifi_profile.as_ref())
                {
                    wifi_profile(wifi)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The command for all devices; `None` for the actions that build their own
    /// (clear passcode: one per device with its token; rename; refresh inventory).
    pub fn command(&self) -> Result<Option<Command>, Invalid> {
        let trimmed = |s: &Option<String>| s.as_deref().map(|s| s.trim().to_owned());
        let command = match self {
            DeviceAction::Lock {
                message,
                phone_number,
            } => Command::device_lock(&protocol::DeviceLock {
                message: trimmed(message),
                phone_number: trimmed(phone_number),
                pin: None,
            }),
            DeviceAction::LostModeOn {
                message,
                phone_number,
                footnote,
            } => Command::enable_lost_mode(&protocol::LostMode {
                message: trimmed(message),
                phone_number: trimmed(phone_number),
                footnote: trimmed(footnote),
            })
            .map_err(|e| Invalid::new("message", e.to_string()))?,
            DeviceAction::LostModeOff {} => Command::disable_lost_mode(),
            DeviceAction::Locate {} => Command::device_location(),
            DeviceAction::PlaySound {} => Command::play_lost_mode_sound(),
            DeviceAction::Restart {} => {
                Command::restart_device(&protocol::RestartDevice::default())
            }
            DeviceAction::ShutDown {} => Command::shut_down_device(),
            DeviceAction::UpdateOs {
                product_version,
                install_action,
            } => Command::schedule_os_update(&protocol::OsUpdate {
                install_action: match install_action.unwrap_or(UpdateAction::Default) {
                    UpdateAction::Default => protocol::InstallAction::Default,
                    UpdateAction::DownloadOnly => protocol::InstallAction::DownloadOnly,
                    UpdateAction::InstallAsap => protocol::InstallAction::InstallAsap,
                },
                product_version: Some(product_version.trim().to_owned()),
                product_key: None,
            }),
            DeviceAction::Erase {
                preserve_data_plan,
                disallow_proximity_setup,
                return_to_service,
                ..
            } => Command::erase_device(&protocol::EraseDevice {
                preserve_data_plan: *preserve_data_plan,
                disallow_proximity_setup: *disallow_proximity_setup,
                pin: None,
                obliteration_behavior: None,
                return_to_service: return_to_service
                    .as_ref()
                    .map(|r| -> Result<_, Invalid> {
                        Ok(protocol::ReturnToService {
                            enabled: true,
                            wifi_profile_data: r
                                .wifi_profile
                                .as_deref()
                                .map(wifi_profile)
                                .transpose()?,
                            mdm_profile_data: None,
                        })
                    })
                    .transpose()?,
            }),
            DeviceAction::ClearPasscode {}
            | DeviceAction::Rename { .. }
            | DeviceAction::RefreshInventory {} => return Ok(None),
        };
        Ok(Some(command))
    }
}

/// A Wi-Fi profile given as base64: decoded and bounded.
fn wifi_profile(b64: &str) -> Result<Vec<u8>, Invalid> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim())
        .map_err(|_| Invalid::new("return_to_service.wifi_profile", "not base64"))?;
    if bytes.is_empty() || bytes.len() > MAX_WIFI_PROFILE {
        return Err(Invalid::new(
            "return_to_service.wifi_profile",
            format!("a .mobileconfig of at most {} KiB", MAX_WIFI_PROFILE / 1024),
        ));
    }
    Ok(bytes)
}

/// A value of the action that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field (inside `action`).
    pub field: &'static str,
    /// Why.
    pub message: String,
}

impl Invalid {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// An iOS/iPadOS version, compared part by part (`17.10` is after `17.9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OsVersion([u32; 3]);

impl OsVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        OsVersion([major, minor, patch])
    }

    /// Reads `18`, `18.1` or `18.1.1`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = [0u32; 3];
        for (n, p) in s.trim().split('.').enumerate() {
            if n == 3 || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[n] = p.parse().ok()?;
        }
        Some(OsVersion(parts))
    }
}

impl std::fmt::Display for OsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.0;
        if c == 0 {
            write!(f, "{a}.{b}")
        } else {
            write!(f, "{a}.{b}.{c}")
        }
    }
}

/// What an action needs of an iPad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The oldest iPadOS that knows the command (and the keys sent).
    pub min_os: OsVersion,
    /// Only supervised iPads do it.
    pub supervised: bool,
    /// tafel must hold the iPad's unlock token.
    pub unlock_token: bool,
    /// The iPad must be in Lost Mode.
    pub lost_mode: bool,
    /// The iPad must be on an older version than this (an update to it).
    pub below: Option<OsVersion>,
}

/// What tafel knows about one iPad, as far as the actions care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Enrolled and reachable (`active`).
    pub enrolled: bool,
    /// `OSVersion` as last reported.
    pub os_version: Option<String>,
    /// `IsSupervised` as last reported (`None`: no inventory yet).
    pub supervised: Option<bool>,
    /// tafel holds its unlock token.
    pub unlock_token: bool,
    /// It is in MDM Lost Mode.
    pub lost_mode: bool,
}

/// Why an action cannot go to an iPad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unsuitable {
    /// Not enrolled (never, erased, checked out or retired).
    NotEnrolled,
    /// No inventory yet says whether it is supervised.
    SupervisionUnknown,
    /// It is not supervised.
    NotSupervised,
    /// No inventory yet says its iPadOS version.
    OsVersionUnknown,
    /// Its iPadOS is older than the action needs.
    OsTooOld {
        /// What it runs.
        has: String,
        /// What the action needs.
        needs: String,
    },
    /// tafel holds no unlock token for it.
    NoUnlockToken,
    /// It is not in Lost Mode.
    NotInLostMode,
    /// It already runs that version or a later one.
    AlreadyUpToDate {
        /// What it runs.
        has: String,
    },
}

impl std::fmt::Display for Unsuitable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsuitable::NotEnrolled => write!(f, "not enrolled"),
            Unsuitable::SupervisionUnknown => write!(
                f,
                "supervision unknown (no inventory yet: refresh its inventory first)"
            ),
            Unsuitable::NotSupervised => write!(f, "not supervised"),
            Unsuitable::OsVersionUnknown => write!(
                f,
                "iPadOS version unknown (no inventory yet: refresh its inventory first)"
            ),
            Unsuitable::OsTooOld { has, needs } => {
                write!(f, "runs iPadOS {has}, needs {needs} or later")
            }
            Unsuitable::NoUnlockToken => write!(
                f,
                "tafel holds no unlock token (its enrollment did not send one): clear the passcode on the iPad, or erase it"
            ),
            Unsuitable::NotInLostMode => write!(
                f,
                "not in Lost Mode (or it has not confirmed it yet): turn Lost Mode on first"
            ),
            Unsuitable::AlreadyUpToDate { has } => write!(f, "already runs iPadOS {has}"),
        }
    }
}

/// Can an iPad with `facts` do what `needs` asks? The first reason it cannot.
pub fn check(needs: &Needs, facts: &DeviceFacts) -> Result<(), Unsuitable> {
    if !facts.enrolled {
        return Err(Unsuitable::NotEnrolled);
    }
    if needs.supervised {
        match facts.supervised {
            None => return Err(Unsuitable::SupervisionUnknown),
            Some(false) => return Err(Unsuitable::NotSupervised),
            Some(true) => {}
        }
    }
    // Every action's floor is at least iOS 4; only an iPad that has not reported a version
    // is refused for an action that needs more than that.
    let version = facts.os_version.as_deref().and_then(OsVersion::parse);
    let has_needs = needs.min_os > OsVersion::new(4, 0, 0) || needs.below.is_some();
    match version {
        None if has_needs => return Err(Unsuitable::OsVersionUnknown),
        Some(v) if v < needs.min_os => {
            return Err(Unsuitable::OsTooOld {
                has: v.to_string(),
                needs: needs.min_os.to_string(),
            })
        }
        Some(v) if needs.below.is_some_and(|b| v >= b) => {
            return Err(Unsuitable::AlreadyUpToDate { has: v.to_string() })
        }
        _ => {}
    }
    if needs.unlock_token && !facts.unlock_token {
        return Err(Unsuitable::NoUnlockToken);
    }
    if needs.lost_mode && !facts.lost_mode {
        return Err(Unsuitable::NotInLostMode);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipad(os: &str, supervised: bool) -> DeviceFacts {
        DeviceFacts {
            enrolled: true,
            os_version: Some(os.into()),
            supervised: Some(supervised),
            unlock_token: true,
            lost_mode: false,
        }
    }

    fn action(json: serde_json::Value) -> DeviceAction {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn versions_compare_part_by_part() {
        let v = |s| OsVersion::parse(s).unwrap();
        assert!(v("17.10") > v("17.9"));
        assert!(v("10.3") > v("9.3.5"));
        assert_eq!(v("18"), v("18.0.0"));
        assert_eq!(v("17.6.1").to_string(), "17.6.1");
        for bad in ["", "18.", "a.b", "1.2.3.4", "18,1"] {
            assert_eq!(OsVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_action_asks_what_apples_schema_asks() {
        let lost_on =
            action(serde_json::json!({"type": "lost_mode_on", "message": "Bitte abgeben"}));
        assert_eq!(check(&lost_on.needs(), &ipad("18.1", true)), Ok(()));
        assert_eq!(
            check(&lost_on.needs(), &ipad("18.1", false)),
            Err(Unsuitable::NotSupervised)
        );
        assert_eq!(
            check(&lost_on.needs(), &ipad("9.2", true)),
            Err(Unsuitable::OsTooOld {
                has: "9.2".into(),
                needs: "9.3".into()
            })
        );
        let locate = action(serde_json::json!({"type": "locate"}));
        assert_eq!(
            check(&locate.needs(), &ipad("18.1", true)),
            Err(Unsuitable::NotInLostMode)
        );
        let lost = DeviceFacts {
            lost_mode: true,
            ..ipad("18.1", true)
        };
        assert_eq!(check(&locate.needs(), &lost), Ok(()));
        let clear = action(serde_json::json!({"type": "clear_passcode"}));
        let no_token = DeviceFacts {
            unlock_token: false,
            ..ipad("18.1", false)
        };
        assert_eq!(
            check(&clear.needs(), &no_token),
            Err(Unsuitable::NoUnlockToken)
        );
        let lock = action(serde_json::json!({"type": "lock"}));
        assert_eq!(check(&lock.needs(), &ipad("5.1", false)), Ok(()));
        let update = action(serde_json::json!({"type": "update_os", "product_version": "18.1"}));
        assert_eq!(
            check(&update.needs(), &ipad("18.1", true)),
            Err(Unsuitable::AlreadyUpToDate { has: "18.1".into() })
        );
        assert_eq!(check(&update.needs(), &ipad("17.6.1", true)), Ok(()));
        let unknown = DeviceFacts {
            enrolled: true,
            ..DeviceFacts::default()
        };
        assert_eq!(
            check(
                &action(serde_json::json!({"type": "restart"})).needs(),
                &unknown
            ),
            Err(Unsuitable::SupervisionUnknown)
        );
        assert_eq!(
            check(&lock.needs(), &DeviceFacts::default()),
            Err(Unsuitable::NotEnrolled)
        );
    }

    #[test]
    fn actions_refuse_unknown_keys_and_wrong_values() {
        for bad in [
            serde_json::json!({"type": "lock", "pin": "123456"}),
            serde_json::json!({"type": "restart", "now": true}),
            serde_json::json!({"type": "self_destruct"}),
            serde_json::json!({"type": "erase"}),
        ] {
            assert!(
                serde_json::from_value::<DeviceAction>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let no_text = action(serde_json::json!({"type": "lost_mode_on", "footnote": "x"}));
        assert_eq!(no_text.validate().unwrap_err().field, "message");
        let version = action(serde_json::json!({"type": "update_os", "product_version": "neu"}));
        assert_eq!(version.validate().unwrap_err().field, "product_version");
        let erase = action(serde_json::json!({
            "type": "erase", "confirm": "2",
            "return_to_service": {"wifi_profile": "%%%"}
        }));
        assert_eq!(
            erase.validate().unwrap_err().field,
            "return_to_service.wifi_profile"
        );
    }

    #[test]
    fn commands_carry_the_schema_keys() {
        let erase = action(serde_json::json!({
            "type": "erase", "confirm": "1", "disallow_proximity_setup": true,
            "return_to_service": {"wifi_profile": "PHBsaXN0Lz4="}
        }));
        let c = erase.command().unwrap().unwrap();
        assert_eq!(c.request_type, "EraseDevice");
        let rts = c
            .fields
            .get("ReturnToService")
            .unwrap()
            .as_dictionary()
            .unwrap();
        assert_eq!(rts.get("Enabled"), Some(&plist::Value::Boolean(true)));
        assert_eq!(
            rts.get("WiFiProfileData").and_then(plist::Value::as_data),
            Some(&b"<plist/>"[..])
        );
        assert_eq!(
            erase.needs().min_os,
            OsVersion::new(17, 0, 0),
            "Return to Service needs iPadOS 17"
        );
        let lock = action(
            serde_json::json!({"type": "lock", "message": " Bitte abgeben ", "phone_number": "04551 1234"}),
        );
        let c = lock.command().unwrap().unwrap();
        assert_eq!(
            c.fields.get("Message").and_then(plist::Value::as_string),
            Some("Bitte abgeben")
        );
        for a in [
            serde_json::json!({"type": "clear_passcode"}),
            serde_json::json!({"type": "rename", "name": "iPad 7b-01"}),
            serde_json::json!({"type": "refresh_inventory"}),
        ] {
            assert_eq!(action(a).command().unwrap(), None);
        }
    }
}
