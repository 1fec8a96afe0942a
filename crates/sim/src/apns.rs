//! A local APNs provider API for tests and benchmarks: HTTP/2 over TLS with a
//! required client certificate, checks each push as APNs does, records it, and
//! answers from a per-token script.
//!
//! The server runs on its own thread inside its own actix `System`, so
//! [`ApnsSim::start`] works the same from `#[tokio::test]` (either flavor),
//! `#[actix_web::test]` and plain synchronous code, and the simulator does not
//! die with the runtime of the test that started it. Dropping the [`ApnsSim`]
//! stops it. What was tried (actix-web 4.18, actix-server 2.10):
//! `tokio::spawn(server)` also works under all three test runtimes (workers get
//! threads of their own either way), but the server stops when the spawning
//! runtime is dropped, so a simulator shared by several tests would die with the
//! first; `actix_web::rt::spawn` panics outside an actix `System`; and a server
//! future nobody polls never starts its workers: clients connect and then hang.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::dev::{Extensions, ServerHandle};
use actix_web::http::{Method, StatusCode, Version};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Builder, X509Name, X509Ref, X509};

use tafel::push::cert::{topic_of, PushCertificate};
use tafel::push::PushError;

/// APNs refuses payloads above 4 KiB (`PayloadTooLarge`).
const MAX_PAYLOAD: usize = 4096;

/// Why the simulator could not start or make certificates.
#[derive(Debug, thiserror::Error)]
pub enum ApnsSimError {
    /// OpenSSL failed.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// Binding or spawning failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The generated push certificate did not load.
    #[error("push certificate: {0}")]
    Push(#[from] PushError),
    /// The server thread ended before the server started.
    #[error("the simulator thread stopped during start")]
    Stopped,
}

/// What the simulator answers to a well-formed push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// 200 with an `apns-id`.
    Success,
    /// 410 `Unregistered` with a `timestamp`: the app (here: MDM) is gone from the device.
    Unregistered,
    /// 400 `BadDeviceToken`.
    BadDeviceToken,
    /// 429 `TooManyRequests`, with `retry-after` seconds when given.
    TooManyRequests {
        /// The `retry-after` header, in seconds.
        retry_after: Option<u64>,
    },
    /// 500 `InternalServerError`.
    InternalServerError,
    /// Any other status and reason.
    Status {
        /// HTTP status.
        status: u16,
        /// APNs reason, e.g. `ServiceUnavailable`.
        reason: String,
        /// The `retry-after` header, in seconds.
        retry_after: Option<u64>,
    },
}

impl Response {
    /// The usual APNs answer for `status` (200, 400, 410, 429, 500, 503, …).
    pub fn from_status(status: u16) -> Self {
        match status {
            200 => Response::Success,
            400 => Response::BadDeviceToken,
            410 => Response::Unregistered,
            429 => Response::TooManyRequests { retry_after: None },
            500 => Response::InternalServerError,
            _ => Response::Status {
                status,
                reason: match status {
                    403 => "BadCertificate",
                    405 => "MethodNotAllowed",
                    413 => "PayloadTooLarge",
                    503 => "ServiceUnavailable",
                    _ => "Unknown",
                }
                .to_owned(),
                retry_after: None,
            },
        }
    }

    fn status_reason_retry(&self) -> (u16, &str, Option<u64>) {
        match self {
            Response::Success => (200, "", None),
            Response::Unregistered => (410, "Unregistered", None),
            Response::BadDeviceToken => (400, "BadDeviceToken", None),
            Response::TooManyRequests { retry_after } => (429, "TooManyRequests", *retry_after),
            Response::InternalServerError => (500, "InternalServerError", None),
            Response::Status {
                status,
                reason,
                retry_after,
            } => (*status, reason, *retry_after),
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// The device token from the path (empty when the path was wrong).
    pub token: String,
    /// The `apns-topic` header.
    pub topic: Option<String>,
    /// The topic (UID) of the client certificate of the connection.
    pub client_topic: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// HTTP version; APNs speaks only HTTP/2.
    pub version: Version,
    /// Request headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Vec<u8>,
    /// The client's address: one address per connection.
    pub peer: Option<SocketAddr>,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The status the simulator answered.
    pub status: u16,
}

impl ReceivedPush {
    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The `mdm` value of the body (the device's `PushMagic`).
    pub fn push_magic(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body.get("mdm")?.as_str().map(str::to_owned)
    }
}

/// Per-token answers.
#[derive(Debug)]
struct Script {
    default: Response,
    sticky: HashMap<String, Response>,
    queued: HashMap<String, VecDeque<Response>>,
    /// How long the answer to a token waits (a slow or hanging APNs).
    delays: HashMap<String, Duration>,
}

impl Script {
    fn next(&mut self, token: &str) -> (Response, Option<Duration>) {
        let delay = self.delays.get(token).copied();
        if let Some(once) = self.queued.get_mut(token).and_then(VecDeque::pop_front) {
            return (once, delay);
        }
        (
            self.sticky.get(token).unwrap_or(&self.default).clone(),
            delay,
        )
    }
}

/// State shared by the handle and the server's workers.
struct Shared {
    received: Arc<Mutex<Vec<ReceivedPush>>>,
    script: Mutex<Script>,
    connections: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide what the simulator recorded.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running simulator; dropping it stops the server.
pub struct ApnsSim {
    /// `https://127.0.0.1:<port>`: use as the APNs base URL.
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl ApnsSim {
    /// Starts a simulator on 127.0.0.1 with a free port. `server_cert` must name
    /// 127.0.0.1; clients must present a certificate that chains to `client_ca`
    /// and carries an MDM topic as its subject UID.
    pub fn start(
        server_cert: &X509Ref,
        server_key: &PKeyRef<Private>,
        client_ca: &X509Ref,
    ) -> Result<Self, ApnsSimError> {
        let acceptor = tls_acceptor(server_cert, server_key, client_ca)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            received: Arc::default(),
            script: Mutex::new(Script {
                default: Response::Success,
                sticky: HashMap::new(),
                queued: HashMap::new(),
                delays: HashMap::new(),
            }),
            connections: AtomicUsize::new(0),
        });
        let counted = shared.clone();
        let data = web::Data::from(shared.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // A thread of its own with an actix System: independent of whatever
        // runtime (or none) the caller runs in; see the module docs.
        std::thread::Builder::new()
            .name("apns-sim".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .default_service(web::to(answer))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .keep_alive(Duration::from_secs(600))
                    .on_connect(move |conn, ext| {
                        counted.connections.fetch_add(1, Ordering::Relaxed);
                        attach_client_topic(conn, ext);
                    })
                    .listen_openssl(listener, acceptor);
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
                        tracing::error!(error = %e, "APNs simulator stopped");
                    }
                });
            })?;
        let handle = started_rx.recv().map_err(|_| ApnsSimError::Stopped)??;
        Ok(Self {
            url: format!("https://127.0.0.1:{port}"),
            shared,
            handle,
        })
    }

    /// A copy of every request received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.shared.received).clone()
    }

    /// The live record itself, for a caller that wants to wait on it or clear it.
    pub fn received_log(&self) -> Arc<Mutex<Vec<ReceivedPush>>> {
        self.shared.received.clone()
    }

    /// TLS connections accepted so far (handshake and client certificate passed).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Answers every later push to `token` with `response`.
    pub fn set_response(&self, token: &str, response: Response) {
        lock(&self.shared.script)
            .sticky
            .insert(token.to_owned(), response);
    }

    /// Holds every later answer to `token` back for `delay` (the request is recorded
    /// when it arrives): a slow APNs, or with a delay beyond the client's timeout, a
    /// push that never gets an answer.
    pub fn set_delay(&self, token: &str, delay: Duration) {
        lock(&self.shared.script)
            .delays
            .insert(token.to_owned(), delay);
    }

    /// Answers pushes to tokens without a script of their own with `response`.
    pub fn set_default_response(&self, response: Response) {
        lock(&self.shared.script).default = response;
    }

    /// Answers the next `n` pushes to `token` with `status` (see
    /// [`Response::from_status`]), then goes back to its usual answer.
    pub fn fail_times(&self, token: &str, n: usize, status: u16) {
        let response = Response::from_status(status);
        lock(&self.shared.script)
            .queued
            .entry(token.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(response, n));
    }
}

impl Drop for ApnsSim {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for the
        // end, which a synchronous drop cannot do and need not.
        drop(self.handle.stop(false));
    }
}

/// TLS that insists on a client certificate from `client_ca`, as APNs does.
fn tls_acceptor(
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    client_ca: &X509Ref,
) -> Result<SslAcceptorBuilder, ApnsSimError> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder.set_certificate(cert)?;
    builder.set_private_key(key)?;
    builder.check_private_key()?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(client_ca.to_owned())?;
    builder.set_verify_cert_store(store.build())?;
    builder.add_client_ca(client_ca)?;
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // actix-web installs its own ALPN callback (h2 preferred, then http/1.1);
    // a client that ends up on HTTP/1.1 is refused in `answer`.
    Ok(builder)
}

/// The topic of the connection's client certificate, kept with the connection.
#[derive(Clone)]
struct ClientTopic(Option<String>);

fn attach_client_topic(conn: &dyn std::any::Any, ext: &mut Extensions) {
    use actix_tls::accept::openssl::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let topic = tls
            .ssl()
            .peer_certificate()
            .and_then(|cert| topic_of(&cert).ok());
        ext.insert(ClientTopic(topic));
    }
}

/// An APNs-style refusal.
struct Refusal {
    status: u16,
    reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Checks a request the way APNs does and returns its device token.
fn check(
    req: &HttpRequest,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    client_topic: Option<&str>,
) -> Result<String, Refusal> {
    if req.version() != Version::HTTP_2 {
        return Err(refuse(505, "HttpVersionNotSupported"));
    }
    if req.method() != Method::POST {
        return Err(refuse(405, "MethodNotAllowed"));
    }
    let token = req
        .path()
        .strip_prefix("/3/device/")
        .ok_or_else(|| refuse(404, "BadPath"))?;
    if token.is_empty() || hex::decode(token).is_err() {
        return Err(refuse(400, "BadDeviceToken"));
    }
    let header = |name: &str| headers.get(name).map(String::as_str);
    match header("apns-topic") {
        None => return Err(refuse(400, "MissingTopic")),
        Some(topic) if Some(topic) != client_topic => return Err(refuse(400, "BadTopic")),
        Some(_) => {}
    }
    if header("apns-push-type") != Some("mdm") {
        return Err(refuse(400, "InvalidPushType"));
    }
    if header("apns-priority").is_some_and(|p| p != "5" && p != "10") {
        return Err(refuse(400, "BadPriority"));
    }
    if header("apns-expiration").is_some_and(|e| e.parse::<i64>().is_err()) {
        return Err(refuse(400, "BadExpirationDate"));
    }
    if body.is_empty() {
        return Err(refuse(400, "PayloadEmpty"));
    }
    if body.len() > MAX_PAYLOAD {
        return Err(refuse(413, "PayloadTooLarge"));
    }
    // MDM protocol: the payload holds only the `mdm` key with the PushMagic.
    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| refuse(400, "BadPayload"))?;
    let only_magic = payload.as_object().is_some_and(|object| {
        object.len() == 1
            && object
                .get("mdm")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|magic| !magic.is_empty())
    });
    if !only_magic {
        return Err(refuse(400, "BadPayload"));
    }
    Ok(token.to_owned())
}

/// The one handler: check, consult the script, record, answer.
async fn answer(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let client_topic = req
        .conn_data::<ClientTopic>()
        .and_then(|topic| topic.0.clone());
    let checked = check(&req, &headers, &body, client_topic.as_deref());
    let (status, reason, retry_after, delay) = match &checked {
        Ok(token) => {
            let (response, delay) = lock(&shared.script).next(token);
            let (status, reason, retry_after) = response.status_reason_retry();
            (status, reason.to_owned(), retry_after, delay)
        }
        Err(refusal) => (refusal.status, refusal.reason.to_owned(), None, None),
    };
    let now = Utc::now();
    lock(&shared.received).push(ReceivedPush {
        token: match &checked {
            Ok(token) => token.clone(),
            Err(_) => req
                .path()
                .strip_prefix("/3/device/")
                .unwrap_or_default()
                .to_owned(),
        },
        topic: headers.get("apns-topic").cloned(),
        client_topic,
        method: req.method().to_string(),
        path: req.path().to_owned(),
        version: req.version(),
        body: body.to_vec(),
        peer: req.peer_addr(),
        at: now,
        status,
        headers,
    });
    if let Some(delay) = delay {
        actix_web::rt::time::sleep(delay).await;
    }

    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    // APNs echoes the caller's apns-id, or makes one up.
    let apns_id = req
        .headers()
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(new_apns_id, str::to_owned);
    response.insert_header(("apns-id", apns_id));
    if let Some(secs) = retry_after {
        response.insert_header(("retry-after", secs.to_string()));
    }
    if status == StatusCode::OK {
        return response.finish();
    }
    let body = if status == StatusCode::GONE {
        // APNs: "the last time at which APNs confirmed that the device token
        // was no longer valid for the topic", in milliseconds.
        serde_json::json!({ "reason": reason, "timestamp": now.timestamp_millis() })
    } else {
        serde_json::json!({ "reason": reason })
    };
    response.json(body)
}

/// An upper-case UUID, as APNs formats `apns-id`.
fn new_apns_id() -> String {
    let mut bytes = [0u8; 16];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        return "00000000-0000-0000-0000-000000000000".into();
    }
    let hex = hex::encode_upper(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Throwaway certificates for a simulator run: a CA, a push certificate it
/// issued with an MDM topic, and a server certificate for 127.0.0.1.
pub struct SimPki {
    /// The CA certificate: trust it as the extra root and as the client CA.
    pub ca: X509,
    /// The CA key.
    pub ca_key: PKey<Private>,
    /// The push certificate (clientAuth, subject UID = the topic).
    pub push: PushCertificate,
    /// The simulator's TLS certificate (127.0.0.1 and localhost).
    pub server_cert: X509,
    /// Its key.
    pub server_key: PKey<Private>,
}

impl SimPki {
    /// Makes a fresh CA and its two leaves; the push certificate's topic is `topic`.
    pub fn generate(topic: &str) -> Result<Self, ApnsSimError> {
        let ca_key = rsa_key()?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "APNs simulator CA")?;
        let name = name.build();
        let mut builder = cert_builder(&name, &ca_key, 3650)?;
        builder.set_issuer_name(&name)?;
        builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        builder.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
        builder.sign(&ca_key, MessageDigest::sha256())?;
        let ca = builder.build();

        let (cert, key) = issue_push_cert(&ca, &ca_key, Some(topic))?;
        let push = PushCertificate::from_pem(&cert.to_pem()?, &key.private_key_to_pem_pkcs8()?)?;

        let server_key = rsa_key()?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "127.0.0.1")?;
        let mut builder = cert_builder(&name.build(), &server_key, 30)?;
        builder.set_issuer_name(ca.subject_name())?;
        builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&builder.x509v3_context(Some(&ca), None))?;
        builder.append_extension(san)?;
        builder.sign(&ca_key, MessageDigest::sha256())?;
        Ok(Self {
            ca,
            ca_key,
            push,
            server_cert: builder.build(),
            server_key,
        })
    }

    /// Starts a simulator with these certificates.
    pub fn start_sim(&self) -> Result<ApnsSim, ApnsSimError> {
        ApnsSim::start(&self.server_cert, &self.server_key, &self.ca)
    }

    /// The CA as PEM, for [`ApnsConfig::extra_root_ca_pem`](tafel::push::ApnsConfig::extra_root_ca_pem).
    pub fn ca_pem(&self) -> Result<Vec<u8>, ApnsSimError> {
        Ok(self.ca.to_pem()?)
    }

    /// Issues another client certificate from the CA, with `uid` as subject UID
    /// when given (`None` makes a certificate that is no push certificate).
    pub fn issue_client_cert(
        &self,
        uid: Option<&str>,
    ) -> Result<(X509, PKey<Private>), ApnsSimError> {
        issue_push_cert(&self.ca, &self.ca_key, uid)
    }

    /// Issues a push certificate for the key in a certificate signing request, as
    /// Apple's Push Certificates Portal does (subject `UID=<topic>, CN=APSP:…, C=US`,
    /// TLS client authentication): the CA stands in for Apple's push CA.
    pub fn issue_for_request(
        &self,
        csr: &openssl::x509::X509ReqRef,
        topic: &str,
    ) -> Result<X509, ApnsSimError> {
        let key = csr.public_key()?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::USERID, topic)?;
        let id = topic.rsplit('.').next().unwrap_or(topic);
        name.append_entry_by_nid(Nid::COMMONNAME, &format!("APSP:{id}"))?;
        name.append_entry_by_nid(Nid::COUNTRYNAME, "US")?;
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        builder.set_serial_number(Asn1Integer::from_bn(&serial)?.as_ref())?;
        builder.set_subject_name(&name.build())?;
        builder.set_issuer_name(self.ca.subject_name())?;
        builder.set_pubkey(&key)?;
        let now = Utc::now().timestamp();
        builder.set_not_before(Asn1Time::from_unix(now - 3600)?.as_ref())?;
        builder.set_not_after(Asn1Time::days_from_now(365)?.as_ref())?;
        builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        builder.sign(&self.ca_key, MessageDigest::sha256())?;
        Ok(builder.build())
    }
}

fn issue_push_cert(
    ca: &X509Ref,
    ca_key: &PKeyRef<Private>,
    uid: Option<&str>,
) -> Result<(X509, PKey<Private>), ApnsSimError> {
    let key = rsa_key()?;
    let mut name = X509Name::builder()?;
    if let Some(uid) = uid {
        name.append_entry_by_nid(Nid::USERID, uid)?;
    }
    name.append_entry_by_nid(Nid::COMMONNAME, "APSP:simulated")?;
    let mut builder = cert_builder(&name.build(), &key, 365)?;
    builder.set_issuer_name(ca.subject_name())?;
    builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    builder.sign(ca_key, MessageDigest::sha256())?;
    Ok((builder.build(), key))
}

fn rsa_key() -> Result<PKey<Private>, ApnsSimError> {
    Ok(PKey::from_rsa(Rsa::generate(2048)?)?)
}

/// A builder with subject, key, serial and validity from an hour ago for `days`.
fn cert_builder(
    subject: &X509Name,
    key: &PKeyRef<Private>,
    days: u32,
) -> Result<X509Builder, ApnsSimError> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    builder.set_serial_number(Asn1Integer::from_bn(&serial)?.as_ref())?;
    builder.set_subject_name(subject)?;
    builder.set_pubkey(key)?;
    let now = Utc::now().timestamp();
    builder.set_not_before(Asn1Time::from_unix(now - 3600)?.as_ref())?;
    builder.set_not_after(Asn1Time::days_from_now(days)?.as_ref())?;
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Instant;

    use chrono::TimeDelta;
    use futures_util::stream::{self, StreamExt};

    use super::*;
    use tafel::push::{ApnsClient, ApnsConfig, PushOutcome};

    const TOPIC: &str = "com.apple.mgmt.External.test-topic";
    const TOKEN: &str = "3c7e2d9f4b1a08e6d5c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070605";
    const MAGIC: &str = "5F2E0C7A-1D4B-4E8F-9A3C-6B7D8E9F0A1B";

    /// A simulator, the certificates it trusts and a client that pushes to it.
    struct Apns {
        pki: SimPki,
        sim: ApnsSim,
        client: ApnsClient,
    }

    impl Apns {
        fn start() -> Apns {
            let pki = SimPki::generate(TOPIC).unwrap();
            let sim = pki.start_sim().unwrap();
            let client = ApnsClient::new(&pki.push, &config(&pki, &sim)).unwrap();
            Apns { pki, sim, client }
        }

        /// A raw HTTP/2 client: with the push certificate, or with none.
        fn raw_client(&self, with_identity: bool) -> reqwest::Client {
            let mut builder = reqwest::Client::builder()
                .use_native_tls()
                .http2_prior_knowledge()
                .add_root_certificate(
                    reqwest::Certificate::from_der(&self.pki.ca.to_der().unwrap()).unwrap(),
                );
            if with_identity {
                let identity = reqwest::Identity::from_pkcs8_pem(
                    &self.pki.push.cert.to_pem().unwrap(),
                    &self.pki.push.key.private_key_to_pem_pkcs8().unwrap(),
                )
                .unwrap();
                builder = builder.identity(identity);
            }
            builder.build().unwrap()
        }
    }

    fn config(pki: &SimPki, sim: &ApnsSim) -> ApnsConfig {
        ApnsConfig {
            base_url: sim.url.clone(),
            extra_root_ca_pem: Some(pki.ca_pem().unwrap()),
            timeout: Duration::from_secs(10),
        }
    }

    fn token(n: u32) -> String {
        format!("{n:064x}")
    }

    fn in_a_day() -> DateTime<Utc> {
        Utc::now() + TimeDelta::days(1)
    }

    #[tokio::test]
    async fn a_push_reaches_apns_with_path_headers_and_body_over_http2() {
        let apns = Apns::start();
        let expiration = in_a_day();

        let outcome = apns.client.push(TOKEN, MAGIC, expiration).await;

        let PushOutcome::Delivered { apns_id: Some(id) } = outcome else {
            panic!("not delivered: {outcome:?}");
        };
        assert_eq!(id.len(), 36);
        let received = apns.sim.received();
        assert_eq!(received.len(), 1);
        let push = &received[0];
        assert_eq!(push.version, Version::HTTP_2);
        assert_eq!(push.method, "POST");
        assert_eq!(push.path, format!("/3/device/{TOKEN}"));
        assert_eq!(push.token, TOKEN);
        assert_eq!(push.topic.as_deref(), Some(TOPIC));
        assert_eq!(push.client_topic.as_deref(), Some(TOPIC));
        assert_eq!(push.header("apns-push-type"), Some("mdm"));
        assert_eq!(push.header("apns-priority"), Some("10"));
        let expected_expiration = expiration.timestamp().to_string();
        assert_eq!(
            push.header("apns-expiration"),
            Some(expected_expiration.as_str())
        );
        assert_eq!(push.header("content-type"), Some("application/json"));
        assert_eq!(push.body, format!(r#"{{"mdm":"{MAGIC}"}}"#).into_bytes());
        assert_eq!(push.push_magic().as_deref(), Some(MAGIC));
        assert_eq!(push.status, 200);
    }

    #[actix_web::test]
    async fn an_unregistered_token_is_invalid_even_from_an_actix_system() {
        let apns = Apns::start();
        apns.sim.set_response(TOKEN, Response::Unregistered);

        let outcome = apns.client.push(TOKEN, MAGIC, in_a_day()).await;

        assert_eq!(
            outcome,
            PushOutcome::InvalidToken {
                reason: "Unregistered".into()
            }
        );
        // Other devices are unaffected.
        assert!(matches!(
            apns.client.push(&token(1), MAGIC, in_a_day()).await,
            PushOutcome::Delivered { .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_many_requests_says_when_to_retry() {
        let apns = Apns::start();
        apns.sim.set_response(
            TOKEN,
            Response::TooManyRequests {
                retry_after: Some(17),
            },
        );

        let outcome = apns.client.push(TOKEN, MAGIC, in_a_day()).await;

        assert_eq!(
            outcome,
            PushOutcome::Retry {
                reason: "TooManyRequests".into(),
                after: Some(Duration::from_secs(17)),
            }
        );
        assert_eq!(
            outcome.retry_delay(&[Duration::from_secs(30)], 0),
            Some(Duration::from_secs(17))
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_apns_recovers() {
        let apns = Apns::start();
        apns.sim.fail_times(TOKEN, 2, 500);

        let mut outcomes = Vec::new();
        for _ in 0..3 {
            outcomes.push(apns.client.push(TOKEN, MAGIC, in_a_day()).await);
        }

        let internal = PushOutcome::Retry {
            reason: "InternalServerError".into(),
            after: None,
        };
        assert_eq!(outcomes[..2], [internal.clone(), internal]);
        assert!(matches!(outcomes[2], PushOutcome::Delivered { .. }));
        let statuses: Vec<u16> = apns.sim.received().iter().map(|p| p.status).collect();
        assert_eq!(statuses, [500, 500, 200]);
    }

    #[tokio::test]
    async fn a_bad_device_token_is_invalid() {
        let apns = Apns::start();
        apns.sim.set_response(TOKEN, Response::BadDeviceToken);

        let outcome = apns.client.push(TOKEN, MAGIC, in_a_day()).await;
        assert_eq!(
            outcome,
            PushOutcome::InvalidToken {
                reason: "BadDeviceToken".into()
            }
        );

        // A token that is not hex never leaves the server.
        let outcome = apns.client.push("../../admin", MAGIC, in_a_day()).await;
        assert!(matches!(outcome, PushOutcome::InvalidToken { .. }));
        assert_eq!(apns.sim.received().len(), 1);
    }

    #[tokio::test]
    async fn a_client_without_the_right_certificate_is_refused() {
        let apns = Apns::start();
        let url = format!("{}/3/device/{TOKEN}", apns.sim.url);

        let anonymous = apns
            .raw_client(false)
            .post(&url)
            .header("apns-topic", TOPIC)
            .header("apns-push-type", "mdm")
            .body(format!(r#"{{"mdm":"{MAGIC}"}}"#))
            .send()
            .await;
        assert!(anonymous.is_err(), "{anonymous:?}");

        // A push certificate from another CA: TLS fails, which is worth a retry.
        let stranger = SimPki::generate(TOPIC).unwrap();
        let client = ApnsClient::new(&stranger.push, &config(&apns.pki, &apns.sim)).unwrap();
        let outcome = client.push(TOKEN, MAGIC, in_a_day()).await;
        assert!(matches!(outcome, PushOutcome::Retry { .. }), "{outcome:?}");

        assert!(apns.sim.received().is_empty());
        assert_eq!(apns.sim.connections(), 0);
    }

    #[tokio::test]
    async fn the_sim_refuses_what_apns_refuses() {
        let apns = Apns::start();
        let http = apns.raw_client(true);
        let url = format!("{}/3/device/{TOKEN}", apns.sim.url);
        let magic = format!(r#"{{"mdm":"{MAGIC}"}}"#);
        let other = "com.apple.mgmt.External.other";
        let post = |topic: Option<&str>, push_type: &str, body: &str| {
            let mut request = http
                .post(&url)
                .header("apns-push-type", push_type)
                .body(body.to_owned());
            if let Some(topic) = topic {
                request = request.header("apns-topic", topic);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let answer: serde_json::Value = response.json().await.unwrap();
                (
                    status,
                    answer["reason"].as_str().unwrap_or_default().to_owned(),
                )
            }
        };

        assert_eq!(
            post(None, "mdm", &magic).await,
            (400, "MissingTopic".into())
        );
        assert_eq!(
            post(Some(other), "mdm", &magic).await,
            (400, "BadTopic".into())
        );
        assert_eq!(
            post(Some(TOPIC), "alert", &magic).await,
            (400, "InvalidPushType".into())
        );
        let alert = r#"{"aps":{"alert":"hi"}}"#;
        assert_eq!(
            post(Some(TOPIC), "mdm", alert).await,
            (400, "BadPayload".into())
        );
        let empty_magic = r#"{"mdm":""}"#;
        assert_eq!(
            post(Some(TOPIC), "mdm", empty_magic).await,
            (400, "BadPayload".into())
        );
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405);

        apns.sim.set_response(TOKEN, Response::Unregistered);
        let response = http
            .post(&url)
            .header("apns-topic", TOPIC)
            .header("apns-push-type", "mdm")
            .body(magic)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 410);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["reason"], "Unregistered");
        assert!(answer["timestamp"].as_i64().is_some());

        assert_eq!(apns.sim.received().len(), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_pushes_share_one_connection() {
        let apns = Apns::start();
        let expiration = in_a_day();
        let started = Instant::now();

        let outcomes: Vec<PushOutcome> = stream::iter(0..1000)
            .map(|n| {
                let client = &apns.client;
                async move { client.push(&token(n), MAGIC, expiration).await }
            })
            .buffer_unordered(64)
            .collect()
            .await;

        let elapsed = started.elapsed();
        println!(
            "1000 pushes, 64 in flight, in {elapsed:.2?}: {:.0} pushes/s",
            1000.0 / elapsed.as_secs_f64()
        );
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, PushOutcome::Delivered { .. })));
        let received = apns.sim.received();
        assert_eq!(received.len(), 1000);
        let tokens: HashSet<&str> = received.iter().map(|p| p.token.as_str()).collect();
        assert_eq!(tokens.len(), 1000);
        let peers: HashSet<Option<SocketAddr>> = received.iter().map(|p| p.peer).collect();
        assert_eq!(peers.len(), 1, "{peers:?}");
        // Not only used one: opened one (ALPN without prior knowledge opens 64).
        assert_eq!(apns.sim.connections(), 1);
    }
}
