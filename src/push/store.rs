//! Push certificates per school authority: upload (with the topic guard) and status.

use diesel::prelude::*;
use serde::Serialize;

use super::PushCertificate;
use crate::audit;
use crate::db::schema::{devices, push_certificates, tenants};
use crate::db::{now, DbConn};
use crate::secrets::SecretBox;

/// What admins see of a push certificate (never the key).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PushCertificateInfo {
    /// Authority.
    pub tenant_id: String,
    /// APNs topic (the certificate's UID).
    pub topic: String,
    /// Expiry.
    #[serde(with = "crate::time::utc")]
    pub not_after: chrono::NaiveDateTime,
    /// Days until expiry (negative: expired).
    pub expires_in_days: i64,
    /// Set when the certificate expires within the warning window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Uploaded at.
    #[serde(with = "crate::time::utc")]
    pub uploaded_at: chrono::NaiveDateTime,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// Sealing the key failed.
    #[error("cannot seal the key: {0}")]
    Seal(#[from] crate::pki::PkiError),
    /// The topic would change.
    #[error("the new certificate's topic {new} differs from the current topic {current}: every enrolled device of this authority would stop receiving pushes and must enroll again. Renew the existing certificate in Apple's Push Certificates Portal instead, or upload with force=true if that is really intended")]
    TopicChange {
        /// Current topic.
        current: String,
        /// The uploaded certificate's topic.
        new: String,
    },
    /// Expired certificate.
    #[error("the certificate expired on {0}")]
    Expired(chrono::NaiveDateTime),
}

fn info(
    tenant_id: String,
    topic: String,
    not_after: chrono::NaiveDateTime,
    uploaded_at: chrono::NaiveDateTime,
    warn_days: u32,
) -> PushCertificateInfo {
    let days = (not_after - now()).num_days();
    let warning = (days < i64::from(warn_days)).then(|| {
        format!("the push certificate expires in {days} days: renew it in Apple's Push Certificates Portal (same Apple ID) and upload it")
    });
    PushCertificateInfo {
        tenant_id,
        topic,
        not_after,
        expires_in_days: days,
        warning,
        uploaded_at,
    }
}

/// Stores (or replaces) an authority's push certificate and sets its topic; with
/// `clear_request`, the pending certificate request whose key it carries ends too.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, the API's upload core"
)]
pub fn upload(
    conn: &mut DbConn,
    secrets: &SecretBox,
    tenant_id: &str,
    cert: &PushCertificate,
    force: bool,
    clear_request: bool,
    actor: &str,
    warn_days: u32,
) -> Result<PushCertificateInfo, UploadError> {
    let not_after = cert.not_after.naive_utc();
    if not_after <= now() {
        return Err(UploadError::Expired(not_after));
    }
    let cert_pem =
        String::from_utf8_lossy(&cert.cert.to_pem().map_err(crate::pki::PkiError::from)?)
            .into_owned();
    let key_pem = cert
        .key
        .private_key_to_pem_pkcs8()
        .map_err(crate::pki::PkiError::from)?;
    let sealed = secrets.seal_for(
        &crate::secrets::binding(crate::secrets::places::PUSH_KEY, tenant_id),
        &key_pem,
    )?;
    conn.write_tx(|conn| {
        let current: Option<String> = tenants::table
            .find(tenant_id)
            .select(tenants::push_topic)
            .first(conn)?;
        if let Some(current) = &current {
            if current != &cert.topic {
                // Devices enrolled under the old topic only listen to it.
                let enrolled: i64 = devices::table
                    .filter(devices::tenant_id.eq(tenant_id))
                    .filter(devices::topic.eq(current))
                    .count()
                    .get_result(conn)?;
                if enrolled > 0 && !force {
                    return Err(UploadError::TopicChange {
                        current: current.clone(),
                        new: cert.topic.clone(),
                    });
                }
            }
        }
        let at = now();
        let before: Option<(String, chrono::NaiveDateTime)> = push_certificates::table
            .find(tenant_id)
            .select((push_certificates::topic, push_certificates::not_after))
            .first(conn)
            .optional()?;
        diesel::delete(push_certificates::table.find(tenant_id)).execute(conn)?;
        diesel::insert_into(push_certificates::table)
            .values((
                push_certificates::tenant_id.eq(tenant_id),
                push_certificates::topic.eq(&cert.topic),
                push_certificates::not_after.eq(not_after),
                push_certificates::cert_pem.eq(&cert_pem),
                push_certificates::key_sealed.eq(&sealed),
                push_certificates::uploaded_by.eq(actor),
                push_certificates::uploaded_at.eq(at),
            ))
            .execute(conn)?;
        if clear_request {
            super::requests::clear(conn, tenant_id)?;
        }
        diesel::update(tenants::table.find(tenant_id))
            .set((
                tenants::push_topic.eq(&cert.topic),
                tenants::updated_at.eq(at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "upload", "push_certificate")
                .object(tenant_id)
                .scope(Some(tenant_id), None)
                .summary(serde_json::json!({
                    "before": before.map(|(t, e)| serde_json::json!({"topic": t, "not_after": e})),
                    "after": {"topic": cert.topic, "not_after": not_after},
                    "forced": force,
                    "key": if clear_request { "pending certificate request" } else { "uploaded" },
                })),
        )?;
        Ok(info(
            tenant_id.to_owned(),
            cert.topic.clone(),
            not_after,
            at,
            warn_days,
        ))
    })
}

/// The stored certificate's status, if any.
pub fn status(
    conn: &mut DbConn,
    tenant_id: &str,
    warn_days: u32,
) -> QueryResult<Option<PushCertificateInfo>> {
    let row: Option<(String, chrono::NaiveDateTime, chrono::NaiveDateTime)> =
        push_certificates::table
            .find(tenant_id)
            .select((
                push_certificates::topic,
                push_certificates::not_after,
                push_certificates::uploaded_at,
            ))
            .first(conn)
            .optional()?;
    Ok(row.map(|(topic, end, up)| info(tenant_id.to_owned(), topic, end, up, warn_days)))
}
