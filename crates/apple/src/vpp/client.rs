//! The HTTP client of Apple's App and Book Management API v2
//! (`https://vpp.itunes.apple.com/mdm/v2/…`): client config, assets,
//! associate/disassociate with batch splitting, event status, assignments.
//!
//! Every call sends `Authorization: Bearer <content token>` (except
//! `service/config`, which Apple serves without one), retries 429/5xx with
//! `Retry-After` or exponential backoff for a bounded number of attempts, and
//! counts each HTTP request it makes in [`VppClient::requests_made`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{answer_error, VppError};
use super::token::ContentToken;
use super::types::{
    Asset, AssetRef, AssetsPage, Assignment, AssignmentFilter, AssignmentsPage, BatchLimits,
    ClientConfig, ClientConfigRequest, EventId, EventResponse, EventStatus, MdmInfo, ServiceConfig,
};

/// Apple's production host; the client appends `/mdm/v2/…`.
pub const APPLE_BASE_URL: &str = "https://vpp.itunes.apple.com";

/// How often a full walk through paged data is restarted when its
/// `versionId` changes underneath, before giving up with [`VppError::DataChanged`].
const MAX_WALKS: u32 = 3;

/// A bound on pages per walk, so a server that keeps saying "next" cannot loop us.
const MAX_PAGES: u32 = 100_000;

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The pause after the first failure when Apple gives no `Retry-After`;
    /// doubled after every further failure.
    pub initial_backoff: Duration,
    /// The longest backoff pause.
    pub max_backoff: Duration,
    /// The longest `Retry-After` the client sleeps through; a longer one is
    /// returned as [`VppError::RateLimited`] for the caller to reschedule.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Whether a request carries the content token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Bearer,
    Anonymous,
}

/// A request that failed, with Apple's `Retry-After` when it sent one.
struct Failed {
    error: VppError,
    retry_after: Option<Duration>,
    /// Transport errors of non-idempotent requests must not be repeated.
    retry_allowed: bool,
}

/// A client for one location's content token.
#[derive(Debug)]
pub struct VppClient {
    http: reqwest::Client,
    base_url: String,
    token: ContentToken,
    retry: RetryPolicy,
    max_assets: AtomicUsize,
    max_serial_numbers: AtomicUsize,
    expected_mdm_id: Option<String>,
    requests: AtomicU64,
}

impl VppClient {
    /// A client for `base_url` (scheme and host, e.g. [`APPLE_BASE_URL`] or a
    /// simulator's URL) with a per-request `timeout`.
    pub fn new(base_url: &str, token: ContentToken, timeout: Duration) -> Result<Self, VppError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/mdm/v2").unwrap_or(trimmed);
        reqwest::Url::parse(trimmed).map_err(|_| VppError::BaseUrl(base_url.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tafel/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limits = BatchLimits::default();
        Ok(Self {
            http,
            base_url: trimmed.to_owned(),
            token,
            retry: RetryPolicy::default(),
            max_assets: AtomicUsize::new(limits.max_assets),
            max_serial_numbers: AtomicUsize::new(limits.max_serial_numbers),
            expected_mdm_id: None,
            requests: AtomicU64::new(0),
        })
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the batch limits (see [`VppClient::refresh_limits`] for Apple's live ones).
    pub fn with_limits(self, limits: BatchLimits) -> Self {
        self.store_limits(limits);
        self
    }

    /// Makes every call fail with [`VppError::OtherMdm`] when Apple reports an
    /// `mdmInfo` with another id: another MDM has taken over the token.
    pub fn expect_mdm_id(mut self, id: impl Into<String>) -> Self {
        self.expected_mdm_id = Some(id.into());
        self
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The token this client sends.
    pub fn token(&self) -> &ContentToken {
        &self.token
    }

    /// The batch limits in force.
    pub fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_assets: self.max_assets.load(Ordering::Relaxed),
            max_serial_numbers: self.max_serial_numbers.load(Ordering::Relaxed),
        }
    }

    fn store_limits(&self, limits: BatchLimits) {
        // `chunks(0)` would panic; a limit of 0 from anywhere means "one".
        self.max_assets
            .store(limits.max_assets.max(1), Ordering::Relaxed);
        self.max_serial_numbers
            .store(limits.max_serial_numbers.max(1), Ordering::Relaxed);
    }

    /// `GET /mdm/v2/service/config`: Apple's current limits and URLs (no token needed).
    pub async fn service_config(&self) -> Result<ServiceConfig, VppError> {
        self.get("/mdm/v2/service/config", &[], Auth::Anonymous)
            .await
    }

    /// Fetches the service config and adopts its batch limits. Apple says the
    /// limits are dynamic and should be synced every 5 minutes.
    pub async fn refresh_limits(&self) -> Result<BatchLimits, VppError> {
        let limits = self.service_config().await?.batch_limits();
        self.store_limits(limits);
        Ok(self.limits())
    }

    /// `GET /mdm/v2/client/config`: the location behind the token.
    pub async fn client_config(&self) -> Result<ClientConfig, VppError> {
        self.get("/mdm/v2/client/config", &[], Auth::Bearer).await
    }

    /// `POST /mdm/v2/client/config`. Fields left `None` are not sent.
    pub async fn set_client_config(
        &self,
        request: &ClientConfigRequest,
    ) -> Result<ClientConfig, VppError> {
        // No `mdmInfo` check: this call is how an MDM (re)claims the token.
        self.send(
            Method::POST,
            "/mdm/v2/client/config",
            &[],
            Some(request),
            Auth::Bearer,
            false,
        )
        .await
    }

    /// Stores tafel's identity (`mdmInfo`, v2's replacement for `clientContext`)
    /// so that a later response naming another MDM reveals a takeover.
    pub async fn set_mdm_info(&self, info: MdmInfo) -> Result<ClientConfig, VppError> {
        self.set_client_config(&ClientConfigRequest {
            mdm_info: Some(info),
            ..ClientConfigRequest::default()
        })
        .await
    }

    /// `GET /mdm/v2/assets?pageIndex=…`: one page of the location's assets.
    pub async fn assets(&self, page_index: u32) -> Result<AssetsPage, VppError> {
        self.get(
            "/mdm/v2/assets",
            &[("pageIndex", page_index.to_string())],
            Auth::Bearer,
        )
        .await
    }

    /// One asset with its current counts, or `None` when the location does not own it.
    pub async fn asset(&self, asset: &AssetRef) -> Result<Option<Asset>, VppError> {
        let page: AssetsPage = self
            .get(
                "/mdm/v2/assets",
                &[
                    ("adamId", asset.adam_id.clone()),
                    ("pricingParam", asset.pricing_param.clone()),
                ],
                Auth::Bearer,
            )
            .await?;
        Ok(page
            .assets
            .into_iter()
            .find(|found| found.adam_id == asset.adam_id))
    }

    /// Every asset, following `nextPageIndex`; restarts when the data changes mid-walk.
    pub async fn all_assets(&self) -> Result<Vec<Asset>, VppError> {
        self.walk("/mdm/v2/assets", |page| self.assets(page)).await
    }

    /// `POST /mdm/v2/assets/associate`: gives each serial number a licence for
    /// each asset. Duplicates are dropped (Apple refuses them with 9703/9705)
    /// and the request is split into batches within [`VppClient::limits`]; one
    /// event id per batch comes back, in order. Nothing is sent when either list
    /// is empty. If a later batch fails, the earlier ones stand: associating an
    /// already associated serial again does not use another licence, so the
    /// caller may simply resubmit the whole request.
    pub async fn associate(
        &self,
        assets: &[AssetRef],
        serials: &[String],
    ) -> Result<Vec<EventId>, VppError> {
        self.manage("/mdm/v2/assets/associate", assets, serials)
            .await
    }

    /// `POST /mdm/v2/assets/disassociate`: frees the licences again; batching as
    /// for [`VppClient::associate`].
    pub async fn disassociate(
        &self,
        assets: &[AssetRef],
        serials: &[String],
    ) -> Result<Vec<EventId>, VppError> {
        self.manage("/mdm/v2/assets/disassociate", assets, serials)
            .await
    }

    async fn manage(
        &self,
        path: &str,
        assets: &[AssetRef],
        serials: &[String],
    ) -> Result<Vec<EventId>, VppError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ManageAssetsRequest<'a> {
            assets: &'a [AssetRef],
            serial_numbers: &'a [String],
        }
        let assets = unique(assets);
        let serials = unique(serials);
        let limits = self.limits();
        let mut events = Vec::new();
        for asset_batch in assets.chunks(limits.max_assets) {
            for serial_batch in serials.chunks(limits.max_serial_numbers) {
                let request = ManageAssetsRequest {
                    assets: asset_batch,
                    serial_numbers: serial_batch,
                };
                let answer: EventResponse = self
                    .send(Method::POST, path, &[], Some(&request), Auth::Bearer, true)
                    .await?;
                tracing::debug!(
                    path,
                    event_id = %answer.event_id,
                    assets = asset_batch.len(),
                    serials = serial_batch.len(),
                    "Apps and Books event submitted"
                );
                events.push(answer.event_id);
            }
        }
        Ok(events)
    }

    /// `GET /mdm/v2/status?eventId=…`: the progress of an associate/disassociate.
    pub async fn event_status(&self, event_id: &EventId) -> Result<EventStatus, VppError> {
        self.get(
            "/mdm/v2/status",
            &[("eventId", event_id.0.clone())],
            Auth::Bearer,
        )
        .await
    }

    /// Polls [`VppClient::event_status`] every `poll_every` until the event is
    /// no longer pending; [`VppError::EventPending`] once `max_wait` would be
    /// exceeded. A finished event may still be `FAILED` with `failures`.
    pub async fn wait_for_event(
        &self,
        event_id: &EventId,
        poll_every: Duration,
        max_wait: Duration,
    ) -> Result<EventStatus, VppError> {
        let started = tokio::time::Instant::now();
        loop {
            let status = self.event_status(event_id).await?;
            if status.is_finished() {
                return Ok(status);
            }
            if started.elapsed() + poll_every > max_wait {
                return Err(VppError::EventPending {
                    event_id: event_id.clone(),
                    last: Box::new(status),
                });
            }
            tokio::time::sleep(poll_every).await;
        }
    }

    /// `GET /mdm/v2/assignments`: one page of the assignments matching `filter`.
    pub async fn assignments(
        &self,
        filter: &AssignmentFilter,
        page_index: u32,
    ) -> Result<AssignmentsPage, VppError> {
        let mut query = filter.query();
        query.push(("pageIndex", page_index.to_string()));
        self.get("/mdm/v2/assignments", &query, Auth::Bearer).await
    }

    /// Every assignment matching `filter`, following `nextPageIndex`.
    pub async fn all_assignments(
        &self,
        filter: &AssignmentFilter,
    ) -> Result<Vec<Assignment>, VppError> {
        self.walk("/mdm/v2/assignments", |page| self.assignments(filter, page))
            .await
    }

    /// Pages through a listing from page 0. When `versionId` changes between
    /// pages the records may have shifted between pages (missed or doubled), so
    /// the walk starts over, at most [`MAX_WALKS`] times.
    async fn walk<P, F, Fut>(&self, endpoint: &str, mut fetch: F) -> Result<Vec<P::Item>, VppError>
    where
        P: Paged,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<P, VppError>>,
    {
        'walk: for walk in 1..=MAX_WALKS {
            let mut items = Vec::new();
            let mut page_index = 0;
            let mut first_version: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let page = fetch(page_index).await?;
                let (page_items, next, version) = page.into_parts();
                match (&first_version, version) {
                    (None, version) => first_version = version,
                    (Some(first), Some(version)) if *first != version => {
                        tracing::info!(endpoint, walk, "data changed while paging; starting over");
                        continue 'walk;
                    }
                    _ => {}
                }
                items.extend(page_items);
                match next {
                    None => return Ok(items),
                    Some(next) if next <= page_index => {
                        return Err(VppError::Malformed {
                            endpoint: endpoint.to_owned(),
                            detail: format!("nextPageIndex {next} after page {page_index}"),
                        })
                    }
                    Some(next) => page_index = next,
                }
            }
            return Err(VppError::Malformed {
                endpoint: endpoint.to_owned(),
                detail: format!("more than {MAX_PAGES} pages"),
            });
        }
        Err(VppError::DataChanged {
            endpoint: endpoint.to_owned(),
            attempts: MAX_WALKS,
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        auth: Auth,
    ) -> Result<T, VppError> {
        self.send::<T, ()>(Method::GET, path, query, None, auth, true)
            .await
    }

    /// Sends a request, retrying as [`RetryPolicy`] allows, and decodes the answer.
    async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        auth: Auth,
        check_mdm: bool,
    ) -> Result<T, VppError> {
        let url = format!("{}{path}", self.base_url);
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.attempt(&method, &url, query, body, auth).await {
                Ok(value) => return self.decode(path, value, check_mdm),
                Err(failed) => failed,
            };
            let retryable = failed.retry_allowed
                && match &failed.error {
                    VppError::Http(_) => true,
                    other => other.is_retryable(),
                };
            let delay = failed
                .retry_after
                .unwrap_or_else(|| self.retry.backoff(attempt));
            if !retryable || attempt >= max_attempts || delay > self.retry.max_retry_after {
                return Err(with_retry_after(failed.error, failed.retry_after));
            }
            tracing::warn!(
                path,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %failed.error,
                "Apps and Books request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP round trip: the answer's JSON, or why it failed.
    async fn attempt<B: Serialize + ?Sized>(
        &self,
        method: &Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        auth: Auth,
    ) -> Result<serde_json::Value, Failed> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if auth == Auth::Bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {}", self.token.bearer()));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        // Only a GET may be repeated after a failure that could have reached
        // Apple; a POST is repeated only when the connection never opened.
        let idempotent = *method == Method::GET;
        let transport = |error: reqwest::Error| Failed {
            retry_allowed: idempotent || error.is_connect(),
            error: VppError::Http(error),
            retry_after: None,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let raw = response.bytes().await.map_err(transport)?;
        let json: Option<serde_json::Value> = if raw.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&raw).ok()
        };
        if let Some(error) = answer_error(status, json.as_ref(), &raw) {
            return Err(Failed {
                error,
                retry_after,
                retry_allowed: true,
            });
        }
        json.ok_or_else(|| Failed {
            error: VppError::Malformed {
                endpoint: url.to_owned(),
                detail: format!("{status} without a JSON body"),
            },
            retry_after: None,
            retry_allowed: false,
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        value: serde_json::Value,
        check_mdm: bool,
    ) -> Result<T, VppError> {
        if let (true, Some(expected), Some(info)) = (
            check_mdm,
            &self.expected_mdm_id,
            value.get("mdmInfo").filter(|info| !info.is_null()),
        ) {
            let info: MdmInfo =
                serde_json::from_value(info.clone()).map_err(|e| VppError::Malformed {
                    endpoint: path.to_owned(),
                    detail: format!("mdmInfo: {e}"),
                })?;
            if info.id != *expected {
                return Err(VppError::OtherMdm(Box::new(info)));
            }
        }
        serde_json::from_value(value).map_err(|e| VppError::Malformed {
            endpoint: path.to_owned(),
            detail: e.to_string(),
        })
    }
}

/// A listing page, for [`VppClient::walk`].
trait Paged {
    type Item;
    /// The records, `nextPageIndex` and `versionId`.
    fn into_parts(self) -> (Vec<Self::Item>, Option<u32>, Option<String>);
}

impl Paged for AssetsPage {
    type Item = Asset;
    fn into_parts(self) -> (Vec<Asset>, Option<u32>, Option<String>) {
        (self.assets, self.next_page_index, self.version_id)
    }
}

impl Paged for AssignmentsPage {
    type Item = Assignment;
    fn into_parts(self) -> (Vec<Assignment>, Option<u32>, Option<String>) {
        (self.assignments, self.next_page_index, self.version_id)
    }
}

/// The items without repeats, first occurrence kept.
fn unique<T: Clone + Ord>(items: &[T]) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .filter(|item| seen.insert(*item))
        .cloned()
        .collect()
}

/// `Retry-After` as seconds, or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((when - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

fn with_retry_after(error: VppError, retry_after: Option<Duration>) -> VppError {
    match error {
        VppError::RateLimited { retry_after: None } => VppError::RateLimited { retry_after },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        let pauses: Vec<_> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    fn page(index: u32, next: Option<u32>, version: &str) -> AssetsPage {
        serde_json::from_value(serde_json::json!({
            "assets": [{"adamId": format!("{index}"), "pricingParam": "STDQ"}],
            "currentPageIndex": index,
            "nextPageIndex": next,
            "totalPages": 2,
            "versionId": version,
        }))
        .unwrap()
    }

    fn test_token() -> ContentToken {
        use base64::Engine as _;
        let json = r#"{"token":"t","expDate":"2999-01-01T00:00:00+0000","orgName":"Test"}"#;
        let file = base64::engine::general_purpose::STANDARD.encode(json);
        ContentToken::parse(&file).unwrap()
    }

    fn offline_client() -> VppClient {
        VppClient::new("http://127.0.0.1:9", test_token(), Duration::from_secs(1)).unwrap()
    }

    #[tokio::test]
    async fn a_walk_restarts_when_the_version_changes_and_gives_up_eventually() {
        let client = offline_client();
        // The data changes once between page 0 and page 1, then holds still.
        let mut calls = 0;
        let assets = client
            .walk("/mdm/v2/assets", |index| {
                calls += 1;
                let version = if calls == 1 { "v1" } else { "v2" };
                let next = (index == 0).then_some(1);
                std::future::ready(Ok(page(index, next, version)))
            })
            .await
            .unwrap();
        assert_eq!(assets.len(), 2);
        assert_eq!(calls, 4);

        let mut calls = 0;
        let error = client
            .walk("/mdm/v2/assets", |index| {
                calls += 1;
                let next = (index == 0).then_some(1);
                std::future::ready(Ok(page(index, next, &format!("v{calls}"))))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(error, VppError::DataChanged { attempts: 3, .. }),
            "{error}"
        );

        let error = client
            .walk("/mdm/v2/assets", |index| {
                std::future::ready(Ok(page(index, Some(index), "v1")))
            })
            .await
            .unwrap_err();
        assert!(matches!(error, VppError::Malformed { .. }), "{error}");
        assert_eq!(client.requests_made(), 0);
    }

    #[test]
    fn base_urls_are_normalised_and_checked() {
        let token = test_token();
        let client = VppClient::new(
            "https://vpp.itunes.apple.com/mdm/v2/",
            token.clone(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(client.base_url, APPLE_BASE_URL);
        assert!(matches!(
            VppClient::new("not a url", token, Duration::from_secs(1)),
            Err(VppError::BaseUrl(_))
        ));
    }

    #[test]
    fn unique_keeps_first_occurrences_in_order() {
        let serials = ["B", "A", "B", "C", "A"].map(String::from);
        assert_eq!(unique(&serials), ["B", "A", "C"]);
    }
}
