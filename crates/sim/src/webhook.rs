//! A local webhook receiver for tests: plain HTTP on 127.0.0.1, records every request
//! (headers, body, arrival time), checks its signature with the secret it was given,
//! and answers 200 unless told to answer something else for the next few requests.
//!
//! Like the APNs simulator it runs on its own thread inside its own actix `System`
//! (see [`crate::apns`] for why), so it outlives the runtime of the test that
//! started it and works from any test flavor. Dropping the [`WebhookSim`] stops it.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};

use tafel::notify::verify_signature;

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSimError {
    /// Binding or spawning failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread ended before the server started.
    #[error("the receiver thread stopped during start")]
    Stopped,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Request headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The status the receiver answered.
    pub status: u16,
    /// Did `X-Tafel-Signature` match (None: no secret was set)?
    pub signature_valid: Option<bool>,
}

impl ReceivedWebhook {
    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `X-Tafel-Event` header.
    pub fn event(&self) -> Option<&str> {
        self.header("x-tafel-event")
    }

    /// The `X-Tafel-Delivery` header.
    pub fn delivery(&self) -> Option<&str> {
        self.header("x-tafel-delivery")
    }
}

/// An answer other than 200.
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
}

/// State shared by the handle and the server's worker.
#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedWebhook>>,
    script: Mutex<VecDeque<Answer>>,
    secret: Mutex<Option<Vec<u8>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide what the receiver recorded.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running receiver; dropping it stops the server.
pub struct WebhookSim {
    /// `http://127.0.0.1:<port>/hook`: use as `webhooks.url`.
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl WebhookSim {
    /// Starts a receiver on 127.0.0.1 with a free port.
    pub fn start() -> Result<WebhookSim, WebhookSimError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(shared.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("webhook-sim".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
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
                        tracing::error!(error = %e, "webhook receiver stopped");
                    }
                });
            })?;
        let handle = started_rx.recv().map_err(|_| WebhookSimError::Stopped)??;
        Ok(WebhookSim {
            url: format!("http://127.0.0.1:{port}/hook"),
            shared,
            handle,
        })
    }

    /// Checks signatures of later requests with `secret`.
    pub fn set_secret(&self, secret: &[u8]) {
        *lock(&self.shared.secret) = Some(secret.to_vec());
    }

    /// Answers the next `n` requests with `status`, then 200 again.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.answer_next(n, status, None);
    }

    /// Answers the next `n` requests with `status` and `Retry-After: <secs>`.
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, secs: u64) {
        self.answer_next(n, status, Some(secs));
    }

    fn answer_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        lock(&self.shared.script).extend(std::iter::repeat_n(
            Answer {
                status,
                retry_after,
            },
            n,
        ));
    }

    /// A copy of every request received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        lock(&self.shared.received).clone()
    }

    /// Waits until `n` requests arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WebhookSim {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for the end.
        drop(self.handle.stop(false));
    }
}

/// Records the request and answers from the script (200 when it is empty).
async fn answer(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let signature_valid = lock(&shared.secret).as_ref().map(|secret| {
        match (
            headers.get("x-tafel-timestamp"),
            headers.get("x-tafel-signature"),
        ) {
            (Some(ts), Some(sig)) => verify_signature(secret, ts, &body, sig),
            _ => false,
        }
    });
    let scripted = lock(&shared.script).pop_front();
    let status = scripted.map_or(200, |a| a.status);
    lock(&shared.received).push(ReceivedWebhook {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers,
        body: body.to_vec(),
        at: Utc::now(),
        status,
        signature_valid,
    });
    let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    if let Some(secs) = scripted.and_then(|a| a.retry_after) {
        res.insert_header(("Retry-After", secs.to_string()));
    }
    if status == 200 {
        res.finish()
    } else {
        res.body(format!("simulated {status}"))
    }
}
