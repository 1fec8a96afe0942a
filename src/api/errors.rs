//! Every domain error turned into the API's answer, in one place: `?` in a handler
//! converts. The device door keeps its own mappings where a device must get another
//! status than a person (never 401; a refused identity is 403).

use crate::accounts::AccountError;
use crate::ade::service::AdeServiceError;
use crate::catalog::CatalogError;
use crate::enrollment::tokens::TokenError;
use crate::error::{ApiError, ErrorCode};
use crate::lessons::LessonError;
use crate::licences::LicenceError;
use crate::org::OrgError;
use crate::queue::QueueError;

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        match e {
            // Two requests raced past the name check: the unique index decides (schools,
            // classes, carts, slugs), and the loser hears what a sequential request would.
            OrgError::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => ApiError::conflict("an object of that name exists already"),
            OrgError::Db(e) => e.into(),
            OrgError::Invalid { field, message } => ApiError::invalid_field(field, message),
            OrgError::Duplicate(_) | OrgError::InUse(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<crate::devices::DeviceError> for ApiError {
    fn from(e: crate::devices::DeviceError) -> Self {
        use crate::devices::DeviceError;
        match e {
            DeviceError::Db(e) => e.into(),
            DeviceError::Invalid { field, message } => ApiError::invalid_field(field, message),
            DeviceError::Queue(e) => e.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Db(e) => e.into(),
            TokenError::Invalid { field, message } => ApiError::invalid_field(field, message),
            other => ApiError::conflict(other.to_string()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Db(e) => e.into(),
            AccountError::Random(e) => ApiError::internal(e),
            AccountError::Invalid { field, message } => ApiError::invalid_field(field, message),
            AccountError::Duplicate(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Db(e) => e.into(),
            CatalogError::Invalid { field, message } => ApiError::invalid_field(field, message),
            CatalogError::Profile(p) => ApiError::invalid_field("payload", p.to_string()),
            CatalogError::Duplicate(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<LessonError> for ApiError {
    fn from(e: LessonError) -> Self {
        match e {
            LessonError::Db(e) => e.into(),
            LessonError::Invalid { field, message } => ApiError::invalid_field(field, message),
            LessonError::Conflict(m) => ApiError::conflict(m),
        }
    }
}

impl From<crate::ade::enroll::EnrollError> for ApiError {
    fn from(e: crate::ade::enroll::EnrollError) -> Self {
        use crate::ade::enroll::{EnrollError, EnrollRefusal};
        match e {
            EnrollError::Db(e) => e.into(),
            EnrollError::Token(e) => ApiError::internal(e),
            EnrollError::Refused(e @ EnrollRefusal::NoPushCertificate(_)) => {
                ApiError::conflict(e.to_string())
            }
            EnrollError::Refused(e) => ApiError::forbidden(e.to_string()),
        }
    }
}

impl From<AdeServiceError> for ApiError {
    fn from(e: AdeServiceError) -> Self {
        match e {
            AdeServiceError::Db(e) => e.into(),
            AdeServiceError::Ade(e) if e.needs_admin() => {
                ApiError::invalid_field("p7m_base64", e.to_string())
            }
            AdeServiceError::Ade(
                e @ (crate::ade::AdeError::TokenFile(..) | crate::ade::AdeError::Openssl(..)),
            ) => ApiError::invalid_field(
                "p7m_base64",
                format!("not a server token for this MDM server's certificate: {e}"),
            ),
            AdeServiceError::Ade(e) => {
                ApiError::new(ErrorCode::Unavailable, format!("Apple School Manager: {e}"))
            }
            AdeServiceError::Secret(m) => ApiError::invalid_field("p7m_base64", m),
            AdeServiceError::State(m) => ApiError::conflict(m),
        }
    }
}

impl From<LicenceError> for ApiError {
    fn from(e: LicenceError) -> Self {
        match e {
            LicenceError::Db(e) => e.into(),
            LicenceError::Token(m) => ApiError::invalid_field("token_file", m),
            LicenceError::LocationTaken(m) => ApiError::conflict(m),
            LicenceError::Vpp(e) if e.is_token_problem() => {
                ApiError::invalid_field("token_file", format!("Apple refused the token: {e}"))
            }
            LicenceError::Vpp(e) => {
                ApiError::new(ErrorCode::Unavailable, format!("Apps and Books: {e}"))
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Db(e) => e.into(),
            QueueError::Unavailable(e) => e.into(),
            QueueError::NotYours(_) => ApiError::forbidden(e.to_string()),
            QueueError::Sealing(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<crate::push::store::UploadError> for ApiError {
    fn from(e: crate::push::store::UploadError) -> Self {
        use crate::push::store::UploadError;
        match e {
            UploadError::Db(e) => e.into(),
            UploadError::Seal(e) => ApiError::internal(e),
            UploadError::TopicChange { .. } => ApiError::conflict(e.to_string()),
            UploadError::Expired(_) => ApiError::invalid_field("certificate_pem", e.to_string()),
        }
    }
}

impl From<crate::push::requests::RequestError> for ApiError {
    fn from(e: crate::push::requests::RequestError) -> Self {
        use crate::push::requests::RequestError;
        match e {
            RequestError::Db(e) => e.into(),
            // Making a key, sealing or opening it: the server's fault, logged not sent.
            other => ApiError::internal(other),
        }
    }
}

/// A query or body word parsed into its enum; otherwise 400 naming the field and the
/// words it takes.
pub fn parse_word<T: crate::db::text::TextEnum>(field: &str, value: &str) -> Result<T, ApiError> {
    T::parse_text(value)
        .map_err(|_| ApiError::invalid_field(field, format!("one of {}", T::WORDS.join(", "))))
}
