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
use super::school;
use super::token::{decrypt_server_token, new_token_keypair, OAuthTokens};
use crate::audit;
use crate::db::schema::{ade_devices, ade_profile_uploads, ade_tokens, devices};
use crate::db::{new_id, now, Db, DbError};
use crate::secrets::SecretBox;

crate::text_enum! {
    /// An ADE server token's state, as stored.
    pub enum ServerTokenStatus("server token status") {
        /// Key pair made; waiting for the `.p7m` from Apple School Manager.
        AwaitingToken = "awaiting_token",
        /// Credentials stored and accepted by Apple.
        Active = "active",
        /// Apple refuses every request until an administrator of the organization
        /// accepts its new terms and conditions (403 `T_C_NOT_SIGNED`, with every major
        /// OS release). Tried again at every sync; active again once one succeeds.
        WaitingForTerms = "waiting_for_terms",
        /// Apple refused the credentials (expired, revoked, replaced): only a new
        /// server token helps.
        Failed = "failed",
    }
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
    #[serde(with = "crate::time::utc_opt")]
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// MDM server name in Apple School Manager.
    pub server_name: Option<String>,
    /// Its state.
    pub status: ServerTokenStatus,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Last sync.
    #[serde(with = "crate::time::utc_opt")]
    pub last_sync_at: Option<chrono::NaiveDateTime>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// The server token.
    pub token_id: String,
    /// Why the sync of this token failed (the others went on).
    pub error: Option<String>,
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
    /// Devices placed in a school by the authority's rules.
    pub placed: usize,
    /// Profiles defined at Apple (new or changed).
    pub profiles_defined: usize,
    /// Serials the school's profile was assigned to.
    pub profiles_assigned: usize,
    /// Serials Apple refused a profile for (see the device's `profile_error`).
    pub profile_errors: usize,
    /// What went wrong for single schools while the rest of the sync went on, in words.
    pub problems: Vec<String>,
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
    enroll_url: String,
    anchor_certs: Vec<String>,
    machine_info_anchors: Vec<X509>,
    machine_info_check_time: bool,
    new_devices_school: Option<String>,
}

/// Rows per batched statement (well within both backends' bind-parameter limits).
const CHUNK: usize = 500;

/// A sync claim older than this is considered abandoned (a node died mid-sync).
const CLAIM_TIMEOUT: chrono::Duration = chrono::Duration::minutes(10);

impl Ade {
    /// A service talking to `base_url` (Apple's by default).
    pub fn new(db: Db, secrets: Arc<SecretBox>, base_url: &str) -> Ade {
        Ade {
            db,
            secrets,
            base_url: base_url.trim_end_matches('/').to_owned(),
            enroll_url: String::new(),
            anchor_certs: Vec::new(),
            machine_info_anchors: Vec::new(),
            machine_info_check_time: false,
            new_devices_school: None,
        }
    }

    /// The school that takes serials without one (its profile goes to them).
    pub fn with_new_devices_school(mut self, school: Option<String>) -> Ade {
        self.new_devices_school = school;
        self
    }

    /// The roots that sign devices' machine info (Apple's device CA chain).
    pub fn with_machine_info(mut self, anchors: Vec<X509>, check_time: bool) -> Ade {
        self.machine_info_anchors = anchors;
        self.machine_info_check_time = check_time;
        self
    }

    /// Verifies and reads the machine info a device sends from Setup Assistant.
    pub fn machine_info(
        &self,
        body: &[u8],
    ) -> Result<super::machine_info::MachineInfo, super::machine_info::MachineInfoError> {
        super::machine_info::verify(
            body,
            &self.machine_info_anchors,
            self.machine_info_check_time,
        )
    }

    /// Where ADE profiles send devices (tafel's `/mdm/ade/enroll`), and the anchor
    /// certificates (base64 DER) they trust for it.
    pub fn with_enroll_url(mut self, url: &str, anchor_certs: Vec<String>) -> Ade {
        self.enroll_url = url.to_owned();
        self.anchor_certs = anchor_certs;
        self
    }

    /// Starts the periodic sync (every `minutes`; 0: none).
    pub fn start_sync_job(self: &Arc<Self>, minutes: u64) {
        if minutes == 0 {
            return;
        }
        let ade = self.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(minutes * 60);
            // First sync soon after start, then on the interval.
            let mut next = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                tokio::time::sleep_until(next).await;
                next = tokio::time::Instant::now() + every;
                match ade.sync().await {
                    Ok(reports) => {
                        for r in reports
                            .iter()
                            .filter(|r| r.devices + r.placed + r.profiles_assigned > 0)
                        {
                            tracing::info!(
                                devices = r.devices,
                                new = r.new_devices,
                                deleted = r.deleted,
                                placed = r.placed,
                                profiles = r.profiles_assigned,
                                "ADE sync"
                            );
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "ADE sync failed"),
                }
            }
        });
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
        let id = new_id();
        let sealed = self
            .secrets
            .seal_for(
                &crate::secrets::binding(crate::secrets::places::ADE_KEY, &id),
                &key_pem,
            )
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let token = ServerToken {
            id,
            tenant_id: tenant_id.to_owned(),
            cert_pem,
            expires_at: None,
            server_name: None,
            status: ServerTokenStatus::AwaitingToken,
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
            .open_for(
                &crate::secrets::binding(crate::secrets::places::ADE_KEY, token_id),
                &key_sealed,
            )
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let key = PKey::private_key_from_pem(&key_pem)
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let tokens = decrypt_server_token(p7m, &cert, &key)?;
        let client = AdeClient::new(&self.base_url, tokens.clone(), "3")?;
        // New terms in Apple School Manager often meet a renewal (both come in the
        // autumn): the credentials are kept and the token waits for the terms.
        let (status, server_name, last_error) = match client.account().await {
            Ok(account) => (ServerTokenStatus::Active, Some(account.server_name), None),
            Err(e @ super::AdeError::TermsNotSigned) => (
                ServerTokenStatus::WaitingForTerms,
                None,
                Some(e.to_string()),
            ),
            Err(e) => return Err(e.into()),
        };
        let sealed = self
            .secrets
            .seal_for(
                &crate::secrets::binding(crate::secrets::places::ADE_TOKENS, token_id),
                serde_json::to_string(&tokens)
                    .map_err(|e| AdeServiceError::Secret(e.to_string()))?
                    .as_bytes(),
            )
            .map_err(|e| AdeServiceError::Secret(e.to_string()))?;
        let (id, actor) = (token_id.to_owned(), actor.to_owned());
        let expiry = tokens.access_token_expiry.naive_utc();
        self.db
            .run(move |conn| -> Result<ServerToken, DbError> {
                conn.write_tx(|conn| {
                    diesel::update(ade_tokens::table.find(&id))
                        .set((
                            ade_tokens::tokens_sealed.eq(Some(&sealed)),
                            ade_tokens::expires_at.eq(Some(expiry)),
                            ade_tokens::status.eq(status),
                            ade_tokens::last_error.eq(&last_error),
                        ))
                        .execute(conn)?;
                    // Apple names the server only once it answers; a renewal keeps the name.
                    if let Some(name) = &server_name {
                        diesel::update(ade_tokens::table.find(&id))
                            .set(ade_tokens::server_name.eq(Some(name)))
                            .execute(conn)?;
                    }
                    let t: ServerToken = ade_tokens::table.find(&id).select(ServerToken::as_select()).first(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new(&actor, "upload", "ade_token")
                            .object(&id)
                            .scope(Some(&t.tenant_id), None)
                            .summary(serde_json::json!({"after": {"server_name": t.server_name, "expires_at": expiry, "status": status}})),
                    )?;
                    Ok(t)
                })
            })
            .await
            .map_err(AdeServiceError::from)
    }

    /// Step 3: sync every active token's devices; returns one report per token.
    pub async fn sync(&self) -> Result<Vec<SyncReport>, AdeServiceError> {
        // Tokens waiting for Apple's terms are tried every time: nothing tells tafel
        // when an administrator accepted them, only Apple's next answer does.
        let rows: Vec<(String, String, Vec<u8>, Option<String>)> = self
            .db
            .run(|conn| -> Result<_, DbError> {
                Ok(ade_tokens::table
                    .filter(ade_tokens::status.eq_any([
                        ServerTokenStatus::Active,
                        ServerTokenStatus::WaitingForTerms,
                    ]))
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
        // Each token on its own: one authority's trouble never stops the others.
        for (id, tenant, sealed, cursor) in rows {
            if !self.claim(&id, true).await? {
                continue; // another node is syncing this token
            }
            let outcome = self.sync_token(&id, &tenant, &sealed, cursor).await;
            self.claim(&id, false).await?;
            match outcome {
                Ok(report) => {
                    self.synced(&id, &report.problems).await?;
                    reports.push(report);
                }
                Err(e) => {
                    tracing::warn!(token = %id, error = %e, "ADE sync failed");
                    self.sync_failed(&id, &e).await?;
                    reports.push(SyncReport {
                        token_id: id.clone(),
                        error: Some(e.to_string()),
                        ..SyncReport::default()
                    });
                }
            }
        }
        Ok(reports)
    }

    async fn sync_token(
        &self,
        id: &str,
        tenant: &str,
        sealed: &[u8],
        cursor: Option<String>,
    ) -> Result<SyncReport, AdeServiceError> {
        let tokens: OAuthTokens = self
            .secrets
            .open_for(
                &crate::secrets::binding(crate::secrets::places::ADE_TOKENS, id),
                sealed,
            )
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                AdeServiceError::Secret("the stored credentials cannot be opened (secrets.key changed?): upload the server token again".into())
            })?;
        let client = AdeClient::new(&self.base_url, tokens, "3")?;
        let result = client.sync_all(cursor).await?;
        let mut report = self.record(id, tenant, result).await?;
        report.token_id = id.to_owned();
        self.profiles(&client, id, tenant, &mut report).await?;
        report.api_calls = client.requests_made();
        Ok(report)
    }

    /// Claims a token for a sync (`on`) or gives the claim back.
    async fn claim(&self, token_id: &str, on: bool) -> Result<bool, AdeServiceError> {
        let id = token_id.to_owned();
        Ok(self
            .db
            .run(move |conn| -> Result<bool, DbError> {
                let at = now();
                let n = if on {
                    diesel::update(
                        ade_tokens::table.find(&id).filter(
                            ade_tokens::sync_claimed_at
                                .is_null()
                                .or(ade_tokens::sync_claimed_at.lt(at - CLAIM_TIMEOUT)),
                        ),
                    )
                    .set(ade_tokens::sync_claimed_at.eq(Some(at)))
                    .execute(conn)?
                } else {
                    diesel::update(ade_tokens::table.find(&id))
                        .set(ade_tokens::sync_claimed_at.eq(None::<chrono::NaiveDateTime>))
                        .execute(conn)?
                };
                Ok(n == 1)
            })
            .await?)
    }

    /// Records a failed sync: Apple's terms leave the token waiting for them (tried
    /// again at every sync), a rejected token fails for good, anything else is noted.
    async fn sync_failed(&self, id: &str, e: &AdeServiceError) -> Result<(), AdeServiceError> {
        let status = match e {
            AdeServiceError::Ade(super::AdeError::TermsNotSigned) => {
                Some(ServerTokenStatus::WaitingForTerms)
            }
            AdeServiceError::Ade(a) if a.needs_admin() => Some(ServerTokenStatus::Failed),
            AdeServiceError::Secret(_) => Some(ServerTokenStatus::Failed),
            _ => None,
        };
        let (token, msg) = (id.to_owned(), e.to_string());
        let changed = self
            .db
            .run(
                move |conn| -> Result<Option<(ServerTokenStatus, String)>, DbError> {
                    let id = token;
                    conn.write_tx(|conn| {
                        let (before, tenant): (ServerTokenStatus, String) = ade_tokens::table
                            .find(&id)
                            .select((ade_tokens::status, ade_tokens::tenant_id))
                            .first(conn)?;
                        let q = diesel::update(ade_tokens::table.find(&id));
                        let Some(status) = status else {
                            q.set(ade_tokens::last_error.eq(&msg)).execute(conn)?;
                            return Ok(None);
                        };
                        q.set((
                            ade_tokens::status.eq(status),
                            ade_tokens::last_error.eq(&msg),
                        ))
                        .execute(conn)?;
                        if before == status {
                            return Ok(None);
                        }
                        // A change of state is the news an admin must find in the audit log.
                        let action = match status {
                            ServerTokenStatus::WaitingForTerms => "wait_for_terms",
                            _ => "fail",
                        };
                        audit::record(
                            conn,
                            &audit::Entry::new("system:ade", action, "ade_token")
                                .object(&id)
                                .scope(Some(&tenant), None)
                                .summary(serde_json::json!({
                                    "before": {"status": before},
                                    "after": {"status": status},
                                    "reason": msg,
                                })),
                        )?;
                        Ok(Some((status, tenant)))
                    })
                },
            )
            .await?;
        match changed {
            Some((ServerTokenStatus::WaitingForTerms, tenant)) => tracing::warn!(
                token = %id,
                tenant = %tenant,
                "Apple School Manager waits for its new terms and conditions: an administrator \
                 must sign in to school.apple.com and accept them; tafel tries again at every sync"
            ),
            Some((_, tenant)) => tracing::warn!(
                token = %id,
                tenant = %tenant,
                error = %e,
                "ADE server token rejected: a new one must be uploaded"
            ),
            None => {}
        }
        Ok(())
    }

    /// Records a successful sync: a token that waited for Apple's terms is active again
    /// (they were accepted), and what went wrong for single schools is kept as the
    /// token's last error (cleared when nothing did).
    async fn synced(&self, id: &str, problems: &[String]) -> Result<(), AdeServiceError> {
        let (token, problem) = (
            id.to_owned(),
            (!problems.is_empty()).then(|| problems.join(" ")),
        );
        let resumed = self
            .db
            .run(move |conn| -> Result<Option<String>, DbError> {
                let id = token;
                conn.write_tx(|conn| {
                    diesel::update(ade_tokens::table.find(&id))
                        .set(ade_tokens::last_error.eq(&problem))
                        .execute(conn)?;
                    let n = diesel::update(
                        ade_tokens::table
                            .find(&id)
                            .filter(ade_tokens::status.eq(ServerTokenStatus::WaitingForTerms)),
                    )
                    .set(ade_tokens::status.eq(ServerTokenStatus::Active))
                    .execute(conn)?;
                    if n == 0 {
                        return Ok(None);
                    }
                    let tenant: String = ade_tokens::table
                        .find(&id)
                        .select(ade_tokens::tenant_id)
                        .first(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new("system:ade", "resume", "ade_token")
                            .object(&id)
                            .scope(Some(&tenant), None)
                            .summary(serde_json::json!({
                                "before": {"status": ServerTokenStatus::WaitingForTerms},
                                "after": {"status": ServerTokenStatus::Active},
                                "reason": "Apple School Manager answers again: its terms and conditions were accepted",
                            })),
                    )?;
                    Ok(Some(tenant))
                })
            })
            .await?;
        if let Some(tenant) = resumed {
            tracing::info!(
                token = %id,
                tenant = %tenant,
                "Apple School Manager's terms and conditions were accepted: the ADE server token syncs again"
            );
        }
        Ok(())
    }

    /// Defines each school's profile at Apple when it is new or changed, and assigns
    /// it to the school's serials that do not have it yet.
    async fn profiles(
        &self,
        client: &AdeClient,
        token_id: &str,
        tenant: &str,
        report: &mut SyncReport,
    ) -> Result<(), AdeServiceError> {
        if self.enroll_url.is_empty() {
            return Ok(());
        }
        let (tid, ten) = (token_id.to_owned(), tenant.to_owned());
        let fallback = self.new_devices_school.clone();
        let work = self
            .db
            .run(move |conn| load_profile_work(conn, &tid, &ten, fallback.as_deref()))
            .await?;
        for school in work {
            // Defined anew whenever what Apple would get changes: the school's
            // settings, tafel's URL or its anchor certificates.
            let profile = school::apple_profile(
                &school.settings,
                &school.name,
                &self.enroll_url,
                &self.anchor_certs,
            );
            let hash = hex::encode(openssl::sha::sha256(
                serde_json::to_string(&profile)
                    .map_err(|e| AdeServiceError::Secret(e.to_string()))?
                    .as_bytes(),
            ));
            let uuid = match &school.uploaded {
                Some((h, uuid)) if *h == hash => uuid.clone(),
                _ => {
                    self.define(client, token_id, &school, &profile, &hash, report)
                        .await?
                }
            };
            let todo = school.serials_without(&uuid);
            if todo.is_empty() {
                continue;
            }
            let (uuid, answer) = match client.assign_profile(&uuid, &todo).await {
                // Apple documents 404 for a profile it no longer knows: define it
                // again (a new UUID) and assign that once.
                Err(super::AdeError::ProfileNotFound { profile_uuid: lost }) => {
                    tracing::info!(
                        school = %school.settings.school_id,
                        profile_uuid = %lost,
                        "Apple no longer knows the school's ADE profile; defining it again"
                    );
                    let uuid = self
                        .define(client, token_id, &school, &profile, &hash, report)
                        .await?;
                    self.audit_redefined(tenant, &school, &lost, &uuid).await?;
                    let todo = school.serials_without(&uuid);
                    match client.assign_profile(&uuid, &todo).await {
                        Err(super::AdeError::ProfileNotFound { .. }) => {
                            let problem = format!(
                                "Apple School Manager did not find the enrollment profile of \
                                 {} even right after tafel defined it again, so {} of its \
                                 devices still have no profile; tafel tries again at the next \
                                 sync.",
                                school.name,
                                todo.len()
                            );
                            tracing::warn!(school = %school.settings.school_id, "{problem}");
                            report.problems.push(problem);
                            continue;
                        }
                        answer => (uuid, answer?),
                    }
                }
                answer => (uuid, answer?),
            };
            let results: Vec<(String, super::AssignResult)> = answer.devices.into_iter().collect();
            let ok = results
                .iter()
                .filter(|(_, r)| *r == super::AssignResult::Success)
                .count();
            report.profiles_assigned += ok;
            report.profile_errors += results.len() - ok;
            let (sid, ten) = (school.settings.school_id.clone(), tenant.to_owned());
            self.db
                .run(move |conn| record_assignment(conn, &sid, &ten, &uuid, &results))
                .await?;
        }
        Ok(())
    }

    /// Defines the school's profile at Apple and remembers its UUID (with the hash of
    /// what was sent); returns the UUID.
    async fn define(
        &self,
        client: &AdeClient,
        token_id: &str,
        school: &SchoolProfile,
        profile: &super::Profile,
        hash: &str,
        report: &mut SyncReport,
    ) -> Result<String, AdeServiceError> {
        let answer = client.define_profile(profile).await?;
        report.profiles_defined += 1;
        let (sid, tid, uuid, rev, hash) = (
            school.settings.school_id.clone(),
            token_id.to_owned(),
            answer.profile_uuid.clone(),
            school.settings.revision,
            hash.to_owned(),
        );
        self.db
            .run(move |conn| record_upload(conn, &sid, &tid, rev, &hash, &uuid))
            .await?;
        Ok(answer.profile_uuid)
    }

    /// Notes in the audit log that Apple lost a school's profile and it was defined anew.
    async fn audit_redefined(
        &self,
        tenant: &str,
        school: &SchoolProfile,
        lost: &str,
        uuid: &str,
    ) -> Result<(), AdeServiceError> {
        let entry = audit::Entry::new("system:ade", "define_profile", "ade_profile")
            .object(&school.settings.school_id)
            .scope(Some(tenant), Some(&school.settings.school_id))
            .summary(serde_json::json!({
                "before": {"profile_uuid": lost},
                "after": {"profile_uuid": uuid},
                "reason": "Apple School Manager no longer knew the profile (404 on assignment); defined again",
            }));
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| Ok(audit::record(conn, &entry)?))
            })
            .await?;
        Ok(())
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
                    // The latest word on each serial (a sync may list one twice).
                    let mut seen = std::collections::HashSet::new();
                    let mut latest: Vec<&super::Device> = result
                        .devices
                        .iter()
                        .rev()
                        .filter(|d| seen.insert(d.serial_number.as_str()))
                        .collect();
                    latest.reverse();
                    // What is known already, in a few queries rather than one per device.
                    let mut in_ade: std::collections::HashSet<String> = Default::default();
                    let mut in_tafel: std::collections::HashSet<String> = Default::default();
                    let serials: Vec<&str> =
                        latest.iter().map(|d| d.serial_number.as_str()).collect();
                    for chunk in serials.chunks(CHUNK) {
                        in_ade.extend(
                            ade_devices::table
                                .filter(ade_devices::serial_number.eq_any(chunk))
                                .select(ade_devices::serial_number)
                                .load::<String>(conn)?,
                        );
                        in_tafel.extend(
                            devices::table
                                .filter(devices::serial_number.eq_any(chunk))
                                .filter(devices::tenant_id.eq(&tenant))
                                .select(devices::serial_number.assume_not_null())
                                .load::<String>(conn)?,
                        );
                    }
                    let mut new_ade = Vec::new();
                    let mut new_devices = Vec::new();
                    for d in latest {
                        let deleted = d.op_type == Some(OpType::Deleted);
                        let fields = (
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
                            ade_devices::os.eq(&d.os),
                            ade_devices::device_family.eq(&d.device_family),
                            (
                                ade_devices::profile_assigned_at
                                    .eq(d.profile_assign_time.map(|t| t.naive_utc())),
                                ade_devices::profile_pushed_at
                                    .eq(d.profile_push_time.map(|t| t.naive_utc())),
                                ade_devices::deleted_at.eq(deleted.then_some(at)),
                                ade_devices::updated_at.eq(at),
                            ),
                        );
                        if in_ade.contains(&d.serial_number) {
                            // An update keeps what tafel added (order number, profile errors).
                            diesel::update(ade_devices::table.find(&d.serial_number))
                                .set(fields)
                                .execute(conn)?;
                        } else {
                            new_ade.push((ade_devices::serial_number.eq(&d.serial_number), fields));
                        }
                        if deleted {
                            report.deleted += 1;
                            continue;
                        }
                        // Known to tafel before it enrolls: a pending device of the authority.
                        if !in_tafel.contains(&d.serial_number) {
                            new_devices.push((
                                devices::id.eq(new_id()),
                                devices::serial_number.eq(&d.serial_number),
                                devices::tenant_id.eq(&tenant),
                                devices::model.eq(&d.model),
                                devices::name.eq(&d.description),
                                devices::enrollment_status
                                    .eq(crate::enrollment::EnrollmentStatus::Pending),
                                devices::awaiting_configuration.eq(false),
                                devices::created_at.eq(at),
                                devices::updated_at.eq(at),
                            ));
                            report.new_devices += 1;
                        }
                    }
                    for chunk in new_ade.chunks(CHUNK) {
                        let insert = diesel::insert_into(ade_devices::table).values(chunk);
                        crate::with_backend!(conn, |c| insert.execute(c))?;
                    }
                    for chunk in new_devices.chunks(CHUNK) {
                        let insert = diesel::insert_into(devices::table).values(chunk);
                        crate::with_backend!(conn, |c| insert.execute(c))?;
                    }
                    if result.full {
                        // A full fetch lists every device still assigned to tafel.
                        report.deleted += diesel::update(
                            ade_devices::table
                                .filter(ade_devices::token_id.eq(&token_id))
                                .filter(ade_devices::deleted_at.is_null())
                                .filter(ade_devices::updated_at.lt(at)),
                        )
                        .set(ade_devices::deleted_at.eq(Some(at)))
                        .execute(conn)?;
                    }
                    report.placed = super::school::place(conn, &tenant, None)?;
                    diesel::update(ade_tokens::table.find(&token_id))
                        .set((
                            ade_tokens::last_error.eq(None::<String>),
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

/// A school whose serials (of one server token) need the school's ADE profile.
struct SchoolProfile {
    settings: school::SchoolAde,
    name: String,
    /// What was last defined at Apple for it: hash of the profile, its UUID.
    uploaded: Option<(String, String)>,
    /// Its serials and the profile UUID each has at Apple.
    serials: Vec<(String, Option<String>)>,
}

impl SchoolProfile {
    /// Serials that do not have the profile `uuid` yet.
    fn serials_without(&self, uuid: &str) -> Vec<String> {
        self.serials
            .iter()
            .filter(|(_, have)| have.as_deref() != Some(uuid))
            .map(|(serial, _)| serial.clone())
            .collect()
    }
}

/// The schools whose serials (synced through `token_id`) need a profile, with what Apple
/// has. Serials without a school get the new-devices school's profile when that school
/// belongs to this authority; otherwise none (they would be refused at enrollment
/// anyway). Each school gets its ADE enrollment token here: its devices will ask for
/// enrollment profiles once Apple has the profile.
fn load_profile_work(
    conn: &mut crate::db::DbConn,
    token_id: &str,
    tenant: &str,
    new_devices_school: Option<&str>,
) -> Result<Vec<SchoolProfile>, AdeServiceError> {
    let rows: Vec<(Option<String>, String, Option<String>)> = ade_devices::table
        .left_join(
            devices::table.on(devices::serial_number
                .eq(ade_devices::serial_number.nullable())
                .and(devices::tenant_id.eq(ade_devices::tenant_id.nullable()))),
        )
        .filter(ade_devices::token_id.eq(token_id))
        .filter(ade_devices::tenant_id.eq(tenant))
        .filter(ade_devices::deleted_at.is_null())
        .select((
            devices::school_id.nullable(),
            ade_devices::serial_number,
            ade_devices::profile_uuid,
        ))
        .load(conn)?;
    let fallback = match new_devices_school {
        Some(f) => crate::org::school(conn, f)?
            .filter(|s| s.tenant_id == tenant)
            .map(|s| s.id),
        None => None,
    };
    let mut by_school: std::collections::BTreeMap<String, Vec<(String, Option<String>)>> =
        Default::default();
    for (school, serial, uuid) in rows {
        if let Some(school) = school.or_else(|| fallback.clone()) {
            by_school.entry(school).or_default().push((serial, uuid));
        }
    }
    let mut work = Vec::new();
    for (school_id, serials) in by_school {
        let Some(s) = crate::org::school(conn, &school_id)? else {
            continue;
        };
        crate::enrollment::tokens::ade_token(conn, &s.tenant_id, &s.id).map_err(|e| match e {
            crate::enrollment::tokens::TokenError::Db(e) => AdeServiceError::from(e),
            other => AdeServiceError::State(format!("cannot make the school's ADE token: {other}")),
        })?;
        let settings = school::settings(conn, &school_id)?;
        let uploaded: Option<(String, String)> = ade_profile_uploads::table
            .find((&school_id, token_id))
            .select((
                ade_profile_uploads::profile_hash,
                ade_profile_uploads::profile_uuid,
            ))
            .first(conn)
            .optional()?;
        work.push(SchoolProfile {
            settings,
            name: s.name,
            uploaded,
            serials,
        });
    }
    Ok(work)
}

/// Remembers the profile defined at Apple for a school and token.
fn record_upload(
    conn: &mut crate::db::DbConn,
    school_id: &str,
    token_id: &str,
    revision: i32,
    hash: &str,
    uuid: &str,
) -> Result<(), DbError> {
    diesel::delete(ade_profile_uploads::table.find((school_id, token_id))).execute(conn)?;
    diesel::insert_into(ade_profile_uploads::table)
        .values((
            ade_profile_uploads::school_id.eq(school_id),
            ade_profile_uploads::token_id.eq(token_id),
            ade_profile_uploads::revision.eq(revision),
            ade_profile_uploads::profile_hash.eq(hash),
            ade_profile_uploads::profile_uuid.eq(uuid),
            ade_profile_uploads::defined_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Stores Apple's answer to a profile assignment: the serials that have it, the errors
/// of the others, and an audit entry.
fn record_assignment(
    conn: &mut crate::db::DbConn,
    school_id: &str,
    tenant: &str,
    uuid: &str,
    results: &[(String, super::AssignResult)],
) -> Result<(), DbError> {
    conn.write_tx(|conn| {
        let at = now();
        let done: Vec<&String> = results
            .iter()
            .filter(|(_, r)| *r == super::AssignResult::Success)
            .map(|(serial, _)| serial)
            .collect();
        audit::record(
            conn,
            &audit::Entry::new("system:ade", "assign_profile", "ade_profile")
                .object(school_id)
                .scope(Some(tenant), Some(school_id))
                .summary(serde_json::json!({"profile_uuid": uuid, "assigned": done.len(), "refused": results.len() - done.len()})),
        )?;
        for chunk in done.chunks(CHUNK) {
            diesel::update(ade_devices::table.filter(ade_devices::serial_number.eq_any(chunk)))
                .set((
                    ade_devices::profile_uuid.eq(Some(uuid)),
                    ade_devices::profile_status.eq("assigned"),
                    ade_devices::profile_assigned_at.eq(Some(at)),
                    ade_devices::profile_error.eq(None::<String>),
                ))
                .execute(conn)?;
        }
        for (serial, result) in results {
            if *result != super::AssignResult::Success {
                diesel::update(ade_devices::table.find(serial))
                    .set(ade_devices::profile_error.eq(Some(result.describe())))
                    .execute(conn)?;
            }
        }
        Ok(())
    })
}
