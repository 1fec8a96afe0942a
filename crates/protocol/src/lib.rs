//! Apple MDM wire format: parse and build the plists of the check-in and
//! command channels. Pure data: no I/O, no HTTP, no database.
//!
//! Rules cite Apple's schema under `mdm/` (checkin, commands, errors). Error
//! policy: every parser returns [`ProtocolError`] naming the offending key;
//! nothing here panics on device input.

pub mod bounded;
mod checkin;
mod checkin_reply;
mod command;
mod command_builders;
mod connect;
mod device_error;
pub(crate) mod dict;
mod enrollment;
mod error;
pub mod hostile;
mod ids;
mod json;
mod results;

pub use checkin::{
    Authenticate, CheckOut, CheckinMessage, DeclarativeEndpoint, DeclarativeManagementRequest,
    GetBootstrapToken, GetToken, SetBootstrapToken, TokenParameters, TokenUpdate, UserAuthenticate,
};
pub use checkin_reply::{GetBootstrapTokenResponse, GetTokenResponse};
pub use command::Command;
pub use command_builders::{
    AppSource, DeviceLock, EraseDevice, InstallAction, InstallApplication, LostMode,
    ObliterationBehavior, OsUpdate, PurchaseMethod, RestartDevice, ReturnToService,
    INVENTORY_QUERIES,
};
pub use connect::{ConnectReport, ErrorChainItem, Status};
pub use device_error::DeviceErrorResponse;
pub use dict::parse_body as parse_dict;
pub use enrollment::EnrollmentIds;
pub use error::ProtocolError;
pub use ids::{CommandUuid, PushMagic, PushToken, Udid};
pub use json::{json_to_plist, plist_dict_to_json, plist_to_json, DATA_KEY, DATE_KEY};
pub use results::{
    DeviceInformationResult, InstallApplicationResult, InstalledApp,
    InstalledApplicationListResult, ManagedAppStatus, ManagedApplicationListResult,
    ManagementStatus, ProfileListItem, ProfileListResult, ProfilePayload, SecurityInfoResult,
};
