//! Authorisation in one place: what a caller may see (scope) and change (role).
//!
//! Objects outside the caller's scope are answered 404 (their existence is not
//! revealed); objects in scope that the role may not change are 403.

use crate::accounts::{Principal, Role};
use crate::error::ApiError;

pub use crate::accounts::ListScope;

/// Where an object lives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    /// Its school authority.
    pub tenant_id: Option<&'a str>,
    /// Its school.
    pub school_id: Option<&'a str>,
}

impl<'a> Place<'a> {
    /// An object of a tenant (not of one school).
    pub fn tenant(tenant_id: &'a str) -> Self {
        Place {
            tenant_id: Some(tenant_id),
            school_id: None,
        }
    }

    /// An object of a school.
    pub fn school(tenant_id: &'a str, school_id: &'a str) -> Self {
        Place {
            tenant_id: Some(tenant_id),
            school_id: Some(school_id),
        }
    }
}

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read.
    View,
    /// Change school-level things (devices, tokens, commands).
    ManageSchool,
    /// Change authority-level things (schools, push certificates).
    ManageTenant,
    /// Change district-level things (authorities).
    ManageDistrict,
}

/// May `p` see objects at `place`?
pub fn can_see(p: &Principal, place: Place<'_>) -> bool {
    match p.role {
        Role::DistrictAdmin => true,
        Role::AuthorityAdmin => p.tenant_id.is_some() && p.tenant_id.as_deref() == place.tenant_id,
        Role::SchoolAdmin | Role::Teacher => match place.school_id {
            Some(school) => p.school_id.as_deref() == Some(school),
            // A tenant-level object (the authority itself) is visible to its members.
            None => p.tenant_id.is_some() && p.tenant_id.as_deref() == place.tenant_id,
        },
    }
}

/// May `p` see the catalog item at `item`? Items are shared downward: the district's
/// (no authority) with everyone, an authority's with its members, one rendered for a
/// school with that school (and the admins above it).
pub fn can_see_item(p: &Principal, item: Place<'_>) -> bool {
    match (item.tenant_id, item.school_id) {
        (None, _) => true,
        (Some(t), None) => can_see(p, Place::tenant(t)),
        (Some(t), Some(s)) => can_see(p, Place::school(t, s)),
    }
}

/// May the catalog item at `item` be assigned to a target at `target`? Only downward:
/// a district item anywhere, an authority's within it, a school's within that school.
pub fn item_reaches(item: Place<'_>, target: Place<'_>) -> bool {
    item.tenant_id.is_none_or(|t| Some(t) == target.tenant_id)
        && item.school_id.is_none_or(|s| Some(s) == target.school_id)
}

/// The catalog filter for `p`'s lists: which authority's and school's items besides
/// the district's (`None`: every item, for district admins).
pub fn item_scope(p: &Principal) -> Option<(String, Option<String>)> {
    match p.role {
        Role::DistrictAdmin => None,
        Role::AuthorityAdmin => Some((p.tenant_id.clone().unwrap_or_default(), None)),
        Role::SchoolAdmin | Role::Teacher => Some((
            p.tenant_id.clone().unwrap_or_default(),
            Some(p.school_id.clone().unwrap_or_default()),
        )),
    }
}

/// Admin work (raw commands, pushes, certificates, licences, the audit log, users,
/// assignments): every role but teachers, whose work goes through lesson requests and
/// their classes. `what` completes "teachers …" in the refusal.
pub fn require_admin(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.role == Role::Teacher {
        Err(ApiError::forbidden(format!("teachers {what}")))
    } else {
        Ok(())
    }
}

/// Does `p` see the whole district (no scope filter at all)?
pub fn sees_district(p: &Principal) -> bool {
    p.role == Role::DistrictAdmin
}

/// Is `p` a teacher (whose view is their own classes and requests)?
pub fn is_teacher(p: &Principal) -> bool {
    p.role == Role::Teacher
}

/// Is a device at (`tenant_id`, `school_id`) in `p`'s scope (devices by place, not
/// by class: for admin work)?
pub fn device_in_scope(p: &Principal, tenant_id: Option<&str>, school_id: Option<&str>) -> bool {
    match p.role {
        Role::DistrictAdmin => true,
        Role::AuthorityAdmin => p.tenant_id.is_some() && p.tenant_id.as_deref() == tenant_id,
        Role::SchoolAdmin | Role::Teacher => {
            p.school_id.is_some() && p.school_id.as_deref() == school_id
        }
    }
}

/// Whether `p` may create a user with `role` at `place`: district admins only by district
/// admins, everyone else by whoever manages the place.
pub fn may_create_user_at(p: &Principal, role: Role, place: Place<'_>) -> Result<(), ApiError> {
    let action = if role == Role::DistrictAdmin {
        Action::ManageDistrict
    } else {
        Action::ManageSchool
    };
    require(p, action, place)
}

/// What `p` may list (a missing id lists nothing: `"-"` matches no row).
pub fn list_scope(p: &Principal) -> ListScope<'_> {
    match p.role {
        Role::DistrictAdmin => ListScope::Everything,
        Role::AuthorityAdmin => ListScope::Authority(p.tenant_id.as_deref().unwrap_or("-")),
        Role::SchoolAdmin => ListScope::School(p.school_id.as_deref().unwrap_or("-")),
        Role::Teacher => ListScope::Teacher {
            school: p.school_id.as_deref().unwrap_or("-"),
            user: &p.user_id,
        },
    }
}

/// A role's rank: district admin > authority admin > school admin > teacher.
fn rank(role: Role) -> u8 {
    match role {
        Role::DistrictAdmin => 4,
        Role::AuthorityAdmin => 3,
        Role::SchoolAdmin => 2,
        Role::Teacher => 1,
    }
}

/// What a caller wants to do with another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// See them (their name, role, school).
    View,
    /// Act for them or on them: disable, issue or revoke their tokens, reset.
    Manage,
}

/// May `p` act on the user with `role` at `place`? Users see the people of their
/// scope; they act only on users strictly below them (a district admin on anyone), so
/// no one can act in a peer's name. Themselves: always. 404 outside scope, 403 above.
pub fn may_act_on_user(
    p: &Principal,
    user_id: &str,
    role: Role,
    place: Place<'_>,
    action: UserAction,
) -> Result<(), ApiError> {
    if p.user_id == user_id {
        return Ok(());
    }
    let visible = match role {
        // District admins belong to no place: only district admins see them.
        Role::DistrictAdmin => p.role == Role::DistrictAdmin,
        // An authority's admins are not a school's business.
        Role::AuthorityAdmin => {
            matches!(p.role, Role::DistrictAdmin | Role::AuthorityAdmin) && can_see(p, place)
        }
        Role::SchoolAdmin | Role::Teacher => can_see(p, place),
    };
    if !visible {
        return Err(ApiError::not_found("no such user"));
    }
    if p.role == Role::Teacher {
        return Err(ApiError::forbidden("teachers do not manage users"));
    }
    match action {
        UserAction::View => Ok(()),
        UserAction::Manage if p.role == Role::DistrictAdmin || rank(p.role) > rank(role) => Ok(()),
        UserAction::Manage => Err(ApiError::forbidden(format!(
            "a {} may act only on users below them",
            p.role.as_str().replace('_', " ")
        ))),
    }
}

/// May `p` create a user with `role`? Strictly below themselves (district admins: any).
pub fn may_create_user(p: &Principal, role: Role) -> bool {
    p.role == Role::DistrictAdmin || rank(p.role) > rank(role) && p.role != Role::Teacher
}

/// Checks that `p` may do `action` at `place`: 404 outside scope, 403 for the role.
pub fn require(p: &Principal, action: Action, place: Place<'_>) -> Result<(), ApiError> {
    // District-level actions have no object whose existence could leak.
    let district_level = place.tenant_id.is_none() && place.school_id.is_none();
    if !district_level && !can_see(p, place) {
        return Err(ApiError::not_found("not found"));
    }
    let allowed = match action {
        Action::View => true,
        Action::ManageSchool => matches!(
            p.role,
            Role::DistrictAdmin | Role::AuthorityAdmin | Role::SchoolAdmin
        ),
        Action::ManageTenant => matches!(p.role, Role::DistrictAdmin | Role::AuthorityAdmin),
        Action::ManageDistrict => p.role == Role::DistrictAdmin,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} may not do this",
            p.role.as_str().replace('_', " ")
        )))
    }
}
