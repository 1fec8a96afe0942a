//! Push certificate requests per school authority: the key tafel made (sealed, never
//! shown) and the certificate signing request waiting for the certificate Apple issues
//! for it. One pending request per authority; a new one replaces it.

use diesel::prelude::*;
use serde::Serialize;

use super::request::CertificateRequest;
use super::PushError;
use crate::audit;
use crate::db::schema::push_certificate_requests as requests;
use crate::db::{now, DbConn};
use crate::secrets::{binding, places, SecretBox};

/// A pending push certificate request (never the key).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PushCertificateRequestInfo {
    /// Authority.
    pub tenant_id: String,
    /// The request's subject, e.g. `CN=tafel Landkreis Beispiel, O=Landkreis Beispiel, C=DE`.
    pub subject: String,
    /// The certificate signing request (PKCS #10, PEM): for the MDM vendor, who signs
    /// it for Apple's Push Certificates Portal.
    pub csr_pem: String,
    /// Who made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Made at.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// Making the key or the request failed.
    #[error("cannot make the certificate request: {0}")]
    Make(#[from] PushError),
    /// Sealing the key failed.
    #[error("cannot seal the key: {0}")]
    Seal(#[from] crate::pki::PkiError),
    /// The sealed key does not open (another secrets.key?).
    #[error(transparent)]
    Open(#[from] crate::secrets::OpenError),
}

/// A request waiting for Apple's certificate, with its key (PEM) opened.
pub struct PendingKey {
    /// The private key, PKCS #8 PEM.
    pub key_pem: Vec<u8>,
    /// When the request was made.
    pub created_at: chrono::NaiveDateTime,
}

impl std::fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKey")
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn subject_text(pem: &str) -> String {
    let Ok(csr) = super::request::parse_csr(pem.as_bytes()) else {
        return String::new();
    };
    csr.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e
                .data()
                .to_string()
                .map(|s| s.to_string())
                .unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes a key and a request for the authority `tenant_id` named `name`, keeping the key
/// sealed and replacing a pending request.
pub fn create(
    conn: &mut DbConn,
    secrets: &SecretBox,
    tenant_id: &str,
    name: &str,
    actor: &str,
) -> Result<PushCertificateRequestInfo, RequestError> {
    let made = CertificateRequest::generate(name)?;
    let csr_pem = made.csr_pem()?;
    let key_pem = made
        .key
        .private_key_to_pem_pkcs8()
        .map_err(PushError::from)?;
    let sealed = secrets.seal_for(&binding(places::PUSH_REQUEST_KEY, tenant_id), &key_pem)?;
    let at = now();
    conn.write_tx(|conn| -> Result<(), RequestError> {
        let replaced = diesel::delete(requests::table.find(tenant_id)).execute(conn)? > 0;
        diesel::insert_into(requests::table)
            .values((
                requests::tenant_id.eq(tenant_id),
                requests::key_sealed.eq(&sealed),
                requests::csr_pem.eq(&csr_pem),
                requests::created_by.eq(actor),
                requests::created_at.eq(at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "request", "push_certificate")
                .object(tenant_id)
                .scope(Some(tenant_id), None)
                .summary(serde_json::json!({"replaced_pending_request": replaced})),
        )?;
        Ok(())
    })?;
    Ok(PushCertificateRequestInfo {
        tenant_id: tenant_id.to_owned(),
        subject: subject_text(&csr_pem),
        csr_pem,
        created_by: Some(actor.to_owned()),
        created_at: at,
    })
}

/// The authority's pending request, if any.
pub fn pending(
    conn: &mut DbConn,
    tenant_id: &str,
) -> QueryResult<Option<PushCertificateRequestInfo>> {
    let row: Option<(String, Option<String>, chrono::NaiveDateTime)> = requests::table
        .find(tenant_id)
        .select((
            requests::csr_pem,
            requests::created_by,
            requests::created_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(csr_pem, created_by, created_at)| PushCertificateRequestInfo {
            tenant_id: tenant_id.to_owned(),
            subject: subject_text(&csr_pem),
            csr_pem,
            created_by,
            created_at,
        },
    ))
}

/// The pending request's key, opened, if there is a request.
pub fn pending_key(
    conn: &mut DbConn,
    secrets: &SecretBox,
    tenant_id: &str,
) -> Result<Option<PendingKey>, RequestError> {
    let row: Option<(Vec<u8>, chrono::NaiveDateTime)> = requests::table
        .find(tenant_id)
        .select((requests::key_sealed, requests::created_at))
        .first(conn)
        .optional()?;
    let Some((sealed, created_at)) = row else {
        return Ok(None);
    };
    let key_pem = secrets.open_for(&binding(places::PUSH_REQUEST_KEY, tenant_id), &sealed)?;
    Ok(Some(PendingKey {
        key_pem,
        created_at,
    }))
}

/// Removes the pending request (its certificate has arrived). Call inside the upload's
/// transaction.
pub fn clear(conn: &mut DbConn, tenant_id: &str) -> QueryResult<usize> {
    diesel::delete(requests::table.find(tenant_id)).execute(conn)
}
