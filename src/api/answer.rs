//! The answers handlers send that are not a domain type of their own: lists, pages and
//! small acknowledgements. Handlers build these values (no `json!` replies), and the
//! OpenAPI annotations name the same types, so a changed answer changes its document
//! (the `openapi` snapshot test shows it).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::{TokenInfo, User};
use crate::assign::views::{ItemState, Rollout};
use crate::assign::AssignmentView;
use crate::catalog::profiles::Variable;
use crate::devices::DeviceView;
use crate::org::classes::{Class, DeviceGroup};
use crate::org::import::ImportReport;
use crate::org::Tenant;

/// A complete list of one kind of object: `{"items": [...]}`.
macro_rules! list {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            /// All items.
            pub items: Vec<$item>,
        }

        impl From<Vec<$item>> for $name {
            fn from(items: Vec<$item>) -> Self {
                Self { items }
            }
        }
    };
}

/// One page of a cursor-paged list: `{"items": [...], "next_cursor": …}`.
macro_rules! page {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            /// The items of this page.
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl From<crate::paging::Page<$item>> for $name {
            fn from(page: crate::paging::Page<$item>) -> Self {
                Self {
                    items: page.items,
                    next_cursor: page.next_cursor,
                }
            }
        }
    };
}

list!(
    /// School authorities.
    TenantList,
    Tenant
);
list!(
    /// Schools.
    SchoolList,
    crate::org::SchoolView
);
list!(
    /// Enrollment tokens with their URLs.
    EnrollmentTokenList,
    super::org::TokenView
);
page!(
    /// One page of users.
    UserList,
    crate::accounts::UserView
);
list!(
    /// API tokens (never their secrets).
    ApiTokenList,
    TokenInfo
);
list!(
    /// Classes.
    ClassList,
    Class
);
list!(
    /// Device groups (tablet carts).
    DeviceGroupList,
    DeviceGroup
);
page!(
    /// One page of catalog apps.
    AppList,
    crate::catalog::AppView
);
page!(
    /// One page of catalog profiles (without their payloads).
    CatalogProfileList,
    crate::catalog::ProfileView
);
list!(
    /// Built-in profile templates.
    TemplateList,
    TemplateInfo
);
page!(
    /// One page of assignments.
    AssignmentList,
    AssignmentView
);
list!(
    /// A device's assigned items, desired vs actual.
    DeviceStateList,
    ItemState
);
list!(
    /// What happened to each device's push.
    PushNowResult,
    PushNowItem
);
page!(
    /// One page of devices.
    DevicePage,
    DeviceView
);
page!(
    /// One page of a device's command queue.
    CommandPage,
    super::commands::EntryView
);
page!(
    /// One page of lesson requests.
    RequestPage,
    crate::lessons::RequestView
);
page!(
    /// One page of the audit log.
    AuditPage,
    super::audit::EntryView
);

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, or `degraded` when something needs attention soon (`reasons`).
    #[schema(example = "ready")]
    pub status: String,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub database: String,
    /// What needs attention (certificates expiring within 60 days), empty when ready.
    pub reasons: Vec<String>,
}

/// Answer to `POST /login`.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// API token (`tafel_…`) for `Authorization: Bearer`.
    pub token: String,
    /// Who logged in.
    pub user: User,
    /// Hours the token is valid.
    pub expires_in_hours: i64,
    /// It was a one-time password: the token is good for `GET /me` and
    /// `PUT /me/password` only, until the user has chosen their own password.
    pub password_must_change: bool,
}

/// Answer to `POST /users/{id}/tokens`.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiToken {
    /// The secret (`tafel_…`); shown only in this answer.
    pub token: String,
    /// What is stored and listed.
    pub info: TokenInfo,
    /// A reminder that the token is shown only now.
    pub note: String,
}

/// A revoked token (API or enrollment).
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Id of the revoked token.
    pub revoked: String,
}

/// A disabled user.
#[derive(Serialize, ToSchema)]
pub struct Disabled {
    /// Id of the disabled user.
    pub disabled: String,
}

/// Answer to a membership change.
#[derive(Serialize, ToSchema)]
pub struct Changed {
    /// Memberships added or removed.
    pub changed: usize,
}

/// Answer to a cancel.
#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    /// Queue entries cancelled.
    pub cancelled: usize,
}

/// Answer to a calendar upload.
#[derive(Serialize, ToSchema)]
pub struct ClosuresAdded {
    /// Closures (holidays, closed days) stored.
    pub closures: usize,
}

/// Answer to `POST /lesson-requests/{id}/cancel`.
#[derive(Serialize, ToSchema)]
pub struct RequestCancelled {
    /// Always `true`: the request is withdrawn.
    pub cancelled: bool,
}

/// Answer to `POST /reconcile`.
#[derive(Serialize, ToSchema)]
pub struct ReconcileRequested {
    /// Always `true`: a reconcile run was requested.
    pub requested: bool,
}

/// The classes a teacher teaches and the device groups of their school.
#[derive(Serialize, ToSchema)]
pub struct MyClasses {
    /// Classes the caller teaches.
    pub classes: Vec<Class>,
    /// Device groups (carts) of the caller's school.
    pub groups: Vec<DeviceGroup>,
}

/// A class with its teachers and device count.
#[derive(Serialize, ToSchema)]
pub struct ClassDetail {
    /// The class.
    pub class: Class,
    /// Its teachers (user ids).
    pub teacher_ids: Vec<String>,
    /// Its teachers with their names, in the order of `teacher_ids`.
    pub teachers: Vec<crate::names::Named>,
    /// Devices in it.
    pub devices: i64,
}

/// A device group with its device count.
#[derive(Serialize, ToSchema)]
pub struct GroupDetail {
    /// The group.
    pub group: DeviceGroup,
    /// Devices in it.
    pub devices: i64,
}

/// An assignment with its rollout.
#[derive(Serialize, ToSchema)]
pub struct AssignmentDetail {
    /// The assignment.
    pub assignment: AssignmentView,
    /// How far it has reached its devices.
    pub rollout: Rollout,
}

/// A built-in profile template.
#[derive(Serialize, ToSchema)]
pub struct TemplateInfo {
    /// Name to pass as `template`.
    pub name: String,
    /// What the profile does.
    pub description: String,
    /// Values it takes.
    pub variables: Vec<Variable>,
    /// Why each setting is what it is, keyed by plist key.
    pub notes: BTreeMap<String, String>,
}

/// What happened to one device's push.
#[derive(Serialize, ToSchema)]
pub struct PushNowItem {
    /// The device.
    pub udid: Option<String>,
    /// What became of the push.
    pub result: crate::push::service::PushState,
    /// Details from APNs, or why the iPad was not pushed.
    pub reason: Option<String>,
}

/// A rejected CSV import (nothing was imported).
#[derive(Serialize, ToSchema)]
pub struct ImportRejected {
    /// Always `rows_rejected`.
    #[schema(example = "rows_rejected")]
    pub error: String,
    /// How many rows were rejected.
    pub message: String,
    /// The rows and what is wrong with each.
    pub report: ImportReport,
}

page!(
    /// A page of failed installs.
    FailedInstallPage,
    crate::reports::FailedInstall
);
page!(
    /// A page of iPads waiting for a licence.
    MissingLicencePage,
    crate::reports::MissingLicence
);
page!(
    /// A page of certificates and tokens ending.
    EndingPage,
    crate::reports::Ending
);
