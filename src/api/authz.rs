//! Authorisation in one place: what a caller may see (scope) and change (role).
//!
//! Objects outside the caller's scope are answered 404 (their existence is not
//! revealed); objects in scope that the role may not change are 403.

use crate::accounts::{Principal, Role};
use crate::error::ApiError;

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
