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
    /// Device certificates whose chain was checked, for the next signed message.
    pub known: Arc<crate::pki::known::KnownCertificates>,
    /// Signs enrollment and configuration profiles.
    pub signer: Arc<ProfileSigner>,
    /// Seals secrets stored in the database.
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// Wakes devices over APNs.
    pub push: Arc<crate::push::PushService>,
    /// Turns assignments into commands.
    pub reconciler: Arc<crate::assign::service::Reconciler>,
    /// Device licences from Apps and Books.
    pub licences: Arc<crate::licences::Licences>,
    /// Automated Device Enrollment (Apple School Manager).
    pub ade: Arc<crate::ade::service::Ade>,
    /// Sends webhook notifications.
    pub notifier: Arc<crate::notify::Notifier>,
    /// The port of the people's listener, when it is separate from the devices'.
    pub admin_port: Option<u16>,
    /// Failed attempts per key (logins, enrollment links).
    pub throttle: Arc<crate::throttle::Throttle>,
    /// Password checks run one at a time per node.
    pub login_slots: Arc<tokio::sync::Semaphore>,
    /// tafel's own certificates as loaded (root, issuing CA, SCEP RA, server, signing),
    /// for expiry reports.
    pub certificates: Arc<Vec<(&'static str, openssl::x509::X509)>>,
}

/// The certificate and key that sign profiles.
pub struct ProfileSigner {
    /// Certificate (issued by our CA).
    pub cert: openssl::x509::X509,
    /// Key.
    pub key: openssl::pkey::PKey<openssl::pkey::Private>,
}

impl AppState {
    /// A catalog profile as it goes to an iPad: its sealed payload opened and signed.
    pub fn deliver_profile(&self, profile: &crate::catalog::Profile) -> Result<Vec<u8>, String> {
        self.signer.deliver(profile, &self.secrets, &self.ca)
    }
}

impl ProfileSigner {
    /// Opens a catalog profile's sealed payload and signs it for delivery.
    pub fn deliver(
        &self,
        profile: &crate::catalog::Profile,
        secrets: &crate::secrets::SecretBox,
        ca: &CertificateAuthority,
    ) -> Result<Vec<u8>, String> {
        let binding = crate::secrets::binding(crate::secrets::places::PROFILE, &profile.id);
        let plain = secrets
            .open_for(&binding, &profile.payload)
            .map_err(|e| format!("profile {}: {e}", profile.id))?;
        self.sign(&plain, ca).map_err(|e| e.to_string())
    }

    /// Signs a profile (CMS SignedData with the content, DER), chain included.
    pub fn sign(
        &self,
        content: &[u8],
        ca: &CertificateAuthority,
    ) -> Result<Vec<u8>, crate::pki::PkiError> {
        let mut chain = ca.intermediates();
        chain.push(ca.anchor().to_owned());
        crate::pki::cms::sign_attached(content, &self.cert, &self.key, &chain)
    }
}
