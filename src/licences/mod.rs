//! Device licences from Apple School Manager ("Apps and Books").
//!
//! Each school authority uploads one or more content tokens (one per location). tafel
//! claims each token for itself (`mdmInfo`), syncs the assets it owns and the licences
//! Apple holds (Apple is right where records disagree), and serves the reconciler:
//!
//! - Before a licensed app is installed, the device's serial must hold a licence. The
//!   reconciler holds such installs back and lists them; [`Licences::after_pass`]
//!   associates licences (never more than are available; when they run short, the
//!   devices whose lesson starts first are served first, the rest are "blocked: no
//!   licence"), waits for Apple's event, and asks for those devices to be reconciled.
//! - A licence no longer wanted (the app was removed, the device left the target or was
//!   unenrolled) is released after the grace period, unless the device has a window
//!   within that period (a weekly lesson does not churn licences).
//! - A token another MDM has taken over is not used (and a warning is logged); expired
//!   or revoked tokens stop work for that token only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::assign::reconcile::{LicenceNeed, Report};
use crate::audit;
use crate::db::schema::{vpp_assets, vpp_licences, vpp_tokens};
use crate::db::{new_id, now, Db, DbConn, DbError};
use crate::secrets::SecretBox;
use crate::vpp::{AssetRef, AssignmentFilter, ContentToken, MdmInfo, VppClient, VppError};

crate::text_enum! {
    /// A content token's state, as stored.
    pub enum ContentTokenStatus("content token status") {
        /// In use.
        Active = "active",
        /// Another MDM claimed it: not used.
        TakenOver = "taken_over",
        /// Expired, revoked or invalid: not used until replaced.
        Failed = "failed",
    }
}

/// A stored token as admins see it (never the token itself).
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = vpp_tokens)]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Authority.
    pub tenant_id: String,
    /// Location in Apple School Manager.
    pub location_name: String,
    /// Organisation name from the token.
    pub org_name: String,
    /// Expiry.
    #[serde(with = "crate::time::utc")]
    pub expires_at: chrono::NaiveDateTime,
    /// Its state.
    pub status: ContentTokenStatus,
    /// Why it is not active.
    pub last_error: Option<String>,
    /// Last successful sync.
    #[serde(with = "crate::time::utc_opt")]
    pub last_sync_at: Option<chrono::NaiveDateTime>,
    /// Uploaded.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
}

/// A device held back for lack of a licence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Blocked {
    /// App Store id.
    pub adam_id: String,
    /// Device serial.
    pub serial: String,
    /// Device id.
    pub device_id: String,
    /// When the app is needed.
    pub needed_from: DateTime<Utc>,
    /// `no licence` or the Apple error.
    pub reason: String,
}

/// Why a licence operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LicenceError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Apple's service.
    #[error(transparent)]
    Vpp(#[from] VppError),
    /// Bad token file.
    #[error("content token: {0}")]
    Token(String),
}

impl From<diesel::result::Error> for LicenceError {
    fn from(e: diesel::result::Error) -> Self {
        LicenceError::Db(DbError::Query(e))
    }
}

/// The licence service.
pub struct Licences {
    db: Db,
    secrets: Arc<SecretBox>,
    base_url: String,
    grace: chrono::Duration,
    /// tafel's identity towards Apple (stable per installation: derived from the CA).
    server_id: String,
    poll: Duration,
    blocked: Mutex<Vec<Blocked>>,
}

impl Licences {
    /// A service talking to `base_url` (Apple's by default).
    pub fn new(
        db: Db,
        secrets: Arc<SecretBox>,
        base_url: &str,
        grace_hours: i64,
        server_id: String,
    ) -> Licences {
        Licences {
            db,
            secrets,
            base_url: base_url.trim_end_matches('/').to_owned(),
            grace: chrono::Duration::hours(grace_hours),
            server_id,
            poll: Duration::from_millis(500),
            blocked: Mutex::new(Vec::new()),
        }
    }

    /// Poll Apple's event status this often (tests use less).
    pub fn with_poll(mut self, poll: Duration) -> Licences {
        self.poll = poll;
        self
    }

    /// The grace period before an unneeded licence is released.
    pub fn grace(&self) -> chrono::Duration {
        self.grace
    }

    fn client(&self, token: &ContentToken) -> Result<VppClient, LicenceError> {
        Ok(
            VppClient::new(&self.base_url, token.clone(), Duration::from_secs(30))?
                .expect_mdm_id(self.server_id.clone()),
        )
    }

    fn open(&self, id: &str, sealed: &[u8]) -> Result<ContentToken, LicenceError> {
        let text = self
            .secrets
            .open_for(
                &crate::secrets::binding(crate::secrets::places::CONTENT_TOKEN, id),
                sealed,
            )
            .map_err(|e| LicenceError::Token(e.to_string()))?;
        ContentToken::parse(&String::from_utf8_lossy(&text))
            .map_err(|e| LicenceError::Token(e.to_string()))
    }

    /// Stores an uploaded `.vpptoken` for an authority and claims it for tafel.
    pub async fn upload(
        &self,
        tenant_id: &str,
        file: &str,
        actor: &str,
    ) -> Result<TokenInfo, LicenceError> {
        let token = ContentToken::parse(file).map_err(|e| LicenceError::Token(e.to_string()))?;
        let client = VppClient::new(&self.base_url, token.clone(), Duration::from_secs(30))?;
        let config = client
            .set_mdm_info(MdmInfo {
                id: self.server_id.clone(),
                name: "tafel".into(),
                metadata: serde_json::json!({"server": "tafel"}).to_string(),
            })
            .await?;
        let location = config
            .location_name
            .clone()
            .unwrap_or_else(|| token.org_name().to_owned());
        let id = new_id();
        let sealed = self
            .secrets
            .seal_for(
                &crate::secrets::binding(crate::secrets::places::CONTENT_TOKEN, &id),
                file.trim().as_bytes(),
            )
            .map_err(|e| LicenceError::Token(e.to_string()))?;
        let info = TokenInfo {
            id,
            tenant_id: tenant_id.to_owned(),
            location_name: location,
            org_name: token.org_name().to_owned(),
            expires_at: token.expires_at().naive_utc(),
            status: ContentTokenStatus::Active,
            last_error: None,
            last_sync_at: None,
            created_at: now(),
        };
        let (i, actor) = (info.clone(), actor.to_owned());
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| {
                    diesel::insert_into(vpp_tokens::table)
                        .values((
                            vpp_tokens::id.eq(&i.id),
                            vpp_tokens::tenant_id.eq(&i.tenant_id),
                            vpp_tokens::location_name.eq(&i.location_name),
                            vpp_tokens::org_name.eq(&i.org_name),
                            vpp_tokens::token_sealed.eq(&sealed),
                            vpp_tokens::expires_at.eq(i.expires_at),
                            vpp_tokens::status.eq(&i.status),
                            vpp_tokens::created_at.eq(i.created_at),
                        ))
                        .execute(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new(&actor, "upload", "vpp_token")
                            .object(&i.id)
                            .scope(Some(&i.tenant_id), None)
                            .summary(serde_json::json!({"after": {"location": i.location_name, "org": i.org_name, "expires_at": i.expires_at}})),
                    )?;
                    Ok(())
                })
            })
            .await?;
        Ok(info)
    }

    /// Tokens of an authority (all when `None`).
    pub fn tokens(conn: &mut DbConn, tenant_id: Option<&str>) -> QueryResult<Vec<TokenInfo>> {
        let mut q = vpp_tokens::table
            .select(TokenInfo::as_select())
            .into_boxed();
        if let Some(t) = tenant_id {
            q = q.filter(vpp_tokens::tenant_id.eq(t.to_owned()));
        }
        q.order(vpp_tokens::created_at.asc()).load(conn)
    }

    async fn active_tokens(
        &self,
        tenant: Option<String>,
    ) -> Result<Vec<(String, String, ContentToken)>, LicenceError> {
        let rows: Vec<(String, String, Vec<u8>)> = self
            .db
            .run(move |conn| -> Result<_, DbError> {
                let mut q = vpp_tokens::table
                    .filter(vpp_tokens::status.eq(ContentTokenStatus::Active))
                    .select((
                        vpp_tokens::id,
                        vpp_tokens::tenant_id,
                        vpp_tokens::token_sealed,
                    ))
                    .into_boxed();
                if let Some(t) = tenant {
                    q = q.filter(vpp_tokens::tenant_id.eq(t));
                }
                Ok(q.load(conn)?)
            })
            .await?;
        let mut out = Vec::new();
        for (id, tenant, sealed) in rows {
            match self.open(&id, &sealed) {
                Ok(t) => out.push((id, tenant, t)),
                Err(e) => {
                    tracing::error!(token = %id, error = %e, "cannot open a stored content token")
                }
            }
        }
        Ok(out)
    }

    /// Marks a token unusable (another MDM, expired, revoked) and logs why.
    async fn fail_token(&self, id: &str, e: &VppError) {
        let status = if matches!(e, VppError::OtherMdm(_)) {
            ContentTokenStatus::TakenOver
        } else {
            ContentTokenStatus::Failed
        };
        tracing::warn!(token = id, error = %e, %status, "content token is not used any more: upload a new one in the admin API");
        let (id, msg, st) = (id.to_owned(), e.to_string(), status);
        let _ = self
            .db
            .run(move |conn| -> Result<usize, DbError> {
                Ok(diesel::update(vpp_tokens::table.find(&id))
                    .set((vpp_tokens::status.eq(st), vpp_tokens::last_error.eq(msg)))
                    .execute(conn)?)
            })
            .await;
    }

    /// Imports assets and Apple's licences for every active token. Returns API calls made.
    pub async fn sync(&self) -> Result<u64, LicenceError> {
        let mut calls = 0;
        for (id, _, token) in self.active_tokens(None).await? {
            let client = self.client(&token)?;
            match self.sync_token(&id, &client).await {
                Ok(()) => {}
                Err(LicenceError::Vpp(e))
                    if e.is_token_problem() || matches!(e, VppError::OtherMdm(_)) =>
                {
                    self.fail_token(&id, &e).await
                }
                Err(e) => tracing::error!(token = %id, error = %e, "licence sync failed"),
            }
            calls += client.requests_made();
        }
        Ok(calls)
    }

    async fn sync_token(&self, id: &str, client: &VppClient) -> Result<(), LicenceError> {
        let config = client.client_config().await?;
        if !config.is_managed_by(&self.server_id) {
            return Err(LicenceError::Vpp(VppError::OtherMdm(Box::new(
                config.mdm_info.clone().unwrap_or(MdmInfo {
                    id: String::new(),
                    name: "unknown".into(),
                    metadata: String::new(),
                }),
            ))));
        }
        let assets = client.all_assets().await?;
        let held = client.all_assignments(&AssignmentFilter::default()).await?;
        let id = id.to_owned();
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| {
                    let at = now();
                    diesel::delete(vpp_assets::table.filter(vpp_assets::token_id.eq(&id)))
                        .execute(conn)?;
                    for a in &assets {
                        diesel::insert_into(vpp_assets::table)
                            .values((
                                vpp_assets::token_id.eq(&id),
                                vpp_assets::adam_id.eq(&a.adam_id),
                                vpp_assets::pricing_param.eq(&a.pricing_param),
                                vpp_assets::total
                                    .eq(i32::try_from(a.total_count).unwrap_or(i32::MAX)),
                                vpp_assets::assigned
                                    .eq(i32::try_from(a.assigned_count).unwrap_or(i32::MAX)),
                                vpp_assets::available
                                    .eq(i32::try_from(a.available_count).unwrap_or(i32::MAX)),
                                vpp_assets::updated_at.eq(at),
                            ))
                            .execute(conn)?;
                    }
                    // Apple is right: our records become what Apple holds, keeping release dates.
                    let ours: HashMap<(String, String), Option<chrono::NaiveDateTime>> =
                        vpp_licences::table
                            .filter(vpp_licences::token_id.eq(&id))
                            .select((
                                vpp_licences::adam_id,
                                vpp_licences::serial_number,
                                vpp_licences::release_after,
                            ))
                            .load::<(String, String, Option<chrono::NaiveDateTime>)>(conn)?
                            .into_iter()
                            .map(|(a, s, r)| ((a, s), r))
                            .collect();
                    diesel::delete(vpp_licences::table.filter(vpp_licences::token_id.eq(&id)))
                        .execute(conn)?;
                    for h in &held {
                        let Some(serial) = &h.serial_number else {
                            continue;
                        };
                        let release = ours
                            .get(&(h.adam_id.clone(), serial.clone()))
                            .copied()
                            .flatten();
                        diesel::insert_into(vpp_licences::table)
                            .values((
                                vpp_licences::token_id.eq(&id),
                                vpp_licences::adam_id.eq(&h.adam_id),
                                vpp_licences::serial_number.eq(serial),
                                vpp_licences::release_after.eq(release),
                                vpp_licences::updated_at.eq(at),
                            ))
                            .execute(conn)?;
                    }
                    diesel::update(vpp_tokens::table.find(&id))
                        .set((
                            vpp_tokens::last_sync_at.eq(at),
                            vpp_tokens::last_error.eq(None::<String>),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    /// Serves a reconcile pass: associates licences for held-back installs (earliest
    /// lesson first, never more than available), and on full passes releases licences
    /// that nothing wants after the grace period. Returns the devices that got licences
    /// (reconcile them again) and the API calls made.
    pub async fn after_pass(
        &self,
        report: &Report,
        at: DateTime<Utc>,
    ) -> Result<(Vec<String>, u64), LicenceError> {
        let mut licensed_devices = Vec::new();
        let mut calls = 0;
        let mut blocked = Vec::new();
        // Needs per (tenant, adam id), earliest first.
        let mut needs: BTreeMap<(String, String), Vec<LicenceNeed>> = BTreeMap::new();
        for n in &report.needed_licences {
            needs
                .entry((n.tenant_id.clone(), n.adam_id.clone()))
                .or_default()
                .push(n.clone());
        }
        let tokens = self.active_tokens(None).await?;
        for ((tenant, adam), mut list) in needs {
            list.sort_by(|a, b| {
                a.needed_from
                    .cmp(&b.needed_from)
                    .then(a.serial.cmp(&b.serial))
            });
            list.dedup_by(|a, b| a.serial == b.serial);
            // The authority's tokens that own this app, with free licences.
            let (a2, t2) = (adam.clone(), tenant.clone());
            let owners: Vec<(String, String, i32)> = self
                .db
                .run(move |conn| -> Result<_, DbError> {
                    Ok(vpp_assets::table
                        .inner_join(vpp_tokens::table)
                        .filter(vpp_assets::adam_id.eq(&a2))
                        .filter(vpp_tokens::tenant_id.eq(&t2))
                        .filter(vpp_tokens::status.eq(ContentTokenStatus::Active))
                        .select((
                            vpp_assets::token_id,
                            vpp_assets::pricing_param,
                            vpp_assets::available,
                        ))
                        .load(conn)?)
                })
                .await?;
            let mut rest: &[LicenceNeed] = &list;
            for (token_id, pricing, available) in owners {
                if rest.is_empty() {
                    break;
                }
                let Some((_, _, token)) = tokens.iter().find(|(id, _, _)| *id == token_id) else {
                    continue;
                };
                let take = usize::try_from(available.max(0))
                    .unwrap_or(0)
                    .min(rest.len());
                if take == 0 {
                    continue;
                }
                let (batch, later) = rest.split_at(take);
                rest = later;
                let client = self.client(token)?;
                let serials: Vec<String> = batch.iter().map(|n| n.serial.clone()).collect();
                let result = self
                    .associate(&client, &token_id, &adam, &pricing, &serials)
                    .await;
                calls += client.requests_made();
                match result {
                    Ok(ok) => {
                        for n in batch {
                            if ok.contains(&n.serial) {
                                licensed_devices.push(n.device_id.clone());
                            } else {
                                blocked.push(block(n, "Apple refused the licence"));
                            }
                        }
                    }
                    Err(LicenceError::Vpp(e))
                        if e.is_token_problem() || matches!(e, VppError::OtherMdm(_)) =>
                    {
                        self.fail_token(&token_id, &e).await;
                        blocked.extend(batch.iter().map(|n| block(n, &e.to_string())));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, adam = %adam, "associating licences failed");
                        blocked.extend(batch.iter().map(|n| block(n, &e.to_string())));
                    }
                }
            }
            blocked.extend(rest.iter().map(|n| block(n, "no licence")));
        }
        if !blocked.is_empty() {
            tracing::warn!(devices = blocked.len(), "installs blocked: no licence");
        }
        *self.blocked.lock().unwrap_or_else(|e| e.into_inner()) = blocked;
        if report.full {
            calls += self.release(&report.wanted_licences, &tokens, at).await?;
        }
        Ok((licensed_devices, calls))
    }

    /// Associates and waits for Apple's event; returns the serials that got a licence.
    async fn associate(
        &self,
        client: &VppClient,
        token_id: &str,
        adam: &str,
        pricing: &str,
        serials: &[String],
    ) -> Result<HashSet<String>, LicenceError> {
        let asset = AssetRef::new(adam.to_owned(), pricing.to_owned());
        let events = client
            .associate(std::slice::from_ref(&asset), serials)
            .await?;
        let mut failed: HashSet<String> = HashSet::new();
        for e in &events {
            let status = client
                .wait_for_event(e, self.poll, Duration::from_secs(120))
                .await?;
            failed.extend(status.failed_serials().into_iter().map(|s| s.to_owned()));
        }
        let ok: HashSet<String> = serials
            .iter()
            .filter(|s| !failed.contains(*s))
            .cloned()
            .collect();
        let (token_id, adam, granted) = (token_id.to_owned(), adam.to_owned(), ok.clone());
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| {
                    let at = now();
                    for s in &granted {
                        diesel::delete(vpp_licences::table.find((&token_id, &adam, s)))
                            .execute(conn)?;
                        diesel::insert_into(vpp_licences::table)
                            .values((
                                vpp_licences::token_id.eq(&token_id),
                                vpp_licences::adam_id.eq(&adam),
                                vpp_licences::serial_number.eq(s),
                                vpp_licences::updated_at.eq(at),
                            ))
                            .execute(conn)?;
                    }
                    let n = i32::try_from(granted.len()).unwrap_or(i32::MAX);
                    diesel::update(vpp_assets::table.find((&token_id, &adam)))
                        .set((
                            vpp_assets::available.eq(vpp_assets::available - n),
                            vpp_assets::assigned.eq(vpp_assets::assigned + n),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await?;
        Ok(ok)
    }

    /// Releases licences nothing wants: marks them, and disassociates once the grace
    /// period has passed. Returns API calls made.
    async fn release(
        &self,
        wanted: &HashSet<(String, String)>,
        tokens: &[(String, String, ContentToken)],
        at: DateTime<Utc>,
    ) -> Result<u64, LicenceError> {
        let held: Vec<(String, String, String, Option<chrono::NaiveDateTime>)> = self
            .db
            .run(|conn| -> Result<_, DbError> {
                Ok(vpp_licences::table
                    .select((
                        vpp_licences::token_id,
                        vpp_licences::adam_id,
                        vpp_licences::serial_number,
                        vpp_licences::release_after,
                    ))
                    .load(conn)?)
            })
            .await?;
        let naive = at.naive_utc();
        let mut mark = Vec::new();
        let mut unmark = Vec::new();
        let mut due: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (token, adam, serial, release) in held {
            let wanted_now = wanted.contains(&(adam.clone(), serial.clone()));
            match (wanted_now, release) {
                (true, Some(_)) => unmark.push((token, adam, serial)),
                (true, None) => {}
                (false, None) => mark.push((token, adam, serial)),
                (false, Some(r)) if r <= naive => {
                    due.entry((token, adam)).or_default().push(serial)
                }
                (false, Some(_)) => {}
            }
        }
        let release_at = naive + self.grace;
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| {
                    for (t, a, s) in &mark {
                        diesel::update(vpp_licences::table.find((t, a, s)))
                            .set(vpp_licences::release_after.eq(release_at))
                            .execute(conn)?;
                    }
                    for (t, a, s) in &unmark {
                        diesel::update(vpp_licences::table.find((t, a, s)))
                            .set(vpp_licences::release_after.eq(None::<chrono::NaiveDateTime>))
                            .execute(conn)?;
                    }
                    Ok(())
                })
            })
            .await?;
        let mut calls = 0;
        for ((token_id, adam), serials) in due {
            let Some((_, _, token)) = tokens.iter().find(|(id, _, _)| *id == token_id) else {
                continue;
            };
            let client = self.client(token)?;
            let (t2, a2) = (token_id.clone(), adam.clone());
            let pricing: String = self
                .db
                .run(move |conn| -> Result<String, DbError> {
                    Ok(vpp_assets::table
                        .find((&t2, &a2))
                        .select(vpp_assets::pricing_param)
                        .first::<String>(conn)
                        .optional()?
                        .unwrap_or_else(|| "STDQ".into()))
                })
                .await?;
            let events = client
                .disassociate(&[AssetRef::new(adam.clone(), pricing)], &serials)
                .await?;
            for e in &events {
                client
                    .wait_for_event(e, self.poll, Duration::from_secs(120))
                    .await?;
            }
            calls += client.requests_made();
            let n = i32::try_from(serials.len()).unwrap_or(i32::MAX);
            self.db
                .run(move |conn| -> Result<(), DbError> {
                    conn.write_tx(|conn| {
                        for s in &serials {
                            diesel::delete(vpp_licences::table.find((&token_id, &adam, s)))
                                .execute(conn)?;
                        }
                        diesel::update(vpp_assets::table.find((&token_id, &adam)))
                            .set((
                                vpp_assets::available.eq(vpp_assets::available + n),
                                vpp_assets::assigned.eq(vpp_assets::assigned - n),
                            ))
                            .execute(conn)?;
                        Ok(())
                    })
                })
                .await?;
        }
        Ok(calls)
    }

    /// Devices held back for lack of a licence, from the last pass.
    pub fn blocked(&self) -> Vec<Blocked> {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn block(n: &LicenceNeed, reason: &str) -> Blocked {
    Blocked {
        adam_id: n.adam_id.clone(),
        serial: n.serial.clone(),
        device_id: n.device_id.clone(),
        needed_from: n.needed_from,
        reason: reason.to_owned(),
    }
}

/// Per app and location: owned, assigned, available, needed and missing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenceCount {
    /// Token (location).
    pub token_id: String,
    /// Location name.
    pub location: String,
    /// App Store id.
    pub adam_id: String,
    /// Bought.
    pub owned: i32,
    /// In use.
    pub assigned: i32,
    /// Free.
    pub available: i32,
    /// Devices waiting for one.
    pub needed: usize,
    /// Needed but not available.
    pub missing: usize,
}

/// Licence counts of an authority's locations, with the devices blocked now.
pub fn counts(
    conn: &mut DbConn,
    tenant_id: Option<&str>,
    blocked: &[Blocked],
) -> QueryResult<Vec<LicenceCount>> {
    let mut q = vpp_assets::table
        .inner_join(vpp_tokens::table)
        .select((
            vpp_assets::token_id,
            vpp_tokens::location_name,
            vpp_assets::adam_id,
            vpp_assets::total,
            vpp_assets::assigned,
            vpp_assets::available,
        ))
        .into_boxed();
    if let Some(t) = tenant_id {
        q = q.filter(vpp_tokens::tenant_id.eq(t.to_owned()));
    }
    let rows: Vec<(String, String, String, i32, i32, i32)> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(token_id, location, adam_id, owned, assigned, available)| {
                let needed = blocked.iter().filter(|b| b.adam_id == adam_id).count();
                let missing = needed.saturating_sub(usize::try_from(available.max(0)).unwrap_or(0));
                LicenceCount {
                    token_id,
                    location,
                    adam_id,
                    owned,
                    assigned,
                    available,
                    needed,
                    missing,
                }
            },
        )
        .collect())
}

/// Licences of one app for a set of devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenceGap {
    /// Devices (ids) whose serial holds no licence for the app.
    pub needed: usize,
    /// Licences the authority has free (active content tokens).
    pub available: i64,
    /// The devices that will get none: those without a licence beyond the free ones (the
    /// free ones go to the first serials in order, as a sync would assign them).
    pub short: HashSet<String>,
}

/// Which of `devices` (id, serial) will have no licence for the app `adam_id` of the
/// authority `tenant_id`.
pub fn licence_gap(
    conn: &mut DbConn,
    tenant_id: &str,
    adam_id: &str,
    devices: &[(String, Option<String>)],
) -> QueryResult<LicenceGap> {
    let held: HashSet<String> = vpp_licences::table
        .filter(vpp_licences::adam_id.eq(adam_id))
        .select(vpp_licences::serial_number)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let available: i64 = vpp_assets::table
        .inner_join(vpp_tokens::table)
        .filter(vpp_assets::adam_id.eq(adam_id))
        .filter(vpp_tokens::tenant_id.eq(tenant_id))
        .filter(vpp_tokens::status.eq(ContentTokenStatus::Active))
        .select(vpp_assets::available)
        .load::<i32>(conn)?
        .into_iter()
        .map(i64::from)
        .sum();
    Ok(gap_of(&held, available, devices))
}

/// The pure part of [`licence_gap`]. A device whose serial tafel does not know yet
/// (its first inventory has not answered) is left out: it is not counted short.
fn gap_of(
    held: &HashSet<String>,
    available: i64,
    devices: &[(String, Option<String>)],
) -> LicenceGap {
    let mut lacking: Vec<(&str, &str)> = devices
        .iter()
        .filter_map(|(id, serial)| Some((serial.as_deref()?, id.as_str())))
        .filter(|(serial, _)| !held.contains(*serial))
        .collect();
    lacking.sort();
    let free = usize::try_from(available.max(0)).unwrap_or(usize::MAX);
    LicenceGap {
        needed: lacking.len(),
        available,
        short: lacking
            .iter()
            .skip(free)
            .map(|(_, id)| (*id).to_owned())
            .collect(),
    }
}

/// A scheduled assignment that will run short of licences.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Shortfall {
    /// The assignment (lesson or admin).
    pub assignment_id: String,
    /// Its lesson request, if any.
    pub lesson_request_id: Option<String>,
    /// App Store id.
    pub adam_id: String,
    /// Start of the next window.
    pub next_window: DateTime<Utc>,
    /// Target devices without a licence.
    pub needed: usize,
    /// Licences free for the authority.
    pub available: i64,
}

/// Assignments of licensed apps whose next window (within `horizon`) needs more
/// licences than the authority has free: the warning before a lesson runs short.
pub fn upcoming_shortfalls(
    conn: &mut DbConn,
    tenant_id: Option<&str>,
    at: DateTime<Utc>,
    horizon: chrono::Duration,
) -> QueryResult<Vec<Shortfall>> {
    use crate::db::schema::apps;
    let live = crate::assign::live(conn, tenant_id)?;
    let calendars = crate::assign::calendars(conn)?;
    let periods = crate::assign::period_tables(conn)?;
    let mut out = Vec::new();
    for a in live.iter().filter(|a| a.item_kind == "app") {
        let app: Option<(bool, Option<String>)> = apps::table
            .find(&a.item_id)
            .select((apps::licensed, apps::adam_id))
            .first(conn)
            .optional()?;
        let Some((true, Some(adam))) = app else {
            continue;
        };
        let Some(schedule) = periods.schedule_of(a) else {
            continue;
        };
        let cal = calendars.for_place(Some(&a.tenant_id), a.school_id.as_deref());
        let Some(next) = schedule.next_window_start_after(at, &cal) else {
            continue;
        };
        if next - at > horizon {
            continue;
        }
        let targets = crate::assign::views::target_devices(conn, a)?;
        let targets = serials_of(conn, &targets)?;
        let gap = licence_gap(conn, &a.tenant_id, &adam, &targets)?;
        if !gap.short.is_empty() {
            out.push(Shortfall {
                assignment_id: a.id.clone(),
                lesson_request_id: a.lesson_request_id.clone(),
                adam_id: adam,
                next_window: next,
                needed: gap.needed,
                available: gap.available,
            });
        }
    }
    Ok(out)
}

/// Devices (id, UDID) with their serials, for [`licence_gap`].
pub fn serials_of(
    conn: &mut DbConn,
    devices: &[(String, Option<String>)],
) -> QueryResult<Vec<(String, Option<String>)>> {
    use crate::db::schema::devices as d;
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(1000) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        out.extend(
            d::table
                .filter(d::id.eq_any(ids))
                .select((d::id, d::serial_number))
                .load::<(String, Option<String>)>(conn)?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(serials: &[Option<&str>]) -> Vec<(String, Option<String>)> {
        serials
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("d{i}"), s.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn the_free_licences_go_to_the_first_serials_and_the_rest_are_short() {
        let held: HashSet<String> = ["S1".to_string()].into();
        let d = devices(&[Some("S1"), Some("S3"), Some("S2"), None]);
        // S1 holds one; S2 and S3 need one (the iPad without a known serial is left
        // out); one is free.
        let gap = gap_of(&held, 1, &d);
        assert_eq!(gap.needed, 2);
        assert_eq!(gap.available, 1);
        // S2 gets the free one; S3 (d1) is short.
        assert_eq!(gap.short, ["d1".to_string()].into());
        // Enough free: nobody.
        assert!(gap_of(&held, 5, &d).short.is_empty());
        // None free, none held: every iPad with a serial.
        assert_eq!(gap_of(&HashSet::new(), 0, &d).short.len(), 3);
        // A negative count from Apple is none.
        assert_eq!(gap_of(&held, -2, &d).short.len(), 2);
    }
}
