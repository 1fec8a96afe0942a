//! What every request handler shares.

use std::sync::Arc;

use crate::config::Settings;
use crate::db::Db;
use crate::pki::CertificateAuthority;

/// Shared application state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// The database pool.
    pub db: Db,
    /// Our certificate authority.
    pub ca: Arc<CertificateAuthority>,
}
