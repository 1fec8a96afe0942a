//! Server tokens and device sync for Automated Device Enrollment, per school authority.
//!
//! 1. tafel makes a key pair and certificate for the authority; the admin uploads the
//!    certificate (PEM) to Apple School Manager, which returns a server token (`.p7m`)
//!    encrypted to it. 2. The admin uploads the `.p7m`; tafel decrypts it, seals the
//!    OAuth credentials and checks them with `GET /account`. A renewed token replaces
//!    the credentials and keeps devices. 3. A sync (incremental with the stored cursor,
//!    a full fetch when there is none or it expired) records the devices Apple assigned
//!    to tafel; devices not yet known appear in tafel before they enroll (by serial);
//!    devices Apple deleted are marked, not dropped.

use std::sync::Arc;

use diesel::prelude::*;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde::Serialize;

use super::client::{AdeClient, OpType};
use super::token::{decrypt_server_token, new_token_keypair, OAuthTokens};
use crate::audit;
use crate::db::schema::{ade_devices, ade_tokens, devices};
use crate::db::{new_id, now, Db, DbError};
use crate::secrets::SecretBox;

/// Server token states.
pub mod status {
    /// Key pair made; waiting for the `.p7m` from Apple School Manager.
    pub const AWAITING_TOKEN: &str = "awaiting_token";
    /// Credentials stored and accepted by Apple.
    pub const ACTIVE: &str = "active";
    /// Apple refused the credentials (expired, revoked, terms not accepted).
    pub const FAILED: &str = "failed";
}

/// A server token as admins see it (never secrets).
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = ade_tokens)]
pub struct ServerToken {
    /// Id.
    pub id: String,
    /// Authority.
    pub tenant_id: String,
    /// The certificate to upload to Apple School Manager (PEM).
    pub cert_pem: String,
    /// Expiry of the OAuth credentials.
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// MDM server name in Apple School Manager.
    pub server_name: Option<String>,
    /// `awaiting_token`, `active`, `failed`.
    pub status: String,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Last sync.
    pub last_sync_at: Option<chrono::NaiveDateTime>,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Devices Apple reported.
    pub devices: usize,
    /// Devices new to tafel (pre-registered by serial).
    pub new_devices: usize,
    /// Devices Apple deleted (marked).
    pub deleted: usize,
    /// Whether a full fetch was needed.
    pub full: bool,
    /// API calls made.
    pub api_calls: u64,
}

/// Why an ADE operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdeServiceError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Apple's service or the token file.
    #[error(transparent)]
    Ade(#[from] super::AdeError),
    /// Sealing or opening secrets.
    #[error("{0}")]
    Secret(String),
    /// Not in a state for this.
    #[error("{0}")]
    State(String),
}

impl From<diesel::result::Error> for AdeServiceError {
    fn from(e: diesel::result::Error) -> Self {
        AdeServiceError::Db(DbError::Query(e))
    }
}

/// The ADE service.
pub struct Ade {
    db: Db,
    secrets: Arc<SecretBox>,
    base_url: String,
}

impl Ade {
    /// A service talking to `base_url` (Apple's by default).
    pub fn new(db: Db, secrets: Arc<SecretBox>, base_url: &str) -> Ade {
        Ade {
            db,
            secrets,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Step 1: a key pair and certificate for the authority.
    pub async fn create(
        &self,
        tenant_id: &str,
        actor: &str,
    ) -> Result<ServerToken, AdeServiceError> {
        let (cert, key) = new_token_keypair(&format!("tafel ADE {tenant_id}"))?;
        let cert_pem = String::from_utf8_lossy(
            &cert
                .to_pem()
                .map_err(|e| AdeServiceError::Secret(e.to_string()))?,
        )
        .into_owned();
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let sealed = self
            .secrets
            .seal(&key_pem)
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let token = ServerToken {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            cert_pem,
            expires_at: None,
            server_name: None,
            status: status::AWAITING_TOKEN.into(),
            last_error: None,
            last_sync_at: None,
            created_at: now(),
        };
        let (t, actor) = (token.clone(), actor.to_owned());
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| {
                    diesel::insert_into(ade_tokens::table)
                        .values((
                            ade_tokens::id.eq(&t.id),
                            ade_tokens::tenant_id.eq(&t.tenant_id),
                            ade_tokens::cert_pem.eq(&t.cert_pem),
                            ade_tokens::key_sealed.eq(&sealed),
                            ade_tokens::status.eq(&t.status),
                            ade_tokens::created_at.eq(t.created_at),
                        ))
                        .execute(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new(&actor, "create", "ade_token")
                            .object(&t.id)
                            .scope(Some(&t.tenant_id), None),
                    )?;
                    Ok(())
                })
            })
            .await?;
        Ok(token)
    }

    /// Step 2: the `.p7m` from Apple School Manager (also for renewals).
    pub async fn upload(
        &self,
        token_id: &str,
        p7m: &[u8],
        actor: &str,
    ) -> Result<ServerToken, AdeServiceError> {
        let id = token_id.to_owned();
        let (cert_pem, key_sealed): (String, Vec<u8>) = self
            .db
            .run(move |conn| -> Result<_, DbError> {
                Ok(ade_tokens::table
                    .find(&id)
                    .select((ade_tokens::cert_pem, ade_tokens::key_sealed))
                    .first(conn)?)
            })
            .await?;
        let cert = X509::from_pem(cert_pem.as_bytes())
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let key_pem = self
            .secrets
            .open(&key_sealed)
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let key = PKey::private_key_from_pem(&key_pem)
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let tokens = decrypt_server_token(p7m, &cert, &key)?;
        let client = AdeClient::new(&self.base_url, tokens.clone(), "3")?;
        let account = client.account().await?;
        let sealed = self
            .secrets
            .seal(
                serde_json::to_string(&tokens)
                    .map_err(|e| AdeServiceError::Secret(e.to_string()))?
                    .as_bytes(),
            )
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let (id, actor) = (token_id.to_owned(), actor.to_owned());
        let expiry = tokens.access_token_expiry.naive_utc();
        let server_name = account.server_name.clone();
        self.db
            .run(move |conn| -> Result<ServerToken, DbError> {
                conn.write_tx(|conn| {
                    diesel::update(ade_tokens::table.find(&id))
                        .set((
                            ade_tokens::tokens_sealed.eq(Some(&sealed)),
                            ade_tokens::expires_at.eq(Some(expiry)),
                            ade_tokens::server_name.eq(Some(&server_name)),
                            ade_tokens::status.eq(status::ACTIVE),
                            ade_tokens::last_error.eq(None::<String>),
                        ))
                        .execute(conn)?;
                    let t: ServerToken = ade_tokens::table.find(&id).select(ServerToken::as_select()).first(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new(&actor, "upload", "ade_token")
                            .object(&id)
                            .scope(Some(&t.tenant_id), None)
                            .summary(serde_json::json!({"after": {"server_name": server_name, "expires_at": expiry}})),
                    )?;
                    Ok(t)
                })
            })
            .await
            .map_err(AdeServiceError::from)
    }

    /// Step 3: sync every active token's devices; returns one report per token.
    pub async fn sync(&self) -> Result<Vec<SyncReport>, AdeServiceError> {
        let rows: Vec<(String, String, Vec<u8>, Option<String>)> = self
            .db
            .run(|conn| -> Result<_, DbError> {
                Ok(ade_tokens::table
                    .filter(ade_tokens::status.eq(status::ACTIVE))
                    .filter(ade_tokens::tokens_sealed.is_not_null())
                    .select((
                        ade_tokens::id,
                        ade_tokens::tenant_id,
                        ade_tokens::tokens_sealed.assume_not_null(),
                        ade_tokens::sync_cursor,
                    ))
                    .load(conn)?)
            })
            .await?;
        let mut reports = Vec::new();
        for (id, tenant, sealed, cursor) in rows {
            let tokens: OAuthTokens = match self
                .secrets
                .open(&sealed)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(t) => t,
                None => continue,
            };
            let client = AdeClient::new(&self.base_url, tokens, "3")?;
            match client.sync_all(cursor).await {
                Ok(result) => {
                    let mut report = self.record(&id, &tenant, result).await?;
                    report.api_calls = client.requests_made();
                    reports.push(report);
                }
                Err(e) => {
                    tracing::warn!(token = %id, error = %e, "ADE sync failed");
                    if e.needs_admin() {
                        let (id, msg) = (id.clone(), e.to_string());
                        self.db
                            .run(move |conn| -> Result<usize, DbError> {
                                Ok(diesel::update(ade_tokens::table.find(&id))
                                    .set((
                                        ade_tokens::status.eq(status::FAILED),
                                        ade_tokens::last_error.eq(msg),
                                    ))
                                    .execute(conn)?)
                            })
                            .await?;
                    }
                }
            }
        }
        Ok(reports)
    }

    async fn record(
        &self,
        token_id: &str,
        tenant: &str,
        result: super::client::SyncResult,
    ) -> Result<SyncReport, AdeServiceError> {
        let (token_id, tenant) = (token_id.to_owned(), tenant.to_owned());
        Ok(self
            .db
            .run(move |conn| -> Result<SyncReport, DbError> {
                conn.write_tx(|conn| {
                    let at = now();
                    let mut report = SyncReport {
                        devices: result.devices.len(),
                        full: result.full,
                        ..SyncReport::default()
                    };
                    for d in &result.devices {
                        let deleted = d.op_type == Some(OpType::Deleted);
                        diesel::delete(ade_devices::table.find(&d.serial_number)).execute(conn)?;
                        diesel::insert_into(ade_devices::table)
                            .values((
                                ade_devices::serial_number.eq(&d.serial_number),
                                ade_devices::token_id.eq(&token_id),
                                ade_devices::tenant_id.eq(&tenant),
                                ade_devices::model.eq(&d.model),
                                ade_devices::description.eq(&d.description),
                                ade_devices::color.eq(&d.color),
                                ade_devices::asset_tag.eq(&d.asset_tag),
                                ade_devices::profile_status
                                    .eq(format!("{:?}", d.profile_status).to_lowercase()),
                                ade_devices::profile_uuid.eq(&d.profile_uuid),
                                ade_devices::assigned_at
                                    .eq(d.device_assigned_date.map(|t| t.naive_utc())),
                                ade_devices::deleted_at.eq(deleted.then_some(at)),
                                ade_devices::updated_at.eq(at),
                            ))
                            .execute(conn)?;
                        if deleted {
                            report.deleted += 1;
                            continue;
                        }
                        // Known to tafel before it enrolls: a pending device of the authority.
                        let known: i64 = devices::table
                            .filter(devices::serial_number.eq(&d.serial_number))
                            .count()
                            .get_result(conn)?;
                        if known == 0 {
                            diesel::insert_into(devices::table)
                                .values((
                                    devices::id.eq(new_id()),
                                    devices::serial_number.eq(&d.serial_number),
                                    devices::tenant_id.eq(&tenant),
                                    devices::model.eq(&d.model),
                                    devices::name.eq(&d.description),
                                    devices::enrollment_status
                                        .eq(crate::enrollment::status::PENDING),
                                    devices::awaiting_configuration.eq(false),
                                    devices::created_at.eq(at),
                                    devices::updated_at.eq(at),
                                ))
                                .execute(conn)?;
                            report.new_devices += 1;
                        }
                    }
                    diesel::update(ade_tokens::table.find(&token_id))
                        .set((
                            ade_tokens::sync_cursor.eq(&result.cursor),
                            ade_tokens::last_sync_at.eq(at),
                        ))
                        .execute(conn)?;
                    Ok(report)
                })
            })
            .await?)
    }
}
