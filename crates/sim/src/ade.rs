//! A local Apple device assignment service (Automated Device Enrollment) for
//! tests and benchmarks: checks the OAuth signature of `GET /session` against
//! its server token, hands out session tokens, requires the session and
//! protocol headers, and serves devices, cursors, sync events and profiles.
//!
//! The simulator builds and reads its JSON with literal field names rather
//! than the client's types, so a misspelt name on the client side fails here
//! instead of agreeing with itself. Errors are Apple's documented statuses and codes
//! (a profile UUID Apple does not know: 404, as "Assign a Profile" documents); where
//! Apple documents a rule but no code for breaking it, the simulator's own code is
//! marked as such below.
//!
//! Like the APNs simulator it runs on its own thread inside its own actix
//! `System`, so it works the same from any test runtime and outlives none of
//! them; dropping the [`AdeSim`] stops it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use tafel::ade::oauth;
use tafel::ade::token::OAuthTokens;

/// Apple's default `limit` for fetch and sync.
const DEFAULT_LIMIT: usize = 100;
/// Apple's maximum `limit`, and the most serials per profile assignment.
const MAX_LIMIT: usize = 1000;
const JSON_UTF8: &str = "application/json;charset=UTF8";
/// Profile keys Apple's `Profile` object documents; anything else is refused
/// (Apple would ignore it silently, which would hide a client typo).
const PROFILE_KEYS: &[&str] = &[
    "profile_name",
    "url",
    "configuration_web_url",
    "allow_pairing",
    "is_supervised",
    "is_multi_user",
    "is_mandatory",
    "is_mdm_removable",
    "is_return_to_service",
    "await_device_configured",
    "auto_advance_setup",
    "do_not_use_profile_from_backup",
    "department",
    "support_phone_number",
    "support_email_address",
    "org_magic",
    "anchor_certs",
    "supervising_host_certs",
    "skip_setup_items",
    "language",
    "region",
    "devices",
];
/// Serial-number alphabet: digits and the letters Apple uses in serials.
const SERIAL_ALPHABET: &[u8] = b"0123456789CDFGHJKLMNPQRTVWXY";
/// Models the generator cycles through: model, description, colour, os, family.
const MODELS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "iPad (9th generation)",
        "IPAD 10.2 WI-FI 64GB SPACE GRAY",
        "SPACE GRAY",
        "iPadOS",
        "iPad",
    ),
    (
        "iPad (10th generation)",
        "IPAD 10.9 WI-FI 64GB BLUE",
        "BLUE",
        "iPadOS",
        "iPad",
    ),
    (
        "iPad Air (5th generation)",
        "IPAD AIR WI-FI 64GB STARLIGHT",
        "STARLIGHT",
        "iPadOS",
        "iPad",
    ),
    (
        "iPad mini (6th generation)",
        "IPAD MINI WI-FI 64GB PURPLE",
        "PURPLE",
        "iPadOS",
        "iPad",
    ),
    (
        "MacBook Air (M2, 2022)",
        "MBA 13.6 M2 8C CPU 8C GPU 8GB 256GB MIDNIGHT",
        "MIDNIGHT",
        "OSX",
        "Mac",
    ),
];

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdeSimError {
    /// Binding or spawning failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread ended before the server started.
    #[error("the simulator thread stopped during start")]
    Stopped,
}

/// One request as the simulator answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// A device's enrollment-profile state in the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    /// The assigned profile.
    pub profile_uuid: Option<String>,
    /// `empty`, `assigned`, `pushed` or `removed`.
    pub profile_status: String,
}

#[derive(Debug, Clone)]
struct SimDevice {
    serial: String,
    model: &'static str,
    description: &'static str,
    color: &'static str,
    os: &'static str,
    family: &'static str,
    asset_tag: Option<String>,
    profile_status: &'static str,
    profile_uuid: Option<String>,
    profile_assign_time: Option<DateTime<Utc>>,
    profile_push_time: Option<DateTime<Utc>>,
    assigned_at: DateTime<Utc>,
}

impl SimDevice {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("serial_number".into(), self.serial.clone().into());
        map.insert("model".into(), self.model.into());
        map.insert("description".into(), self.description.into());
        map.insert("color".into(), self.color.into());
        map.insert("profile_status".into(), self.profile_status.into());
        map.insert("device_assigned_date".into(), time(self.assigned_at).into());
        map.insert(
            "device_assigned_by".into(),
            "it@springfield-schools.example".into(),
        );
        map.insert("os".into(), self.os.into());
        map.insert("device_family".into(), self.family.into());
        if let Some(tag) = &self.asset_tag {
            map.insert("asset_tag".into(), tag.clone().into());
        }
        if let Some(uuid) = &self.profile_uuid {
            map.insert("profile_uuid".into(), uuid.clone().into());
        }
        if let Some(at) = self.profile_assign_time {
            map.insert("profile_assign_time".into(), time(at).into());
        }
        if let Some(at) = self.profile_push_time {
            map.insert("profile_push_time".into(), time(at).into());
        }
        Value::Object(map)
    }
}

struct Event {
    seq: u64,
    op: &'static str,
    at: DateTime<Utc>,
    device: Value,
}

struct Failures {
    remaining: usize,
    status: u16,
    retry_after: Option<u64>,
}

struct State {
    tokens: OAuthTokens,
    devices: HashMap<String, SimDevice>,
    /// Serials in assignment order: the order fetch pages through.
    order: Vec<String>,
    events: Vec<Event>,
    seq: u64,
    next_serial: u64,
    cursor_generation: u64,
    sessions: HashMap<String, Instant>,
    session_ttl: Duration,
    sessions_issued: usize,
    rotate_sessions: bool,
    nonces: HashSet<String>,
    terms_not_signed: bool,
    /// Profiles defined from now on are forgotten at once.
    forget_new_profiles: bool,
    failures: Failures,
    page_limit: usize,
    profiles: HashMap<String, Value>,
    log: Vec<SimRequest>,
}

impl State {
    fn event(&mut self, op: &'static str, device: Value) {
        self.seq += 1;
        self.events.push(Event {
            seq: self.seq,
            op,
            at: Utc::now(),
            device,
        });
    }

    fn new_session(&mut self) -> String {
        let token = format!("SIM_{}", uuid::Uuid::new_v4().simple());
        self.sessions
            .insert(token.clone(), Instant::now() + self.session_ttl);
        self.sessions_issued += 1;
        token
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide what the simulator recorded.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A running simulator; dropping it stops the server.
pub struct AdeSim {
    /// `http://127.0.0.1:<port>`: use as the ADE base URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl AdeSim {
    /// Starts a simulator on 127.0.0.1 with a free port that accepts the
    /// server token `tokens`. Sessions last 30 minutes until changed.
    pub fn start(tokens: OAuthTokens) -> Result<Self, AdeSimError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            tokens,
            devices: HashMap::new(),
            order: Vec::new(),
            events: Vec::new(),
            seq: 0,
            next_serial: 0,
            cursor_generation: 1,
            sessions: HashMap::new(),
            session_ttl: Duration::from_secs(30 * 60),
            sessions_issued: 0,
            rotate_sessions: false,
            nonces: HashSet::new(),
            terms_not_signed: false,
            forget_new_profiles: false,
            failures: Failures {
                remaining: 0,
                status: 503,
                retry_after: None,
            },
            page_limit: MAX_LIMIT,
            profiles: HashMap::new(),
            log: Vec::new(),
        }));
        let data = web::Data::from(state.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // A thread of its own with an actix System: independent of whatever
        // runtime (or none) the caller runs in.
        std::thread::Builder::new()
            .name("ade-sim".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
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
                        tracing::warn!(error = %e, "ADE simulator stopped with an error");
                    }
                });
            })?;
        let handle = started_rx.recv().map_err(|_| AdeSimError::Stopped)??;
        Ok(AdeSim {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        })
    }

    /// Assigns `n` generated devices (iPads, some Macs) to this MDM server,
    /// each with an `added` sync event; returns their serials.
    pub fn add_devices(&self, n: usize) -> Vec<String> {
        let mut state = lock(&self.state);
        let now = Utc::now();
        let mut serials = Vec::with_capacity(n);
        for _ in 0..n {
            state.next_serial += 1;
            let number = state.next_serial;
            let (model, description, color, os, family) =
                MODELS[(number as usize - 1) % MODELS.len()];
            let device = SimDevice {
                serial: serial(number),
                model,
                description,
                color,
                os,
                family,
                asset_tag: Some(format!("SPR-{number:06}")),
                profile_status: "empty",
                profile_uuid: None,
                profile_assign_time: None,
                profile_push_time: None,
                assigned_at: now,
            };
            let json = device.to_json();
            state.order.push(device.serial.clone());
            serials.push(device.serial.clone());
            state.devices.insert(device.serial.clone(), device);
            state.event("added", json);
        }
        serials
    }

    /// Changes a device (a new asset tag) and records a `modified` event;
    /// false when the serial is not assigned.
    pub fn modify(&self, serial: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(device) = state.devices.get_mut(serial) else {
            return false;
        };
        device.asset_tag = Some(format!("RELABELLED-{serial}"));
        let json = device.to_json();
        state.event("modified", json);
        true
    }

    /// Unassigns a device from this MDM server (moved or released in Apple
    /// School Manager) with a `deleted` event; false when unknown.
    pub fn delete(&self, serial: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(device) = state.devices.remove(serial) else {
            return false;
        };
        state.order.retain(|s| s != serial);
        state.event("deleted", device.to_json());
        true
    }

    /// Marks a device as having fetched its profile (`pushed`), as Apple does
    /// when it activates.
    pub fn mark_pushed(&self, serial: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(device) = state.devices.get_mut(serial) else {
            return false;
        };
        device.profile_status = "pushed";
        device.profile_push_time = Some(Utc::now());
        let json = device.to_json();
        state.event("modified", json);
        true
    }

    /// Makes every cursor issued so far answer `EXPIRED_CURSOR`.
    pub fn expire_cursors(&self) {
        lock(&self.state).cursor_generation += 1;
    }

    /// Ends every session now (the next call gets 401).
    pub fn expire_sessions(&self) {
        lock(&self.state).sessions.clear();
    }

    /// How long new sessions last.
    pub fn set_session_ttl(&self, ttl: Duration) {
        lock(&self.state).session_ttl = ttl;
    }

    /// With `true`, every answer carries a new `X-ADM-Auth-Session` and the
    /// session it was sent with stops working.
    pub fn rotate_sessions(&self, on: bool) {
        lock(&self.state).rotate_sessions = on;
    }

    /// With `true`, every request gets 403 `T_C_NOT_SIGNED` (Apple has new terms and
    /// conditions nobody in the organization accepted yet) until called with `false`
    /// (an administrator accepted them in Apple School Manager).
    pub fn terms_not_signed(&self, on: bool) {
        lock(&self.state).terms_not_signed = on;
    }

    /// Apple no longer knows any profile defined so far: assigning one of them gets
    /// 404, as when Apple dropped it. Devices keep the UUID they were given.
    pub fn forget_profiles(&self) {
        lock(&self.state).profiles.clear();
    }

    /// With `true`, every profile defined from now on is forgotten right after Apple
    /// answered with its UUID (assigning it gets 404), until called with `false`.
    pub fn forget_new_profiles(&self, on: bool) {
        lock(&self.state).forget_new_profiles = on;
    }

    /// The next `n` requests get `status` (e.g. 429, 503), with `Retry-After:
    /// <secs>` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        lock(&self.state).failures = Failures {
            remaining: n,
            status,
            retry_after,
        };
    }

    /// Caps the page size below Apple's 1000.
    pub fn set_page_limit(&self, limit: usize) {
        lock(&self.state).page_limit = limit.clamp(1, MAX_LIMIT);
    }

    /// The profile state of a device; `None` when the serial is not assigned.
    pub fn profile_of(&self, serial: &str) -> Option<DeviceProfile> {
        let state = lock(&self.state);
        state.devices.get(serial).map(|d| DeviceProfile {
            profile_uuid: d.profile_uuid.clone(),
            profile_status: d.profile_status.to_owned(),
        })
    }

    /// A defined profile exactly as the client sent it (plus `profile_uuid`).
    pub fn profile(&self, profile_uuid: &str) -> Option<Value> {
        lock(&self.state).profiles.get(profile_uuid).cloned()
    }

    /// Requests answered so far, `/session` included.
    pub fn requests(&self) -> usize {
        lock(&self.state).log.len()
    }

    /// Every request answered so far.
    pub fn request_log(&self) -> Vec<SimRequest> {
        lock(&self.state).log.clone()
    }

    /// Sessions handed out so far.
    pub fn sessions_issued(&self) -> usize {
        lock(&self.state).sessions_issued
    }

    /// Devices assigned now.
    pub fn device_count(&self) -> usize {
        lock(&self.state).devices.len()
    }
}

impl Drop for AdeSim {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for the end.
        drop(self.handle.stop(false));
    }
}

/// A 12-character serial from a counter, e.g. `DMPC00000001`-like.
fn serial(mut number: u64) -> String {
    let base = SERIAL_ALPHABET.len() as u64;
    let mut tail = [b'0'; 9];
    for slot in tail.iter_mut().rev() {
        *slot = SERIAL_ALPHABET[(number % base) as usize];
        number /= base;
    }
    format!("DMP{}", String::from_utf8_lossy(&tail))
}

/// An answer before it becomes an `HttpResponse`.
struct Reply {
    status: StatusCode,
    body: String,
    headers: Vec<(&'static str, String)>,
    json: bool,
}

impl Reply {
    fn json(value: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: value.to_string(),
            headers: Vec::new(),
            json: true,
        }
    }

    /// Apple answers errors with the bare code as the body.
    fn code(status: u16, code: &str) -> Self {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            body: code.to_owned(),
            headers: Vec::new(),
            json: false,
        }
    }

    /// A status Apple documents without a code: no body.
    fn status(status: StatusCode) -> Self {
        Reply {
            status,
            body: String::new(),
            headers: Vec::new(),
            json: false,
        }
    }
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = lock(&state);
    let reply = dispatch(&req, &body, &mut state);
    state.log.push(SimRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        status: reply.status.as_u16(),
    });
    let mut response = HttpResponse::build(reply.status);
    for (name, value) in reply.headers {
        response.insert_header((name, value));
    }
    if reply.json {
        response.content_type(JSON_UTF8);
    }
    response.body(reply.body)
}

fn dispatch(req: &HttpRequest, body: &[u8], state: &mut State) -> Reply {
    if state.failures.remaining > 0 {
        state.failures.remaining -= 1;
        let mut reply = Reply::code(
            state.failures.status,
            match state.failures.status {
                429 => "TOO_MANY_REQUESTS",
                503 => "SERVICE_UNAVAILABLE",
                _ => "SIMULATED_FAILURE",
            },
        );
        if let Some(secs) = state.failures.retry_after {
            reply.headers.push(("Retry-After", secs.to_string()));
        }
        return reply;
    }
    if state.terms_not_signed {
        return Reply::code(403, "T_C_NOT_SIGNED");
    }
    if req.path() == "/session" {
        return session(req, state);
    }
    // Every call but /session needs the protocol version and a live session.
    if header(req, "X-Server-Protocol-Version").is_none() {
        // Simulator's code: Apple documents the header as required, not the error.
        return Reply::code(400, "MISSING_SERVER_PROTOCOL_VERSION");
    }
    let Some(session) = header(req, "X-ADM-Auth-Session") else {
        return Reply::code(401, "UNAUTHORIZED");
    };
    match state.sessions.get(session) {
        Some(until) if *until > Instant::now() => {}
        _ => {
            state.sessions.remove(session);
            return Reply::code(401, "UNAUTHORIZED");
        }
    }
    let has_body = matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE);
    if has_body
        && !header(req, "Content-Type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
    {
        return Reply::code(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    let mut reply = route(req, body, state);
    if state.rotate_sessions && reply.status.is_success() {
        state.sessions.remove(session);
        let new = state.new_session();
        reply.headers.push(("X-ADM-Auth-Session", new));
    }
    reply
}

fn route(req: &HttpRequest, body: &[u8], state: &mut State) -> Reply {
    let method = req.method().clone();
    let json_body = || -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    match (method, req.path()) {
        (Method::GET, "/account") => account(),
        (Method::POST, "/server/devices") => match json_body() {
            Some(body) => fetch(&body, state),
            None => Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
        (Method::POST, "/devices/sync") => match json_body() {
            Some(body) => sync(&body, state),
            None => Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
        (Method::POST, "/profile") => match json_body() {
            Some(body) => define_profile(body, state),
            None => Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
        (Method::GET, "/profile") => get_profile(req, state),
        // Apple documents POST; PUT is what clients sent for years.
        (Method::POST | Method::PUT, "/profile/devices") => match json_body() {
            Some(body) => assign_profile(&body, state),
            None => Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
        (Method::DELETE, "/profile/devices") => match json_body() {
            Some(body) => remove_profile(&body, state),
            None => Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
        _ => Reply::code(404, "NOT_FOUND"),
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn session(req: &HttpRequest, state: &mut State) -> Reply {
    if req.method() != Method::GET {
        return Reply::code(405, "METHOD_NOT_ALLOWED");
    }
    let refuse = |problem: oauth::OAuthProblem| {
        let mut reply = Reply::code(401, &format!("oauth_problem={problem}"));
        reply.headers.push((
            "WWW-Authenticate",
            format!(
                "OAuth realm=\"{}\", oauth_problem=\"{problem}\"",
                oauth::REALM
            ),
        ));
        reply
    };
    let Some(authorization) = header(req, "Authorization") else {
        return refuse(oauth::OAuthProblem::ParameterAbsent);
    };
    // The URL the client signed: this server as it addressed it.
    let url = format!("http://{}{}", req.connection_info().host(), req.uri());
    match oauth::verify(authorization, "GET", &url, &state.tokens, Utc::now()) {
        Ok(verified) => {
            if !state.nonces.insert(verified.nonce) {
                return refuse(oauth::OAuthProblem::NonceUsed);
            }
            let token = state.new_session();
            Reply::json(json!({ "auth_session_token": token }))
        }
        Err(problem) => refuse(problem),
    }
}

fn account() -> Reply {
    let url = |uri: &str, methods: &[&str], limit: Option<(u32, u32)>| {
        let mut entry = json!({ "uri": uri, "http_method": methods });
        if let Some((default, maximum)) = limit {
            entry["limit"] = json!({ "default": default, "maximum": maximum });
        }
        entry
    };
    Reply::json(json!({
        "server_name": "tafel (simulated)",
        "server_uuid": "6B3F0A51-5E1C-4B43-9A8E-6E0A4C3D2B1A",
        "admin_id": "admin@springfield-schools.example",
        "facilitator_id": "admin@springfield-schools.example",
        "org_name": "Springfield Unified School District",
        "org_email": "it@springfield-schools.example",
        "org_phone": "+1 555 0100",
        "org_address": "742 Evergreen Terrace, Springfield",
        "org_id": "1234567",
        "org_id_hash": "3f1c0e5c3c7b9a6e2d1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d",
        "org_type": "edu",
        "org_version": "v2",
        "urls": [
            url("/account", &["GET"], None),
            url("/server/devices", &["POST"], Some((100, 1000))),
            url("/devices/sync", &["POST"], Some((100, 1000))),
            url("/profile", &["GET", "POST"], None),
            url("/profile/devices", &["POST", "PUT", "DELETE"], None),
        ],
    }))
}

/// Cursors are hex, like Apple's: `F:<generation>:<offset>:<seq at start>`
/// while fetching, `S:<generation>:<last seq>` after a sync.
enum Cursor {
    Fetch { offset: usize, start_seq: u64 },
    Sync { after: u64 },
}

fn encode_cursor(generation: u64, cursor: &Cursor) -> String {
    let text = match cursor {
        Cursor::Fetch { offset, start_seq } => format!("F:{generation}:{offset}:{start_seq}"),
        Cursor::Sync { after } => format!("S:{generation}:{after}"),
    };
    hex::encode(text)
}

/// The cursor, or the error code Apple answers for it.
fn decode_cursor(generation: u64, hex_text: &str) -> Result<Cursor, &'static str> {
    let bytes = hex::decode(hex_text).map_err(|_| "INVALID_CURSOR")?;
    let text = String::from_utf8(bytes).map_err(|_| "INVALID_CURSOR")?;
    let parts: Vec<&str> = text.split(':').collect();
    let number = |i: usize| -> Result<u64, &'static str> {
        parts
            .get(i)
            .and_then(|p| p.parse().ok())
            .ok_or("INVALID_CURSOR")
    };
    let cursor = match parts.first() {
        Some(&"F") if parts.len() == 4 => Cursor::Fetch {
            offset: usize::try_from(number(2)?).map_err(|_| "INVALID_CURSOR")?,
            start_seq: number(3)?,
        },
        Some(&"S") if parts.len() == 3 => Cursor::Sync { after: number(2)? },
        _ => return Err("INVALID_CURSOR"),
    };
    if number(1)? != generation {
        return Err("EXPIRED_CURSOR");
    }
    Ok(cursor)
}

fn limit_of(body: &Map<String, Value>, state: &State) -> usize {
    let asked = body
        .get("limit")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_LIMIT);
    asked.min(MAX_LIMIT).min(state.page_limit)
}

fn fetch(body: &Map<String, Value>, state: &mut State) -> Reply {
    let limit = limit_of(body, state);
    let (offset, start_seq) = match body.get("cursor").and_then(Value::as_str) {
        None => (0, state.seq),
        Some(text) => match decode_cursor(state.cursor_generation, text) {
            Ok(Cursor::Fetch { offset, start_seq }) => {
                if offset >= state.order.len() {
                    return Reply::code(400, "EXHAUSTED_CURSOR");
                }
                (offset, start_seq)
            }
            Ok(Cursor::Sync { .. }) => return Reply::code(400, "INVALID_CURSOR"),
            Err(code) => return Reply::code(400, code),
        },
    };
    let end = (offset + limit).min(state.order.len());
    let devices: Vec<Value> = state.order[offset..end]
        .iter()
        .filter_map(|s| state.devices.get(s))
        .map(SimDevice::to_json)
        .collect();
    let cursor = encode_cursor(
        state.cursor_generation,
        &Cursor::Fetch {
            offset: end,
            start_seq,
        },
    );
    Reply::json(json!({
        "devices": devices,
        "cursor": cursor,
        "more_to_follow": end < state.order.len(),
        "fetched_until": time(Utc::now()),
    }))
}

fn sync(body: &Map<String, Value>, state: &mut State) -> Reply {
    let limit = limit_of(body, state);
    let Some(text) = body.get("cursor").and_then(Value::as_str) else {
        // Simulator's code: Apple documents the cursor as required.
        return Reply::code(400, "CURSOR_REQUIRED");
    };
    let after = match decode_cursor(state.cursor_generation, text) {
        Ok(Cursor::Fetch { start_seq, .. }) => start_seq,
        Ok(Cursor::Sync { after }) => after,
        Err(code) => return Reply::code(400, code),
    };
    let pending: Vec<&Event> = state.events.iter().filter(|e| e.seq > after).collect();
    let page = &pending[..limit.min(pending.len())];
    let last = page.last().map_or(after, |e| e.seq);
    let devices: Vec<Value> = page
        .iter()
        .map(|e| {
            let mut device = e.device.clone();
            device["op_type"] = e.op.into();
            device["op_date"] = time(e.at).into();
            device
        })
        .collect();
    Reply::json(json!({
        "devices": devices,
        "cursor": encode_cursor(state.cursor_generation, &Cursor::Sync { after: last }),
        "more_to_follow": pending.len() > page.len(),
        "fetched_until": time(Utc::now()),
    }))
}

fn serials_of(body: &Map<String, Value>) -> Option<Vec<String>> {
    body.get("devices")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Assigns `uuid` to the serials; serial → `SUCCESS` / `NOT_ACCESSIBLE`.
fn assign(state: &mut State, uuid: &str, serials: &[String]) -> BTreeMap<String, &'static str> {
    let now = Utc::now();
    let mut results = BTreeMap::new();
    for serial in serials {
        let Some(device) = state.devices.get_mut(serial) else {
            results.insert(serial.clone(), "NOT_ACCESSIBLE");
            continue;
        };
        device.profile_uuid = Some(uuid.to_owned());
        device.profile_status = "assigned";
        device.profile_assign_time = Some(now);
        device.profile_push_time = None;
        let json = device.to_json();
        state.event("modified", json);
        results.insert(serial.clone(), "SUCCESS");
    }
    results
}

fn define_profile(mut body: Map<String, Value>, state: &mut State) -> Reply {
    if let Some(unknown) = body.keys().find(|k| !PROFILE_KEYS.contains(&k.as_str())) {
        // Simulator's code: Apple would ignore the key.
        return Reply::code(400, &format!("UNKNOWN_PROFILE_KEY {unknown}"));
    }
    if body
        .get("profile_name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Reply::code(400, "CONFIG_NAME_REQUIRED");
    }
    let serials = match body.get("devices") {
        None => Vec::new(),
        Some(_) => match serials_of(&body) {
            Some(serials) => serials,
            None => return Reply::code(400, "MALFORMED_REQUEST_BODY"),
        },
    };
    let uuid = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    body.insert("profile_uuid".into(), uuid.clone().into());
    if !state.forget_new_profiles {
        state.profiles.insert(uuid.clone(), Value::Object(body));
    }
    let devices = assign(state, &uuid, &serials);
    Reply::json(json!({ "profile_uuid": uuid, "devices": devices }))
}

fn assign_profile(body: &Map<String, Value>, state: &mut State) -> Reply {
    let Some(uuid) = body
        .get("profile_uuid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    else {
        return Reply::code(400, "PROFILE_UUID_REQUIRED");
    };
    let Some(serials) = serials_of(body) else {
        return Reply::code(400, "MALFORMED_REQUEST_BODY");
    };
    if serials.is_empty() {
        return Reply::code(400, "DEVICE_ID_REQUIRED");
    }
    if serials.len() > MAX_LIMIT {
        // Simulator's code for Apple's "limit requests to 1000 devices".
        return Reply::code(400, "DEVICE_LIMIT_EXCEEDED");
    }
    if !state.profiles.contains_key(uuid) {
        // "404 Not Found: The profile with the specified UUID could not be found."
        return Reply::status(StatusCode::NOT_FOUND);
    }
    let uuid = uuid.to_owned();
    let devices = assign(state, &uuid, &serials);
    Reply::json(json!({ "profile_uuid": uuid, "devices": devices }))
}

fn remove_profile(body: &Map<String, Value>, state: &mut State) -> Reply {
    let Some(serials) = serials_of(body) else {
        return Reply::code(400, "MALFORMED_REQUEST_BODY");
    };
    let mut results = BTreeMap::new();
    for serial in serials {
        let Some(device) = state.devices.get_mut(&serial) else {
            results.insert(serial, "NOT_ACCESSIBLE");
            continue;
        };
        device.profile_uuid = None;
        device.profile_status = "removed";
        let json = device.to_json();
        state.event("modified", json);
        results.insert(serial, "SUCCESS");
    }
    Reply::json(json!({ "devices": results }))
}

fn get_profile(req: &HttpRequest, state: &State) -> Reply {
    let uuid = req
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "profile_uuid")
        .and_then(|(_, v)| oauth::percent_decode(v));
    let Some(uuid) = uuid.filter(|u| !u.is_empty()) else {
        return Reply::code(400, "PROFILE_UUID_REQUIRED");
    };
    match state.profiles.get(&uuid) {
        Some(profile) => Reply::json(profile.clone()),
        // As for an assignment: a UUID Apple does not know is not found.
        None => Reply::status(StatusCode::NOT_FOUND),
    }
}

/// The client against the simulator: real HTTP round trips.
#[cfg(test)]
mod round_trip {
    use std::time::Duration;

    use super::*;
    use tafel::ade::{
        AdeClient, AdeError, AssignResult, OpType, Profile, ProfileStatus, RetryPolicy,
        DEFAULT_PROTOCOL_VERSION,
    };

    fn tokens() -> OAuthTokens {
        OAuthTokens {
            consumer_key: "CK_springfield".into(),
            consumer_secret: "CS_secret/with+reserved=chars".into(),
            access_token: "AT_O2109279022Oe03b641fd6f07d7face7894211d521fd8bef09c3O137392".into(),
            access_secret: "AS_another secret".into(),
            access_token_expiry: Utc::now() + chrono::Duration::days(365),
        }
    }

    fn start() -> (AdeSim, AdeClient) {
        let sim = AdeSim::start(tokens()).unwrap();
        let client = AdeClient::new(&sim.url, tokens(), DEFAULT_PROTOCOL_VERSION).unwrap();
        (sim, client)
    }

    fn calls(sim: &AdeSim) -> Vec<(String, u16)> {
        sim.request_log()
            .into_iter()
            .map(|r| (format!("{} {}", r.method, r.path), r.status))
            .collect()
    }

    #[tokio::test]
    async fn session_is_obtained_then_renewed_after_the_service_expires_it() {
        let (sim, client) = start();
        let account = client.account().await.unwrap();
        assert_eq!(account.org_name, "Springfield Unified School District");
        assert_eq!(account.org_type.as_deref(), Some("edu"));
        assert!(account
            .urls
            .iter()
            .any(|u| u.uri == "/server/devices" && u.limit.and_then(|l| l.maximum) == Some(1000)));

        sim.expire_sessions();
        client.account().await.unwrap();
        assert_eq!(
            calls(&sim),
            [
                ("GET /session".into(), 200),
                ("GET /account".into(), 200),
                ("GET /account".into(), 401),
                ("GET /session".into(), 200),
                ("GET /account".into(), 200),
            ]
        );
        assert_eq!(client.requests_made(), 5);
    }

    #[tokio::test]
    async fn a_session_token_handed_out_with_an_answer_is_kept() {
        let (sim, client) = start();
        sim.rotate_sessions(true);
        for _ in 0..4 {
            client.account().await.unwrap();
        }
        assert_eq!(
            sim.sessions_issued(),
            5,
            "one from /session, one per answer"
        );
        assert_eq!(
            sim.requests(),
            5,
            "no 401s: the new token was used each time"
        );
    }

    #[tokio::test]
    async fn a_token_the_service_rejects_says_so() {
        let sim = AdeSim::start(tokens()).unwrap();
        let mut wrong = tokens();
        wrong.access_secret = "AS_stale".into();
        let client = AdeClient::new(&sim.url, wrong, DEFAULT_PROTOCOL_VERSION).unwrap();
        match client.account().await {
            Err(AdeError::TokenInvalid { reason }) => assert_eq!(reason, "signature_invalid"),
            other => panic!("{other:?}"),
        }

        let mut expired = tokens();
        expired.access_token_expiry = Utc::now() - chrono::Duration::days(1);
        let sim = AdeSim::start(expired.clone()).unwrap();
        let client = AdeClient::new(&sim.url, expired, DEFAULT_PROTOCOL_VERSION).unwrap();
        let err = client.account().await.unwrap_err();
        assert!(
            matches!(&err, AdeError::TokenInvalid { reason } if reason == "token_expired"),
            "{err}"
        );
        assert!(err.needs_admin());
    }

    #[tokio::test]
    async fn full_fetch_of_2500_devices_takes_three_pages() {
        let (sim, client) = start();
        let serials = sim.add_devices(2500);
        let result = client.sync_all(None).await.unwrap();
        assert!(result.full);
        assert_eq!(result.devices.len(), 2500);
        let fetched: HashSet<&str> = result
            .devices
            .iter()
            .map(|d| d.serial_number.as_str())
            .collect();
        assert_eq!(fetched.len(), 2500);
        assert!(serials.iter().all(|s| fetched.contains(s.as_str())));
        let ipad = &result.devices[0];
        assert_eq!(ipad.device_family.as_deref(), Some("iPad"));
        assert_eq!(ipad.profile_status, ProfileStatus::Empty);
        assert!(ipad.device_assigned_date.is_some());
        assert_eq!(
            calls(&sim),
            [
                ("GET /session".into(), 200),
                ("POST /server/devices".into(), 200),
                ("POST /server/devices".into(), 200),
                ("POST /server/devices".into(), 200),
            ]
        );
        // Apple answers a finished fetch cursor with EXHAUSTED_CURSOR.
        let err = client
            .fetch_devices(Some(&result.cursor), None)
            .await
            .unwrap_err();
        assert!(matches!(err, AdeError::CursorExhausted), "{err}");
    }

    #[tokio::test]
    async fn sync_reports_added_modified_and_deleted_devices() {
        let (sim, client) = start();
        let first = sim.add_devices(10);
        let full = client.sync_all(None).await.unwrap();

        let added = sim.add_devices(2);
        assert!(sim.modify(&first[0]));
        assert!(sim.delete(&first[1]));
        let changes = client.sync_all(Some(full.cursor)).await.unwrap();
        assert!(!changes.full);
        let seen: Vec<(&str, Option<OpType>)> = changes
            .devices
            .iter()
            .map(|d| (d.serial_number.as_str(), d.op_type))
            .collect();
        assert_eq!(
            seen,
            [
                (added[0].as_str(), Some(OpType::Added)),
                (added[1].as_str(), Some(OpType::Added)),
                (first[0].as_str(), Some(OpType::Modified)),
                (first[1].as_str(), Some(OpType::Deleted)),
            ]
        );
        assert!(changes.devices.iter().all(|d| d.op_date.is_some()));
        assert_eq!(
            changes.devices[2].asset_tag.as_deref(),
            Some(format!("RELABELLED-{}", first[0]).as_str())
        );

        let quiet = client.sync_all(Some(changes.cursor)).await.unwrap();
        assert!(quiet.devices.is_empty() && !quiet.full);
    }

    #[tokio::test]
    async fn expired_cursor_falls_back_to_a_full_fetch() {
        let (sim, client) = start();
        sim.add_devices(5);
        let full = client.sync_all(None).await.unwrap();
        sim.add_devices(1);
        sim.expire_cursors();

        let again = client.sync_all(Some(full.cursor)).await.unwrap();
        assert!(again.full);
        assert_eq!(again.devices.len(), 6);
        assert!(calls(&sim).contains(&("POST /devices/sync".into(), 400)));

        // The new cursor is good for syncing.
        sim.add_devices(1);
        let next = client.sync_all(Some(again.cursor)).await.unwrap();
        assert!(!next.full);
        assert_eq!(next.devices.len(), 1);

        let err = client.sync_devices("not-hex", None).await.unwrap_err();
        assert!(
            matches!(&err, AdeError::CursorExpired { code } if code == "INVALID_CURSOR"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn profile_is_defined_assigned_read_back_and_removed() {
        let (sim, client) = start();
        let serials = sim.add_devices(3);
        let profile = Profile {
            profile_name: "Springfield Elementary iPads".into(),
            url: Some("https://mdm.springfield.example/enroll".into()),
            is_supervised: Some(true),
            is_mandatory: Some(true),
            is_mdm_removable: Some(false),
            await_device_configured: Some(true),
            department: Some("District IT".into()),
            support_phone_number: Some("+1 555 0100".into()),
            support_email_address: Some("it@springfield-schools.example".into()),
            org_magic: Some("springfield".into()),
            anchor_certs: vec!["MIIBszCCAVmgAwIBAgIU".into()],
            skip_setup_items: vec!["Location".into(), "Restore".into(), "AppleID".into()],
            language: Some("en".into()),
            region: Some("US".into()),
            devices: vec![serials[0].clone()],
            ..Profile::default()
        };
        let defined = client.define_profile(&profile).await.unwrap();
        assert_eq!(
            defined.devices.get(&serials[0]),
            Some(&AssignResult::Success)
        );
        let sent = sim.profile(&defined.profile_uuid).unwrap();
        assert_eq!(sent["is_mdm_removable"], false);
        assert_eq!(sent["skip_setup_items"][1], "Restore");
        assert!(
            sent.get("configuration_web_url").is_none(),
            "unset fields are left out"
        );

        let wanted = vec![
            serials[1].clone(),
            serials[2].clone(),
            "NOTMINE00001".to_owned(),
        ];
        let assigned = client
            .assign_profile(&defined.profile_uuid, &wanted)
            .await
            .unwrap();
        assert_eq!(assigned.devices[&serials[1]], AssignResult::Success);
        assert_eq!(
            assigned.devices["NOTMINE00001"],
            AssignResult::NotAccessible
        );
        let state = sim.profile_of(&serials[2]).unwrap();
        assert_eq!(state.profile_status, "assigned");
        assert_eq!(
            state.profile_uuid.as_deref(),
            Some(defined.profile_uuid.as_str())
        );

        let read = client.get_profile(&defined.profile_uuid).await.unwrap();
        assert_eq!(read.profile_name, profile.profile_name);
        assert_eq!(
            read.profile_uuid.as_deref(),
            Some(defined.profile_uuid.as_str())
        );
        assert_eq!(read.skip_setup_items, profile.skip_setup_items);

        let removed = client.remove_profile(&serials[1..2]).await.unwrap();
        assert_eq!(removed[&serials[1]], AssignResult::Success);
        assert_eq!(
            sim.profile_of(&serials[1]).unwrap().profile_status,
            "removed"
        );

        // More than 1000 serials go out in chunks of 1000.
        let many = sim.add_devices(1500);
        let before = sim.requests();
        let assigned = client
            .assign_profile(&defined.profile_uuid, &many)
            .await
            .unwrap();
        assert_eq!(assigned.devices.len(), 1500);
        assert_eq!(sim.requests() - before, 2);
    }

    #[tokio::test]
    async fn a_profile_apple_no_longer_knows_is_not_found() {
        let (sim, client) = start();
        let serials = sim.add_devices(2);
        let profile = Profile {
            profile_name: "Gymnasium Nord (tafel)".into(),
            url: Some("https://mdm.example/mdm/ade/enroll".into()),
            ..Profile::default()
        };
        let defined = client.define_profile(&profile).await.unwrap();
        client
            .assign_profile(&defined.profile_uuid, &serials[..1])
            .await
            .unwrap();
        sim.forget_profiles();
        let err = client
            .assign_profile(&defined.profile_uuid, &serials[1..])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AdeError::ProfileNotFound { profile_uuid } if *profile_uuid == defined.profile_uuid),
            "{err}"
        );
        assert!(err.to_string().contains("defined again"), "{err}");
        assert_eq!(
            calls(&sim).last().unwrap(),
            &("POST /profile/devices".to_owned(), 404)
        );
        // Defined anew, it is known again.
        let again = client.define_profile(&profile).await.unwrap();
        assert_ne!(again.profile_uuid, defined.profile_uuid);
        client
            .assign_profile(&again.profile_uuid, &serials[1..])
            .await
            .unwrap();
        // Unless Apple keeps forgetting.
        sim.forget_new_profiles(true);
        let lost = client.define_profile(&profile).await.unwrap();
        assert!(matches!(
            client.assign_profile(&lost.profile_uuid, &serials).await,
            Err(AdeError::ProfileNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn unsigned_terms_give_a_clear_error() {
        let (sim, client) = start();
        sim.terms_not_signed(true);
        let err = client.account().await.unwrap_err();
        assert!(matches!(err, AdeError::TermsNotSigned), "{err}");
        assert!(err.to_string().contains("terms and conditions"), "{err}");
        assert!(err.needs_admin());

        // Also when it happens with a session already open.
        sim.terms_not_signed(false);
        client.account().await.unwrap();
        sim.terms_not_signed(true);
        let err = client.fetch_devices(None, None).await.unwrap_err();
        assert!(matches!(err, AdeError::TermsNotSigned), "{err}");
    }

    #[tokio::test]
    async fn unavailable_with_retry_after_is_retried() {
        let (sim, client) = start();
        client.account().await.unwrap();
        sim.fail_next(1, 503, Some(1));
        let started = std::time::Instant::now();
        client.account().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After honoured"
        );
        let log = calls(&sim);
        assert_eq!(
            log[2..],
            [("GET /account".into(), 503), ("GET /account".into(), 200)]
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_a_bounded_number_of_times() {
        let (sim, client) = start();
        let client = client.with_retry_policy(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        });
        sim.fail_next(10, 429, None);
        let err = client.account().await.unwrap_err();
        assert!(
            matches!(
                err,
                AdeError::Throttled {
                    status: 429,
                    times: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            sim.requests(),
            3,
            "the session request itself was throttled"
        );
    }

    #[tokio::test]
    async fn ten_thousand_devices_sync_in_eleven_requests() {
        let (sim, client) = start();
        sim.add_devices(10_000);
        let full = client.sync_all(None).await.unwrap();
        assert_eq!(full.devices.len(), 10_000);
        // One /session, ten pages of 1000.
        assert_eq!(client.requests_made(), 11);
        let quiet = client.sync_all(Some(full.cursor)).await.unwrap();
        assert!(quiet.devices.is_empty());
        assert_eq!(client.requests_made(), 12);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_twelve_characters_and_distinct() {
        let a = serial(1);
        let b = serial(28);
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert!(a.starts_with("DMP"));
    }

    #[test]
    fn cursors_round_trip_and_expire() {
        let text = encode_cursor(3, &Cursor::Sync { after: 42 });
        assert!(matches!(
            decode_cursor(3, &text),
            Ok(Cursor::Sync { after: 42 })
        ));
        assert!(matches!(decode_cursor(4, &text), Err("EXPIRED_CURSOR")));
        assert!(matches!(decode_cursor(3, "zz"), Err("INVALID_CURSOR")));
    }
}
