//! A local Apps and Books API v2 for tests and demos: plain HTTP on
//! 127.0.0.1, the same paths, JSON field names and error numbers as
//! `https://vpp.itunes.apple.com/mdm/v2`, with licence counts, assignments,
//! asynchronous events, paging, the client config's `mdmInfo`, and injectable
//! rate limits and server errors.
//!
//! The JSON is written here with Apple's literal field names rather than with
//! the client's serde types, so a misspelt field in the client fails its tests.
//! Like the APNs simulator, the server runs on a thread of its own inside its
//! own actix `System`: it works under any test runtime and stops when the
//! [`VppSim`] is dropped.
//!
//! Simplifications: one location; device (serial number) assignments only
//! (`clientUserIds` are ignored); an event applies all its changes when it
//! finishes; disassociating a licence that is not assigned counts as done.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The library id the simulator reports as `uId`.
pub const SIM_UID: &str = "2049025000431439";

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum VppSimError {
    /// Binding or spawning failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread ended before the server started.
    #[error("the simulator thread stopped during start")]
    Stopped,
}

/// A `.vpptoken` file as Apple School Manager hands it out: base64 of
/// `{"token", "expDate", "orgName"}`.
pub fn token_file(org_name: &str, expires_at: DateTime<Utc>) -> String {
    let json = json!({
        "token": STANDARD.encode(format!("sim-secret-{org_name}-{}", expires_at.timestamp())),
        "expDate": expires_at.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
        "orgName": org_name,
    });
    STANDARD.encode(json.to_string())
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
    /// Whether an `Authorization` header came with it.
    pub authorized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    Valid,
    Expired,
    Revoked,
}

#[derive(Debug, Clone)]
struct SimAsset {
    total: i64,
    product_type: &'static str,
    device_assignable: bool,
    revocable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Associate,
    Disassociate,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Associate => "ASSOCIATE",
            Kind::Disassociate => "DISASSOCIATE",
        }
    }
}

#[derive(Debug, Clone)]
struct Finished {
    completed: usize,
    failures: Vec<Value>,
}

#[derive(Debug, Clone)]
struct SimEvent {
    kind: Kind,
    assets: Vec<(String, String)>,
    serials: Vec<String>,
    polls_left: u32,
    finished: Option<Finished>,
}

impl SimEvent {
    fn requested(&self) -> usize {
        self.assets.len() * self.serials.len()
    }
}

/// Everything the simulated location holds.
struct State {
    token: String,
    token_state: TokenState,
    /// Tokens replaced by a newer one of the location: Apple revokes them (9625).
    replaced_tokens: Vec<String>,
    /// The location's library id (`uId`) and name.
    u_id: String,
    location_name: String,
    /// (adamId, pricingParam) → asset.
    assets: BTreeMap<(String, String), SimAsset>,
    /// (adamId, pricingParam, serialNumber).
    assignments: BTreeSet<(String, String, String)>,
    mdm_info: Option<Value>,
    notification_url: Option<String>,
    notification_types: Vec<String>,
    events: HashMap<String, SimEvent>,
    next_event: u64,
    /// Bumped on every write; reported as `versionId`.
    version: u64,
    failures: VecDeque<(u16, Option<u64>)>,
    requests: Vec<SimRequest>,
    page_size: usize,
    polls_until_complete: u32,
    max_assets: usize,
    max_serial_numbers: usize,
}

/// An Apple-style refusal: HTTP status plus `errorNumber`/`errorMessage`.
struct Refusal {
    status: u16,
    number: i64,
    message: &'static str,
}

fn refuse(status: u16, number: i64, message: &'static str) -> Refusal {
    Refusal {
        status,
        number,
        message,
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide what the simulator holds.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running simulator; dropping it stops the server.
pub struct VppSim {
    /// `http://127.0.0.1:<port>`: use as the client's base URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl VppSim {
    /// Starts a simulator that accepts `token` (the whole `.vpptoken` text, as
    /// sent after `Bearer `) on 127.0.0.1 with a free port. Events finish at
    /// once; pages hold 100 records; limits are Apple's documented 25 assets
    /// and 1000 serial numbers.
    pub fn start(token: &str) -> Result<Self, VppSimError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            token_state: TokenState::Valid,
            replaced_tokens: Vec::new(),
            u_id: SIM_UID.to_owned(),
            location_name: "Simulierte Schule".to_owned(),
            assets: BTreeMap::new(),
            assignments: BTreeSet::new(),
            mdm_info: None,
            notification_url: None,
            notification_types: Vec::new(),
            events: HashMap::new(),
            next_event: 1,
            version: 1,
            failures: VecDeque::new(),
            requests: Vec::new(),
            page_size: 100,
            polls_until_complete: 0,
            max_assets: 25,
            max_serial_numbers: 1000,
        }));
        let data = web::Data::from(state.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // A thread of its own with an actix System: independent of whatever
        // runtime (or none) the caller runs in.
        std::thread::Builder::new()
            .name("vpp-sim".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 << 20))
                            .default_service(web::to(answer))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener);
                    let server = match server {
                        Ok(server) => server.run(),
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    if started_tx.send(Ok(server.handle())).is_err() {
                        return;
                    }
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "Apps and Books simulator stopped");
                    }
                });
            })?;
        let handle = started_rx.recv().map_err(|_| VppSimError::Stopped)??;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds (or re-counts) a device-assignable, revocable `STDQ` app with `total` licences.
    pub fn add_asset(&self, adam_id: &str, total: i64) {
        self.put_asset(adam_id, "STDQ", total, "App", true);
    }

    /// Adds a book: not device-assignable, not revocable.
    pub fn add_book(&self, adam_id: &str, total: i64) {
        self.put_asset(adam_id, "STDQ", total, "Book", false);
    }

    fn put_asset(
        &self,
        adam_id: &str,
        pricing: &str,
        total: i64,
        product_type: &'static str,
        device: bool,
    ) {
        let mut state = self.state();
        state.assets.insert(
            (adam_id.to_owned(), pricing.to_owned()),
            SimAsset {
                total,
                product_type,
                device_assignable: device,
                revocable: device,
            },
        );
        state.version += 1;
    }

    /// Current `(adamId, serialNumber)` assignments, sorted.
    pub fn assignments(&self) -> Vec<(String, String)> {
        self.state()
            .assignments
            .iter()
            .map(|(adam, _, serial)| (adam.clone(), serial.clone()))
            .collect()
    }

    /// `(assigned, total)` licences of a `STDQ` asset.
    pub fn counts(&self, adam_id: &str) -> Option<(i64, i64)> {
        let state = self.state();
        let key = (adam_id.to_owned(), "STDQ".to_owned());
        let asset = state.assets.get(&key)?;
        Some((state.assigned(&key.0, &key.1), asset.total))
    }

    /// Takes a device's licence back at Apple's side, as when a content manager or
    /// another MDM sharing the location disassociates it: the next assignments
    /// listing no longer has it and the counts free it.
    pub fn revoke_licence(&self, adam_id: &str, serial: &str) -> bool {
        let mut state = self.state();
        let removed =
            state
                .assignments
                .remove(&(adam_id.to_owned(), "STDQ".to_owned(), serial.to_owned()));
        if removed {
            state.version += 1;
        }
        removed
    }

    /// Gives a device a licence outside tafel (another MDM or Apple Configurator on the
    /// same location), using one of the free ones; false when none is free.
    pub fn assign_elsewhere(&self, adam_id: &str, serial: &str) -> bool {
        let mut state = self.state();
        let key = (adam_id.to_owned(), "STDQ".to_owned());
        let Some(total) = state.assets.get(&key).map(|asset| asset.total) else {
            return false;
        };
        if state.assigned(&key.0, &key.1) >= total {
            return false;
        }
        state.assignments.insert((key.0, key.1, serial.to_owned()));
        state.version += 1;
        true
    }

    /// Writes another MDM's identity into the client config, as if it had
    /// taken over the token.
    pub fn set_mdm_info(&self, id: &str, name: &str, metadata: &str) {
        self.state().mdm_info = Some(json!({"id": id, "name": name, "metadata": metadata}));
    }

    /// The `mdmInfo` last stored, as `(id, name, metadata)`.
    pub fn mdm_info(&self) -> Option<(String, String, String)> {
        let state = self.state();
        let info = state.mdm_info.as_ref()?;
        let field = |key: &str| info[key].as_str().unwrap_or_default().to_owned();
        Some((field("id"), field("name"), field("metadata")))
    }

    /// A content manager downloads a new token for the location (a renewal): `token`
    /// is accepted from now on, and the one it replaces is revoked (9625).
    pub fn renew_token(&self, token: &str) {
        let mut state = self.state();
        let old = std::mem::replace(&mut state.token, token.to_owned());
        state.replaced_tokens.push(old);
        state.token_state = TokenState::Valid;
    }

    /// The location's library id (`uId`, default [`SIM_UID`]) and name.
    pub fn set_location(&self, u_id: &str, name: &str) {
        let mut state = self.state();
        state.u_id = u_id.to_owned();
        state.location_name = name.to_owned();
    }

    /// From now on every authenticated call fails with 9621 (token expired).
    pub fn expire_token(&self) {
        self.state().token_state = TokenState::Expired;
    }

    /// From now on every authenticated call fails with 9625 (token revoked).
    pub fn revoke_token(&self) {
        self.state().token_state = TokenState::Revoked;
    }

    /// Answers the next `n` requests (any path) with `status` and, when given,
    /// `Retry-After: <seconds>`. Bodies: 429 → 9646, 500 → 9603, 503 → 9729,
    /// anything else an HTML page as a proxy would send.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.state()
            .failures
            .extend(std::iter::repeat_n((status, retry_after), n));
    }

    /// Requests received for `path` (e.g. `/mdm/v2/assets/associate`), failed ones included.
    pub fn requests(&self, path: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|request| request.path == path)
            .count()
    }

    /// Every request received, in order.
    pub fn request_log(&self) -> Vec<SimRequest> {
        self.state().requests.clone()
    }

    /// Records per page of assets and assignments.
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = size.max(1);
    }

    /// Status polls that answer `PENDING` before an event finishes (0: at once).
    pub fn set_polls_until_complete(&self, polls: u32) {
        self.state().polls_until_complete = polls;
    }

    /// The `maxAssets` and `maxSerialNumbers` enforced and announced in `service/config`.
    pub fn set_limits(&self, max_assets: usize, max_serial_numbers: usize) {
        let mut state = self.state();
        state.max_assets = max_assets;
        state.max_serial_numbers = max_serial_numbers;
    }
}

impl Drop for VppSim {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for the end.
        drop(self.handle.stop(false));
    }
}

impl State {
    fn assigned(&self, adam: &str, pricing: &str) -> i64 {
        let count = self
            .assignments
            .iter()
            .filter(|(a, p, _)| a == adam && p == pricing)
            .count();
        i64::try_from(count).unwrap_or(i64::MAX)
    }

    fn version_id(&self) -> String {
        format!("sim-version-{}", self.version)
    }

    /// Fields Apple adds to every answer.
    fn common(&self, mut body: Value) -> Value {
        if let Some(object) = body.as_object_mut() {
            object.insert("uId".into(), self.u_id.clone().into());
            if let Some(info) = &self.mdm_info {
                object.insert("mdmInfo".into(), info.clone());
            }
        }
        body
    }

    fn check_token(&self, req: &HttpRequest) -> Result<(), Refusal> {
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                refuse(
                    401,
                    9722,
                    "This request contains an invalid authorization header.",
                )
            })?;
        if self.replaced_tokens.iter().any(|old| old == bearer) {
            return Err(refuse(401, 9625, "The server has revoked the sToken."));
        }
        if bearer != self.token {
            return Err(refuse(401, 9622, "Invalid authentication token."));
        }
        match self.token_state {
            TokenState::Valid => Ok(()),
            TokenState::Expired => Err(refuse(
                401,
                9621,
                "The token has expired. Generate a new token in Apple School Manager.",
            )),
            TokenState::Revoked => Err(refuse(401, 9625, "The server has revoked the sToken.")),
        }
    }

    fn service_config(&self) -> Value {
        json!({
            "limits": {
                "maxAssets": self.max_assets,
                "maxClientUserIds": 1000,
                "maxSerialNumbers": self.max_serial_numbers,
                "maxRevokeClientUserIds": 100,
                "maxRevokeSerialNumbers": 100,
                "maxUsers": 100,
                "maxNotificationLength": 512,
                "maxMdmNameLength": 100,
                "maxMdmMetadataLength": 255,
                "maxMdmIdLength": 100
            },
            "notificationTypes": ["ASSET_COUNT", "ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED"],
            "urls": {
                "contentMetadataLookup": "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup"
            }
        })
    }

    fn client_config(&self) -> Value {
        let mut body = json!({
            "countryISO2ACode": "DE",
            "defaultPlatform": "volumestore",
            "locationName": self.location_name,
            "subscribedNotificationTypes": self.notification_types,
            "websiteURL": "https://school.apple.com",
        });
        if let (Some(url), Some(object)) = (&self.notification_url, body.as_object_mut()) {
            object.insert("notificationUrl".into(), url.clone().into());
        }
        self.common(body)
    }

    fn set_client_config(&mut self, body: Option<&Value>) -> Result<Value, Refusal> {
        let body = body
            .and_then(Value::as_object)
            .ok_or_else(|| refuse(400, 9602, "Invalid argument."))?;
        if let Some(info) = body.get("mdmInfo") {
            let complete = ["id", "name", "metadata"]
                .iter()
                .all(|key| info.get(key).is_some_and(Value::is_string));
            if !complete {
                return Err(refuse(
                    400,
                    9723,
                    "You must provide a name, ID, and metadata when setting the device management information.",
                ));
            }
            self.mdm_info = Some(info.clone());
        }
        let url = body.get("notificationUrl").and_then(Value::as_str);
        let auth = body.get("notificationAuthToken").and_then(Value::as_str);
        match (url, auth) {
            (Some(url), Some(_)) => self.notification_url = Some(url.to_owned()),
            (None, None) => {}
            _ => {
                return Err(refuse(
                    400,
                    9710,
                    "Both the notification URL and the authentication token are necessary.",
                ))
            }
        }
        if let Some(types) = body.get("notificationTypes").and_then(Value::as_array) {
            self.notification_types = types
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
        }
        Ok(self.client_config())
    }

    fn page<T: Clone>(
        &self,
        items: &[T],
        query: &BTreeMap<String, String>,
    ) -> Result<(Vec<T>, Value), Refusal> {
        let index: usize = match query.get("pageIndex") {
            Some(text) => text
                .parse()
                .map_err(|_| refuse(400, 9602, "Invalid argument."))?,
            None => 0,
        };
        let pages = items.len().div_ceil(self.page_size).max(1);
        if index >= pages {
            return Err(refuse(
                400,
                9650,
                "The provided page index must be greater than 0, and less than the total number of pages.",
            ));
        }
        let slice: Vec<T> = items
            .iter()
            .skip(index * self.page_size)
            .take(self.page_size)
            .cloned()
            .collect();
        let mut meta = json!({
            "currentPageIndex": index,
            "size": slice.len(),
            "totalPages": pages,
            "versionId": self.version_id(),
        });
        if index + 1 < pages {
            if let Some(object) = meta.as_object_mut() {
                object.insert("nextPageIndex".into(), (index + 1).into());
            }
        }
        Ok((slice, meta))
    }

    fn assets(&self, query: &BTreeMap<String, String>) -> Result<Value, Refusal> {
        let matching: Vec<Value> = self
            .assets
            .iter()
            .filter(|((adam, pricing), _)| {
                query.get("adamId").is_none_or(|want| want == adam)
                    && query.get("pricingParam").is_none_or(|want| want == pricing)
            })
            .map(|((adam, pricing), asset)| {
                let assigned = self.assigned(adam, pricing);
                json!({
                    "adamId": adam,
                    "pricingParam": pricing,
                    "productType": asset.product_type,
                    "assignedCount": assigned,
                    "availableCount": asset.total - assigned,
                    "retiredCount": 0,
                    "totalCount": asset.total,
                    "deviceAssignable": asset.device_assignable,
                    "revocable": asset.revocable,
                    "supportedPlatforms": ["iOS"],
                })
            })
            .collect();
        let (slice, mut body) = self.page(&matching, query)?;
        body["assets"] = Value::Array(slice);
        Ok(self.common(body))
    }

    fn assignment_page(&self, query: &BTreeMap<String, String>) -> Result<Value, Refusal> {
        let matching: Vec<Value> = self
            .assignments
            .iter()
            .filter(|(adam, pricing, serial)| {
                query.get("adamId").is_none_or(|want| want == adam)
                    && query.get("pricingParam").is_none_or(|want| want == pricing)
                    && query.get("serialNumber").is_none_or(|want| want == serial)
            })
            .map(|(adam, pricing, serial)| {
                json!({"adamId": adam, "pricingParam": pricing, "serialNumber": serial})
            })
            .collect();
        let (slice, mut body) = self.page(&matching, query)?;
        body["assignments"] = Value::Array(slice);
        Ok(self.common(body))
    }

    fn manage(&mut self, kind: Kind, body: Option<&Value>) -> Result<Value, Refusal> {
        let body = body.ok_or_else(|| refuse(400, 9602, "Invalid argument."))?;
        let assets: Vec<(String, String)> = body
            .get("assets")
            .and_then(Value::as_array)
            .map(|assets| {
                assets
                    .iter()
                    .filter_map(|asset| {
                        let adam = asset.get("adamId")?.as_str()?.to_owned();
                        let pricing = asset
                            .get("pricingParam")
                            .and_then(Value::as_str)
                            .unwrap_or("STDQ")
                            .to_owned();
                        Some((adam, pricing))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let serials: Vec<String> = body
            .get("serialNumbers")
            .and_then(Value::as_array)
            .map(|serials| {
                serials
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if assets.is_empty() {
            return Err(refuse(400, 9718, "This request doesn't contain an asset."));
        }
        if serials.is_empty() {
            return Err(refuse(
                400,
                9719,
                "Either clientUserIds or serialNumbers are required arguments.",
            ));
        }
        if assets.len() > self.max_assets {
            return Err(refuse(
                400,
                9700,
                "This request exceeds the maximum assets limit.",
            ));
        }
        if serials.len() > self.max_serial_numbers {
            return Err(refuse(
                400,
                9702,
                "This request exceeds the maximum serialNumbers limit.",
            ));
        }
        if assets.iter().collect::<BTreeSet<_>>().len() != assets.len() {
            return Err(refuse(400, 9703, "This request contains duplicate assets."));
        }
        if serials.iter().collect::<BTreeSet<_>>().len() != serials.len() {
            return Err(refuse(
                400,
                9705,
                "This request contains duplicate serialNumbers.",
            ));
        }
        if kind == Kind::Associate
            && assets.iter().any(|key| {
                self.assets
                    .get(key)
                    .is_some_and(|asset| !asset.device_assignable)
            })
        {
            return Err(refuse(
                400,
                9707,
                "The asset in the request isn't device-assignable.",
            ));
        }
        let id = format!("sim-event-{:04}", self.next_event);
        self.next_event += 1;
        let mut event = SimEvent {
            kind,
            assets,
            serials,
            polls_left: self.polls_until_complete,
            finished: None,
        };
        if event.polls_left == 0 {
            event.finished = Some(self.apply(&event));
        }
        self.events.insert(id.clone(), event);
        Ok(self.common(json!({"eventId": id})))
    }

    /// Carries out an event; licence counts never go above the total.
    fn apply(&mut self, event: &SimEvent) -> Finished {
        let mut completed = 0;
        let mut failures = Vec::new();
        for (adam, pricing) in &event.assets {
            match event.kind {
                Kind::Associate => {
                    let total = self
                        .assets
                        .get(&(adam.clone(), pricing.clone()))
                        .map_or(0, |asset| asset.total);
                    let mut available = total - self.assigned(adam, pricing);
                    let mut short = Vec::new();
                    for serial in &event.serials {
                        let key = (adam.clone(), pricing.clone(), serial.clone());
                        if self.assignments.contains(&key) {
                            completed += 1;
                        } else if available > 0 {
                            self.assignments.insert(key);
                            available -= 1;
                            completed += 1;
                        } else {
                            short.push(serial.clone());
                        }
                    }
                    if !short.is_empty() {
                        failures.push(json!({
                            "errorNumber": 9709,
                            "errorMessage": "There aren't enough assets available to complete this association.",
                            "errorInfo": {
                                "assets": [{"adamId": adam, "pricingParam": pricing}],
                                "serialNumbers": short,
                            }
                        }));
                    }
                }
                Kind::Disassociate => {
                    for serial in &event.serials {
                        self.assignments
                            .remove(&(adam.clone(), pricing.clone(), serial.clone()));
                        completed += 1;
                    }
                }
            }
        }
        self.version += 1;
        Finished {
            completed,
            failures,
        }
    }

    fn status(&mut self, query: &BTreeMap<String, String>) -> Result<Value, Refusal> {
        let id = query
            .get("eventId")
            .ok_or_else(|| refuse(400, 9602, "Invalid argument."))?;
        let mut event = self
            .events
            .get(id)
            .cloned()
            .ok_or_else(|| refuse(400, 9708, "Unable to find eventId."))?;
        if event.finished.is_none() {
            if event.polls_left > 0 {
                event.polls_left -= 1;
            } else {
                event.finished = Some(self.apply(&event));
            }
            self.events.insert(id.clone(), event.clone());
        }
        let body = match &event.finished {
            None => json!({
                "eventStatus": "PENDING",
                "eventType": event.kind.name(),
                "numCompleted": 0,
                "numRequested": event.requested(),
            }),
            Some(done) => {
                let mut body = json!({
                    "eventStatus": if done.failures.is_empty() { "COMPLETE" } else { "FAILED" },
                    "eventType": event.kind.name(),
                    "numCompleted": done.completed,
                    "numRequested": event.requested(),
                });
                if !done.failures.is_empty() {
                    body["failures"] = Value::Array(done.failures.clone());
                }
                body
            }
        };
        Ok(self.common(body))
    }
}

/// The one handler: records, injects failures, checks the token, routes.
async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = lock(&state);
    let query: BTreeMap<String, String> =
        web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let path = req.path().to_owned();
    state.requests.push(SimRequest {
        method: req.method().to_string(),
        path: path.clone(),
        query: query.clone(),
        body: json.clone(),
        authorized: req.headers().contains_key(AUTHORIZATION),
    });
    if let Some((status, retry_after)) = state.failures.pop_front() {
        return injected_failure(status, retry_after);
    }
    let method = req.method().clone();
    if method == Method::GET && path == "/mdm/v2/service/config" {
        return success(state.service_config());
    }
    if let Err(refusal) = state.check_token(&req) {
        return refused(refusal);
    }
    if method == Method::POST {
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !json_type {
            return refused(refuse(
                415,
                9727,
                "This request contains an unsupported Content-Type for the requested endpoint.",
            ));
        }
    }
    let result = match (method.as_str(), path.as_str()) {
        ("GET", "/mdm/v2/client/config") => Ok(state.client_config()),
        ("POST", "/mdm/v2/client/config") => state.set_client_config(json.as_ref()),
        ("GET", "/mdm/v2/assets") => state.assets(&query),
        ("POST", "/mdm/v2/assets/associate") => state.manage(Kind::Associate, json.as_ref()),
        ("POST", "/mdm/v2/assets/disassociate") => state.manage(Kind::Disassociate, json.as_ref()),
        ("GET", "/mdm/v2/status") => state.status(&query),
        ("GET", "/mdm/v2/assignments") => state.assignment_page(&query),
        (
            _,
            "/mdm/v2/client/config"
            | "/mdm/v2/assets"
            | "/mdm/v2/assets/associate"
            | "/mdm/v2/assets/disassociate"
            | "/mdm/v2/status"
            | "/mdm/v2/assignments",
        ) => Err(refuse(
            405,
            9726,
            "This request contains an unsupported HTTP method for the requested endpoint.",
        )),
        _ => return HttpResponse::NotFound().finish(),
    };
    match result {
        Ok(body) => success(body),
        Err(refusal) => refused(refusal),
    }
}

fn success(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

fn refused(refusal: Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({
        "errorNumber": refusal.number,
        "errorMessage": refusal.message,
    }))
}

fn injected_failure(status: u16, retry_after: Option<u64>) -> HttpResponse {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(code);
    if let Some(seconds) = retry_after {
        response.insert_header((RETRY_AFTER, seconds.to_string()));
    }
    let apple =
        |number: i64, message: &str| json!({"errorNumber": number, "errorMessage": message});
    match status {
        429 => response.json(apple(
            9646,
            "There are too many requests for the current organization.",
        )),
        500 => response.json(apple(9603, "Internal error.")),
        503 => response.json(apple(
            9729,
            "The service is temporarily unavailable. Try again later.",
        )),
        _ => response
            .content_type("text/html")
            .body("<html><body><h1>Bad Gateway</h1></body></html>"),
    }
}
