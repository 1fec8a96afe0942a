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
use crate::vpp::{
    AssetRef, AssignmentFilter, BatchLimits, ContentToken, EventStatus, MdmInfo, VppClient,
    VppError,
};

/// How long Apple's service config (its batch limits) is trusted before it is fetched
/// again. Apple: "the limits are dynamic and can change without notice, so sync them
/// every 5 minutes" (`ServiceConfigResponse.Limits`).
const SERVICE_CONFIG_FOR: chrono::Duration = chrono::Duration::minutes(5);

/// Why a device waits when Apple refused its licence for lack of free ones (9709).
const NOT_ENOUGH: &str = "no licence: Apple has none free for this app (all bought licences are in use); buy more or free one in Apple School Manager";

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

/// An uploaded token, and whether it renewed one tafel had for its location.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The stored token.
    pub token: TokenInfo,
    /// True when it replaced the token of the same location (`uId`).
    pub renewed: bool,
}

/// A stored token found by its location's `uId`.
struct StoredLocation {
    id: String,
    tenant_id: String,
    location_name: String,
    expires_at: chrono::NaiveDateTime,
    status: ContentTokenStatus,
}

/// The stored token of the location `u_id`, if any.
fn stored_location(conn: &mut DbConn, u_id: &str) -> QueryResult<Option<StoredLocation>> {
    Ok(vpp_tokens::table
        .filter(vpp_tokens::u_id.eq(u_id))
        .select((
            vpp_tokens::id,
            vpp_tokens::tenant_id,
            vpp_tokens::location_name,
            vpp_tokens::expires_at,
            vpp_tokens::status,
        ))
        .first::<(
            String,
            String,
            String,
            chrono::NaiveDateTime,
            ContentTokenStatus,
        )>(conn)
        .optional()?
        .map(
            |(id, tenant_id, location_name, expires_at, status)| StoredLocation {
                id,
                tenant_id,
                location_name,
                expires_at,
                status,
            },
        ))
}

/// Removes a token with its assets and licence records.
fn remove_token(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(vpp_licences::table.filter(vpp_licences::token_id.eq(id))).execute(conn)?;
    diesel::delete(vpp_assets::table.filter(vpp_assets::token_id.eq(id))).execute(conn)?;
    diesel::delete(vpp_tokens::table.find(id)).execute(conn)?;
    Ok(())
}

/// Removes the authority's older tokens of the location `place` that Apple no longer
/// accepts and whose `uId` tafel never learnt (stored before it asked): renewals
/// uploaded as second records. The audit log names them.
fn drop_stale_twins(conn: &mut DbConn, keep: &str, u_id: &str, place: &str) -> QueryResult<()> {
    let (tenant, expires): (String, chrono::NaiveDateTime) = vpp_tokens::table
        .find(keep)
        .select((vpp_tokens::tenant_id, vpp_tokens::expires_at))
        .first(conn)?;
    let twins: Vec<String> = vpp_tokens::table
        .filter(vpp_tokens::tenant_id.eq(&tenant))
        .filter(vpp_tokens::u_id.is_null())
        .filter(vpp_tokens::location_name.eq(place))
        .filter(vpp_tokens::status.ne(ContentTokenStatus::Active))
        .filter(vpp_tokens::expires_at.le(expires))
        .filter(vpp_tokens::id.ne(keep))
        .select(vpp_tokens::id)
        .load(conn)?;
    for twin in &twins {
        remove_token(conn, twin)?;
        audit::record(
            conn,
            &audit::Entry::new("system:licences", "merge", "vpp_token")
                .object(keep)
                .scope(Some(&tenant), None)
                .summary(serde_json::json!({
                    "before": {"tokens": [keep, twin]},
                    "after": {"tokens": [keep], "location": place, "u_id": u_id},
                })),
        )?;
    }
    Ok(())
}

/// The refusal of a location another authority already uses (without naming it: the
/// uploader may not see other authorities).
fn other_authority(found: &StoredLocation) -> LicenceError {
    LicenceError::LocationTaken(format!(
        "the location \u{201c}{}\u{201d} is already used by another school authority in tafel; \
         a location's licences can serve one authority only (ask the district's admins to move it)",
        found.location_name
    ))
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
    /// The token's location is another authority's.
    #[error("{0}")]
    LocationTaken(String),
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
    /// Devices waiting for a licence, kept across passes: a partial pass replaces only
    /// the entries of the devices it looked at.
    blocked: Mutex<Vec<Blocked>>,
    /// Per (token, adam id): the counts stored after Apple last refused an association
    /// for lack of licences (9709). While the counts stay the same, the same call would
    /// fail the same way, so it is not sent (Apple warns against repeating it).
    refused: Mutex<HashMap<(String, String), AssetCounts>>,
    /// Apple's batch limits and when they were fetched (`GET /mdm/v2/service/config`).
    limits: Mutex<Option<(BatchLimits, DateTime<Utc>)>>,
}

/// Licence counts of one asset as stored: (total, assigned, available).
pub type AssetCounts = (i32, i32, i32);

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
            refused: Mutex::new(HashMap::new()),
            limits: Mutex::new(None),
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
                .expect_mdm_id(self.server_id.clone())
                .with_limits(self.limits()),
        )
    }

    /// The batch limits in force: Apple's last answer, else the documented values.
    pub fn limits(&self) -> BatchLimits {
        self.limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or_else(BatchLimits::default, |(limits, _)| limits)
    }

    /// Fetches Apple's service config when the last one is older than
    /// [`SERVICE_CONFIG_FOR`] at `at`, and adopts its limits. Returns requests made. A
    /// failure keeps the limits known (logged; the next call tries again).
    async fn refresh_limits(&self, token: &ContentToken, at: DateTime<Utc>) -> u64 {
        let fresh = self
            .limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|(_, fetched)| (at - fetched).abs() < SERVICE_CONFIG_FOR);
        if fresh {
            return 0;
        }
        let client = match VppClient::new(&self.base_url, token.clone(), Duration::from_secs(30)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask Apps and Books for its limits");
                return 0;
            }
        };
        match client.refresh_limits().await {
            Ok(limits) => {
                if limits != self.limits() {
                    tracing::info!(
                        max_assets = limits.max_assets,
                        max_serial_numbers = limits.max_serial_numbers,
                        "Apps and Books limits adopted from Apple's service config"
                    );
                }
                *self.limits.lock().unwrap_or_else(|e| e.into_inner()) = Some((limits, at));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Apple's service config could not be read; the limits known are kept")
            }
        }
        client.requests_made()
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
    ///
    /// Apple names a token's location by its `uId` (`GET /mdm/v2/client/config`): a token
    /// for a location tafel already has is a renewal and replaces the stored one (same
    /// id, new secret and expiry; the audit log keeps old and new expiry), so no location
    /// is synced twice. A location already used by another authority is refused: its
    /// licences would be counted and handed out twice.
    pub async fn upload(
        &self,
        tenant_id: &str,
        file: &str,
        actor: &str,
    ) -> Result<Uploaded, LicenceError> {
        let token = ContentToken::parse(file).map_err(|e| LicenceError::Token(e.to_string()))?;
        let client = VppClient::new(&self.base_url, token.clone(), Duration::from_secs(30))?
            .with_limits(self.limits());
        // Which location is this? Asked before claiming it, so a refused upload changes
        // nothing at Apple.
        let before = client.client_config().await?;
        let u_id = before.u_id.clone().filter(|u| !u.trim().is_empty());
        if let Some(u) = &u_id {
            let (u, t) = (u.clone(), tenant_id.to_owned());
            self.db
                .run(move |conn| -> Result<(), LicenceError> {
                    match stored_location(conn, &u)? {
                        Some(found) if found.tenant_id != t => Err(other_authority(&found)),
                        _ => Ok(()),
                    }
                })
                .await?;
        }
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
            .or(before.location_name)
            .unwrap_or_else(|| token.org_name().to_owned());
        let (tenant, file, actor) = (
            tenant_id.to_owned(),
            file.trim().to_owned(),
            actor.to_owned(),
        );
        let secrets = self.secrets.clone();
        let (org, expires) = (token.org_name().to_owned(), token.expires_at().naive_utc());
        self.db
            .run(move |conn| -> Result<Uploaded, LicenceError> {
                conn.write_tx(|conn| {
                    let existing = match &u_id {
                        Some(u) => stored_location(conn, u)?,
                        None => None,
                    };
                    if let Some(found) = &existing {
                        // Checked again under the write lock: another upload may have come first.
                        if found.tenant_id != tenant {
                            return Err(other_authority(found));
                        }
                    }
                    let id = existing
                        .as_ref()
                        .map_or_else(new_id, |found| found.id.clone());
                    let sealed = secrets
                        .seal_for(
                            &crate::secrets::binding(crate::secrets::places::CONTENT_TOKEN, &id),
                            file.as_bytes(),
                        )
                        .map_err(|e| LicenceError::Token(e.to_string()))?;
                    let at = now();
                    let renewed = existing.is_some();
                    if let Some(old) = existing {
                        diesel::update(vpp_tokens::table.find(&id))
                            .set((
                                vpp_tokens::location_name.eq(&location),
                                vpp_tokens::org_name.eq(&org),
                                vpp_tokens::token_sealed.eq(&sealed),
                                vpp_tokens::expires_at.eq(expires),
                                vpp_tokens::status.eq(ContentTokenStatus::Active),
                                vpp_tokens::last_error.eq(None::<String>),
                            ))
                            .execute(conn)?;
                        audit::record(
                            conn,
                            &audit::Entry::new(&actor, "renew", "vpp_token")
                                .object(&id)
                                .scope(Some(&tenant), None)
                                .summary(serde_json::json!({
                                    "before": {"location": old.location_name, "expires_at": old.expires_at, "status": old.status},
                                    "after": {"location": location, "org": org, "expires_at": expires, "status": ContentTokenStatus::Active},
                                })),
                        )?;
                    } else {
                        diesel::insert_into(vpp_tokens::table)
                            .values((
                                vpp_tokens::id.eq(&id),
                                vpp_tokens::tenant_id.eq(&tenant),
                                vpp_tokens::location_name.eq(&location),
                                vpp_tokens::org_name.eq(&org),
                                vpp_tokens::token_sealed.eq(&sealed),
                                vpp_tokens::expires_at.eq(expires),
                                vpp_tokens::status.eq(ContentTokenStatus::Active),
                                vpp_tokens::created_at.eq(at),
                                vpp_tokens::u_id.eq(&u_id),
                            ))
                            .execute(conn)?;
                        audit::record(
                            conn,
                            &audit::Entry::new(&actor, "upload", "vpp_token")
                                .object(&id)
                                .scope(Some(&tenant), None)
                                .summary(serde_json::json!({"after": {"location": location, "org": org, "expires_at": expires}})),
                        )?;
                    }
                    let token = vpp_tokens::table
                        .find(&id)
                        .select(TokenInfo::as_select())
                        .first(conn)?;
                    Ok(Uploaded { token, renewed })
                })
            })
            .await
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
                // Older first: a replaced token is found out (and marked) before the
                // newer one of its location syncs and tidies up after it.
                Ok(
                    q.order((vpp_tokens::expires_at.asc(), vpp_tokens::id.asc()))
                        .load(conn)?,
                )
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
        let tokens = self.active_tokens(None).await?;
        if let Some((_, _, token)) = tokens.first() {
            calls += self.refresh_limits(token, Utc::now()).await;
        }
        for (id, _, token) in tokens {
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
        if let Some(u) = config.u_id.clone().filter(|u| !u.trim().is_empty()) {
            let place = config.location_name.clone().unwrap_or_default();
            if !self.claim_location(id, &u, &place).await? {
                return Ok(());
            }
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

    /// Records that token `id` serves the location `u_id` (named `place`). Two tokens of
    /// one location (uploaded before tafel knew locations) are one too many: the one that
    /// expires later stays, the other is removed with its records (the audit log says
    /// so). An older token of the authority that Apple no longer accepts and that names
    /// the same location (its `uId` never learnt) is such a second one too. A location
    /// another authority already has is not used by this token. Returns whether token
    /// `id` is still to be synced.
    async fn claim_location(
        &self,
        id: &str,
        u_id: &str,
        place: &str,
    ) -> Result<bool, LicenceError> {
        let (id, u_id, place) = (id.to_owned(), u_id.to_owned(), place.to_owned());
        self.db
            .run(move |conn| -> Result<bool, LicenceError> {
                conn.write_tx(|conn| {
                    let Some(other) = stored_location(conn, &u_id)? else {
                        diesel::update(vpp_tokens::table.find(&id))
                            .set(vpp_tokens::u_id.eq(&u_id))
                            .execute(conn)?;
                        drop_stale_twins(conn, &id, &u_id, &place)?;
                        return Ok(true);
                    };
                    if other.id == id {
                        drop_stale_twins(conn, &id, &u_id, &place)?;
                        return Ok(true);
                    }
                    let Some((tenant, expires)) = vpp_tokens::table
                        .find(&id)
                        .select((vpp_tokens::tenant_id, vpp_tokens::expires_at))
                        .first::<(String, chrono::NaiveDateTime)>(conn)
                        .optional()?
                    else {
                        // Removed a moment ago as the other token of its location.
                        return Ok(false);
                    };
                    if other.tenant_id != tenant {
                        let why = other_authority(&other).to_string();
                        tracing::warn!(token = %id, "{why}");
                        diesel::update(vpp_tokens::table.find(&id))
                            .set((
                                vpp_tokens::status.eq(ContentTokenStatus::Failed),
                                vpp_tokens::last_error.eq(why),
                            ))
                            .execute(conn)?;
                        return Ok(false);
                    }
                    let (keep, drop) = if expires > other.expires_at {
                        (id.clone(), other.id.clone())
                    } else {
                        (other.id.clone(), id.clone())
                    };
                    remove_token(conn, &drop)?;
                    diesel::update(vpp_tokens::table.find(&keep))
                        .set(vpp_tokens::u_id.eq(&u_id))
                        .execute(conn)?;
                    audit::record(
                        conn,
                        &audit::Entry::new("system:licences", "merge", "vpp_token")
                            .object(&keep)
                            .scope(Some(&tenant), None)
                            .summary(serde_json::json!({
                                "before": {"tokens": [&keep, &drop]},
                                "after": {"tokens": [&keep], "location": other.location_name},
                            })),
                    )?;
                    Ok(keep == id)
                })
            })
            .await
    }

    /// Serves a reconcile pass: associates licences for held-back installs and for apps
    /// on iPads whose licence Apple took back (earliest lesson first, never more than
    /// available), and on full passes releases licences that nothing wants after the
    /// grace period. Returns the devices that got licences (reconcile them again) and the
    /// API calls made.
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
        let tokens = if needs.is_empty() && !report.full {
            Vec::new()
        } else {
            self.active_tokens(None).await?
        };
        for ((tenant, adam), mut list) in needs {
            list.sort_by(|a, b| {
                a.needed_from
                    .cmp(&b.needed_from)
                    .then(a.serial.cmp(&b.serial))
            });
            list.dedup_by(|a, b| a.serial == b.serial);
            // The authority's tokens that own this app, with their counts.
            let (a2, t2) = (adam.clone(), tenant.clone());
            let owners: Vec<(String, String, i32, i32, i32)> = self
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
                            vpp_assets::total,
                            vpp_assets::assigned,
                            vpp_assets::available,
                        ))
                        .load(conn)?)
                })
                .await?;
            let mut rest: &[LicenceNeed] = &list;
            let mut refused_before = false;
            for (token_id, pricing, total, assigned, available) in owners {
                if rest.is_empty() {
                    break;
                }
                let Some((_, _, token)) = tokens.iter().find(|(id, _, _)| *id == token_id) else {
                    continue;
                };
                if !self.ask_again(&token_id, &adam, (total, assigned, available)) {
                    // Apple said "not enough" for these very counts: asking again now
                    // would fail the same way.
                    refused_before = true;
                    continue;
                }
                let take = usize::try_from(available.max(0))
                    .unwrap_or(0)
                    .min(rest.len());
                if take == 0 {
                    continue;
                }
                let (batch, later) = rest.split_at(take);
                rest = later;
                calls += self.refresh_limits(token, at).await;
                let client = self.client(token)?;
                let serials: Vec<String> = batch.iter().map(|n| n.serial.clone()).collect();
                let result = self
                    .associate(&client, &token_id, &adam, &pricing, &serials)
                    .await;
                match result {
                    Ok(outcome) => {
                        for n in batch {
                            match outcome.refused.get(&n.serial) {
                                None => licensed_devices.push(n.device_id.clone()),
                                Some(why) => blocked.push(block(n, why)),
                            }
                        }
                        if outcome.not_enough {
                            self.after_not_enough(&client, &token_id, &adam, &pricing)
                                .await;
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
                calls += client.requests_made();
            }
            let why = if refused_before {
                NOT_ENOUGH
            } else {
                "no licence"
            };
            blocked.extend(rest.iter().map(|n| block(n, why)));
        }
        if !blocked.is_empty() {
            tracing::warn!(devices = blocked.len(), "installs blocked: no licence");
        }
        self.keep_blocked(report.scope.as_deref(), &licensed_devices, blocked);
        if report.full {
            calls += self.release(&report.wanted_licences, &tokens, at).await?;
        }
        Ok((licensed_devices, calls))
    }

    /// Merges a pass's blocked devices into the list: a full pass knows every device and
    /// replaces it; a partial pass replaces only the entries of the devices it looked at
    /// (and of those that got a licence).
    fn keep_blocked(&self, scope: Option<&[String]>, licensed: &[String], now: Vec<Blocked>) {
        let mut kept = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match scope {
            None => *kept = now,
            Some(devices) => {
                let looked: HashSet<&str> =
                    devices.iter().chain(licensed).map(String::as_str).collect();
                kept.retain(|b| !looked.contains(b.device_id.as_str()));
                kept.extend(now);
            }
        }
    }

    /// Whether any of `devices` is waiting for a licence (a partial pass over them should
    /// update the list).
    pub fn any_blocked(&self, devices: &[String]) -> bool {
        let kept = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().any(|b| devices.contains(&b.device_id))
    }

    /// Whether to ask Apple for licences of `adam` on `token_id` with the stored counts
    /// `counts`: not while they are the counts of Apple's last "not enough" (9709).
    fn ask_again(&self, token_id: &str, adam: &str, counts: AssetCounts) -> bool {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let key = (token_id.to_owned(), adam.to_owned());
        let again = ask_again(refused.get(&key), counts);
        if again {
            refused.remove(&key);
        }
        again
    }

    /// After Apple's "not enough licences" (9709): our counts were wrong. Reads the
    /// asset's counts from Apple, stores them (so "available" is right at once, not after
    /// the next full sync), and remembers them: the same association is not tried again
    /// until they change (a sync shows more bought, or a licence is freed).
    async fn after_not_enough(
        &self,
        client: &VppClient,
        token_id: &str,
        adam: &str,
        pricing: &str,
    ) {
        let fresh = match client
            .asset(&AssetRef::new(adam.to_owned(), pricing.to_owned()))
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, adam, "licence counts could not be read again after Apple's \"not enough licences\"");
                None
            }
        };
        let (t, a) = (token_id.to_owned(), adam.to_owned());
        let stored = self
            .db
            .run(move |conn| -> Result<Option<AssetCounts>, DbError> {
                conn.write_tx(|conn| {
                    let target = vpp_assets::table.find((&t, &a));
                    match &fresh {
                        Some(asset) => diesel::update(target)
                            .set((
                                vpp_assets::total.eq(count(asset.total_count)),
                                vpp_assets::assigned.eq(count(asset.assigned_count)),
                                vpp_assets::available.eq(count(asset.available_count)),
                                vpp_assets::updated_at.eq(now()),
                            ))
                            .execute(conn)?,
                        // Apple would not say: none is free, as far as tafel knows.
                        None => diesel::update(target)
                            .set(vpp_assets::available.eq(0))
                            .execute(conn)?,
                    };
                    Ok(vpp_assets::table
                        .find((&t, &a))
                        .select((
                            vpp_assets::total,
                            vpp_assets::assigned,
                            vpp_assets::available,
                        ))
                        .first::<AssetCounts>(conn)
                        .optional()?)
                })
            })
            .await;
        match stored {
            Ok(Some(counts)) => {
                tracing::info!(
                    adam,
                    total = counts.0,
                    assigned = counts.1,
                    available = counts.2,
                    "Apple has not enough licences: counts read again; not asked again until they change"
                );
                self.refused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((token_id.to_owned(), adam.to_owned()), counts);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "storing licence counts failed"),
        }
    }

    /// Associates and waits for Apple's event; returns who got a licence and why the
    /// others did not.
    async fn associate(
        &self,
        client: &VppClient,
        token_id: &str,
        adam: &str,
        pricing: &str,
        serials: &[String],
    ) -> Result<Associated, LicenceError> {
        let asset = AssetRef::new(adam.to_owned(), pricing.to_owned());
        let events = client
            .associate(std::slice::from_ref(&asset), serials)
            .await?;
        let mut outcome = Associated::default();
        for e in &events {
            let status = client
                .wait_for_event(e, self.poll, Duration::from_secs(120))
                .await?;
            outcome.add(&status, serials);
        }
        let ok: HashSet<String> = serials
            .iter()
            .filter(|s| !outcome.refused.contains_key(*s))
            .cloned()
            .collect();
        let (token_id, adam, granted) = (token_id.to_owned(), adam.to_owned(), ok);
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
        Ok(outcome)
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
            calls += self.refresh_limits(token, at).await;
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

    /// Devices held back for lack of a licence (kept across passes).
    pub fn blocked(&self) -> Vec<Blocked> {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What an association did: the serials Apple refused, each with why in words.
#[derive(Debug, Default)]
struct Associated {
    refused: HashMap<String, String>,
    /// Apple said "not enough licences" (9709) for at least one serial.
    not_enough: bool,
}

impl Associated {
    /// Takes in a finished event of the batch `serials`. A failure that names no serial
    /// concerns them all.
    fn add(&mut self, status: &EventStatus, serials: &[String]) {
        for failure in &status.failures {
            let why = if failure.is_not_enough_licenses() {
                self.not_enough = true;
                NOT_ENOUGH.to_owned()
            } else {
                let message = failure.error_message.trim();
                let message = if message.is_empty() {
                    "no reason given"
                } else {
                    message
                };
                format!(
                    "Apple refused the licence: {message} (Apple error {})",
                    failure.error_number
                )
            };
            let named = failure.serial_numbers();
            let concerned = if named.is_empty() { serials } else { named };
            for serial in concerned {
                self.refused
                    .entry(serial.clone())
                    .or_insert_with(|| why.clone());
            }
        }
    }
}

/// Whether an association refused for lack of licences at the counts `refused` should be
/// tried again now that the stored counts are `now` (pure: unit-tested).
fn ask_again(refused: Option<&AssetCounts>, now: AssetCounts) -> bool {
    refused.is_none_or(|before| *before != now)
}

/// Apple's counts as stored.
fn count(n: i64) -> i32 {
    i32::try_from(n.max(0)).unwrap_or(i32::MAX)
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
    fn a_refused_association_is_asked_again_only_when_the_counts_change() {
        // Never refused: ask.
        assert!(ask_again(None, (2, 2, 0)));
        // Refused at these counts: the same call would fail the same way.
        assert!(!ask_again(Some(&(2, 2, 0)), (2, 2, 0)));
        // More bought, or one freed: ask again.
        assert!(ask_again(Some(&(2, 2, 0)), (3, 2, 1)));
        assert!(ask_again(Some(&(2, 2, 0)), (2, 1, 1)));
    }

    #[test]
    fn refusals_are_told_in_words_and_a_failure_without_serials_concerns_the_batch() {
        let status: EventStatus = serde_json::from_value(serde_json::json!({
            "eventStatus": "FAILED",
            "failures": [
                {"errorNumber": 9709, "errorMessage": "There aren't enough assets available to complete this association.",
                 "errorInfo": {"serialNumbers": ["S2"]}},
                {"errorNumber": 9602, "errorMessage": "Invalid argument."}
            ]
        }))
        .unwrap();
        let mut outcome = Associated::default();
        let batch = ["S1".to_string(), "S2".to_string()];
        outcome.add(&status, &batch);
        assert!(outcome.not_enough);
        assert_eq!(outcome.refused["S2"], NOT_ENOUGH);
        assert_eq!(
            outcome.refused["S1"],
            "Apple refused the licence: Invalid argument. (Apple error 9602)"
        );
        for why in outcome.refused.values() {
            assert!(!why.contains("Some(") && !why.contains("None"), "{why}");
        }
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
