//! Builds the application: certificates, database, first-start token, HTTP(S) server.
//! Tests call [`Application::build`] with port 0 and talk to it over real HTTP.

use crate::error::ApiError;
use actix_web::ResponseError;
use std::any::Any;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context;
use base64::Engine;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use tracing::Instrument;

use crate::config::Settings;
use crate::db::Db;
use crate::pki::store::{self, LoadedPki};
use crate::state::AppState;

/// Seconds requests in flight get to finish after SIGTERM.
pub const SHUTDOWN_SECS: u64 = 10;

/// The client certificate a device presented over mTLS, if any.
#[derive(Clone)]
pub struct PeerCertificate(pub openssl::x509::X509);

/// Request id, also sent back as `x-request-id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// A built, bound, not yet awaited server.
pub struct Application {
    server: Server,
    port: u16,
    /// The first-start admin token, when this start created it.
    pub first_admin_token: Option<String>,
    /// Shared state (tests use it to reach the database).
    pub state: AppState,
}

impl Application {
    /// Prepares everything and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        Self::build_on(settings, listener).await
    }

    /// As [`Application::build`], on a listener the caller bound (tests bind first so
    /// that `public_url` can name the port).
    pub async fn build_on(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let report =
            store::init(&settings.certs_dir, &settings.hosts, false).with_context(|| {
                format!(
                    "cannot prepare certificates in {}",
                    settings.certs_dir.display()
                )
            })?;
        for path in &report.created {
            tracing::info!(path = %path.display(), "created");
        }
        if report.migrated {
            tracing::warn!(
                "the single root became the root of a certificate hierarchy (enrolled iPads keep trusting it); move root.key and root.passphrase off this server (README: certificates)"
            );
        }
        let LoadedPki {
            ca,
            server_cert,
            server_key,
            signing_cert,
            signing_key,
            secrets,
        } = store::load(&settings.certs_dir).context("cannot load certificates")?;
        let secrets = Arc::new(secrets);

        let url = settings.database()?;
        let db = {
            let size = settings.database_pool_size;
            tokio::task::spawn_blocking(move || Db::connect(&url, size))
                .await
                .context("database start cancelled")??
                .observe_waits(crate::metrics::pool_wait)
        };
        let (applied, first_admin_token, webhook_secret) = {
            let db = db.clone();
            let secrets_for_migration = secrets.clone();
            let root = ca.anchor().to_owned();
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let applied = db.migrate()?;
                let mut conn = db.get()?;
                // Before anything opens a sealed value: a node with another secrets.key
                // or another CA is refused with the file to copy.
                crate::cluster::check_node(
                    &mut conn,
                    &secrets_for_migration,
                    &settings.certs_dir,
                    &root,
                )?;
                crate::secrets::migrate_at_rest(&mut conn, &secrets_for_migration)
                    .context("converting secrets at rest")?;
                drop(conn);
                let mut conn = db.get()?;
                let token = crate::accounts::bootstrap_admin(&mut conn)?;
                let webhook_secret = webhook_secret(&mut conn, &secrets_for_migration, &settings)?;
                Ok((applied, token, webhook_secret))
            })
            .await
            .context("database start cancelled")??
        };
        for name in &applied {
            tracing::info!(migration = %name, "applied migration");
        }

        let certificates = Arc::new(vec![
            ("root", ca.anchor().to_owned()),
            ("issuing", ca.cert().to_owned()),
            ("scep_ra", ca.ra_cert().to_owned()),
            ("server", server_cert.clone()),
            ("signing", signing_cert.clone()),
        ]);
        crate::pki::lifecycle::log(&crate::pki::lifecycle::status(
            &certificates,
            chrono::Utc::now(),
        ));
        {
            // Say it again every day the server runs.
            let certificates = certificates.clone();
            tokio::spawn(async move {
                let mut day = tokio::time::interval(std::time::Duration::from_secs(86_400));
                day.tick().await;
                loop {
                    day.tick().await;
                    crate::pki::lifecycle::log(&crate::pki::lifecycle::status(
                        &certificates,
                        chrono::Utc::now(),
                    ));
                }
            });
        }
        let push =
            crate::push::PushService::start(db.clone(), secrets.clone(), settings.push.clone())
                .context("cannot start the push service")?;
        let signer = Arc::new(crate::state::ProfileSigner {
            cert: signing_cert,
            key: signing_key,
        });
        let ca = Arc::new(ca);
        // tafel's identity towards Apple: stable per installation, derived from the CA.
        let fingerprint =
            crate::pki::sha256_fingerprint(ca.anchor()).context("root fingerprint")?;
        let server_id =
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, fingerprint.as_bytes()).to_string();
        let licences = Arc::new(crate::licences::Licences::new(
            db.clone(),
            secrets.clone(),
            &settings.vpp.base_url,
            settings.vpp.grace_hours,
            server_id,
        ));
        let reconciler = crate::assign::service::Reconciler::start(
            db.clone(),
            push.clone(),
            licences.clone(),
            settings.vpp.sync_minutes,
            ca.clone(),
            signer.clone(),
            secrets.clone(),
            settings.inventory.refresh_hours,
            settings.inventory.retention_days,
            settings.reconcile.automatic,
        );
        let notifier = match webhook_secret {
            Some(secret) => crate::notify::Notifier::start(db.clone(), &settings.webhooks, secret)
                .context("cannot start webhook notifications")?,
            None => Arc::new(crate::notify::Notifier::disabled()),
        };
        if settings.reconcile.automatic {
            crate::lessons::readiness::start_watcher(
                db.clone(),
                notifier.clone(),
                licences.clone(),
                settings.webhooks_lesson_notice_minutes(),
            );
        }
        let machine_info_anchors = if settings.ade.machine_info_anchors.is_empty() {
            openssl::x509::X509::stack_from_pem(crate::ade::machine_info::APPLE_ROOT_CA_PEM)
                .context("built-in Apple root CA")?
        } else {
            crate::ade::machine_info::load_anchors(&settings.ade.machine_info_anchors)
                .context("ade.machine_info_anchors")?
        };
        let own_anchor = settings.ade.anchor_own_ca.unwrap_or(settings.tls.enabled);
        let profile_anchors = if own_anchor {
            vec![base64::engine::general_purpose::STANDARD
                .encode(ca.anchor().to_der().context("root certificate")?)]
        } else {
            Vec::new()
        };
        let ade = Arc::new(
            crate::ade::service::Ade::new(db.clone(), secrets.clone(), &settings.ade.base_url)
                .with_enroll_url(
                    &format!("{}{}", settings.base_url(), crate::mdm::ade::PATH),
                    profile_anchors,
                )
                .with_machine_info(machine_info_anchors, settings.ade.machine_info_check_time)
                .with_new_devices_school(settings.ade.new_devices_school.clone()),
        );
        ade.start_sync_job(settings.ade.sync_minutes);
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (admin_listen)"))?,
            ),
            None => None,
        };
        let admin_port = match &admin_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let state = AppState {
            throttle: Arc::new(crate::throttle::Throttle::default()),
            login_slots: Arc::new(tokio::sync::Semaphore::new(1)),
            certificates,
            admin_port,
            settings: settings.clone(),
            db,
            known: Arc::new(crate::pki::known::KnownCertificates::new(
                settings.mdm.known_certificates,
            )),
            ca,
            signer,
            reconciler,
            ade,
            licences,
            secrets,
            push,
            notifier,
        };
        let port = listener.local_addr()?.port();
        if settings.reconcile.automatic {
            crate::mdm::renewal::start(state.clone());
        }

        let app_state = state.clone();
        let timeouts = &settings.http;
        let body_pause = Duration::from_secs(timeouts.body_timeout_secs);
        let server = HttpServer::new(move || {
            let device_paths = (
                app_state.settings.mdm.checkin_path.clone(),
                app_state.settings.mdm.connect_path.clone(),
            );
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .configure(crate::mdm::config(&app_state.settings))
                .configure(crate::web::config)
                .configure(crate::api::config)
                .wrap_fn(move |mut req, srv| {
                    crate::edge::limit_body_pauses(&mut req, body_pause);
                    let group = crate::metrics::group(
                        req.path(),
                        (device_paths.0.as_str(), device_paths.1.as_str()),
                    );
                    let (id, span) = start_request(&req);
                    let fut = if people_on_device_listener(&req) {
                        let res = req.into_response(
                            ApiError::not_found("not on this listener: use admin_listen")
                                .error_response()
                                .map_into_right_body(),
                        );
                        futures_util::future::Either::Left(futures_util::future::ok(res))
                    } else {
                        let call = span.in_scope(|| srv.call(req));
                        futures_util::future::Either::Right(async move {
                            call.await.map(|r| r.map_into_left_body())
                        })
                    };
                    finish_request(id, group, span, fut)
                })
        })
        .on_connect(attach_peer_certificate)
        // Every listener: a client that stalls gives its connection back (README: the
        // HTTP edge). Bodies are bounded by `edge::limit_body_pauses` above.
        .client_request_timeout(Duration::from_secs(timeouts.header_timeout_secs))
        .keep_alive(Duration::from_secs(timeouts.keep_alive_secs))
        .client_disconnect_timeout(Duration::from_secs(timeouts.disconnect_timeout_secs))
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_SECS);
        let workers = if settings.workers > 0 {
            settings.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        // A request's database work runs on its worker's blocking pool. More threads
        // there than connections in the pool only queue for a connection in the
        // kernel (each wake-up a context switch); fewer queue in the runtime.
        let blocking = (settings.database_pool_size as usize)
            .div_ceil(workers)
            .max(2);
        let server = server
            .workers(workers)
            .worker_max_blocking_threads(blocking);
        let mut server = if settings.tls.enabled {
            let acceptor = tls_acceptor(&state, &server_cert, &server_key)?;
            server.listen_openssl(listener, acceptor)?
        } else {
            server.listen(listener)?
        };
        if let Some(admin) = admin_listener {
            server = if settings.tls.enabled {
                let acceptor = tls_acceptor(&state, &server_cert, &server_key)?;
                server.listen_openssl(admin, acceptor)?
            } else {
                server.listen(admin)?
            };
            tracing::info!(
                port = admin_port,
                "people's listener (admin API, documentation)"
            );
        }
        let server = server.run();
        tracing::info!(
            addr = %settings.listen.ip(), port, tls = settings.tls.enabled,
            backend = ?state.db.backend(), "tafel listening"
        );
        Ok(Application {
            server,
            port,
            first_admin_token,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped (Ctrl-C / SIGTERM in `tafel serve`). Then: no new
    /// connections, requests in flight finish (at most [`SHUTDOWN_SECS`]), idle
    /// keep-alive connections close, the webhook sender ends its pass. What runs on the
    /// blocking pool (a transaction, a reconcile pass under its lock) is finished by the
    /// runtime's shutdown in `tafel serve`, so locks are released by their owners.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        tokio::select! {
            result = &mut server => return result,
            _ = shutdown_signal() => {}
        }
        tracing::info!(
            grace_secs = SHUTDOWN_SECS,
            "shutting down: no new connections, requests in flight finish"
        );
        // The server future carries the stop out: it must keep running until the
        // workers have finished what they were doing (dropping it would cut them off).
        let (result, ()) = tokio::join!(server, handle.stop(true));
        self.state.notifier.stop().await;
        tracing::info!("stopped");
        result
    }

    /// Runs the server in the background (tests).
    pub fn spawn(self) -> (u16, AppState) {
        let (port, state) = (self.port, self.state.clone());
        tokio::spawn(self.server);
        (port, state)
    }
}

/// The secret webhooks are signed with, when a webhook is configured: the operator's
/// file (`webhooks.secret_file`, the same on every node), else the one the nodes share
/// through the database (a copy in `certs/webhook.secret`).
fn webhook_secret(
    conn: &mut crate::db::DbConn,
    secrets: &crate::secrets::SecretBox,
    settings: &Settings,
) -> anyhow::Result<Option<crate::notify::WebhookSecret>> {
    use crate::notify::{SecretCopy, WebhookSecret};
    if settings.webhooks.url.is_none() {
        return Ok(None);
    }
    if let Some(path) = &settings.webhooks.secret_file {
        return Ok(Some(
            WebhookSecret::load(path).context("webhooks.secret_file")?,
        ));
    }
    let (secret, copy) = WebhookSecret::shared(conn, secrets, &settings.certs_dir)?;
    match copy {
        Some(SecretCopy::Created(path)) => {
            tracing::info!(path = %path.display(), "wrote the webhook secret the nodes share: give it to the receiver so it can check signatures")
        }
        Some(SecretCopy::Replaced(path)) => {
            tracing::warn!(path = %path.display(), "this node's webhook secret was not the one the nodes share (stored in the database); the file now holds the shared one: give it to the receiver")
        }
        None => {}
    }
    Ok(Some(secret))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn tls_acceptor(
    state: &AppState,
    cert: &openssl::x509::X509,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> anyhow::Result<openssl::ssl::SslAcceptorBuilder> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder.set_certificate(cert)?;
    // The chain up to (not including) the root the devices trust.
    for c in state.ca.intermediates() {
        builder.add_extra_chain_cert(c)?;
    }
    builder.set_private_key(key)?;
    builder.check_private_key()?;
    builder.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x02h2\x08http/1.1", client)
            .ok_or(openssl::ssl::AlpnError::NOACK)
    });
    if state.settings.tls.client_certificates {
        // Ask for a client certificate but do not insist: admins and enrolling devices
        // have none. The MDM endpoints check identity themselves.
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(state.ca.anchor().to_owned())?;
        for c in state.ca.intermediates() {
            store.add_cert(c)?;
        }
        builder.set_verify_cert_store(store.build())?;
        builder.set_client_ca_list(openssl::stack::Stack::new()?);
        builder.add_client_ca(state.ca.anchor())?;
        builder.set_verify_callback(SslVerifyMode::PEER, |_ok, _ctx| true);
    }
    Ok(builder)
}

/// Keeps the TLS client certificate with the connection so handlers can read it.
fn attach_peer_certificate(conn: &dyn Any, ext: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::openssl::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        if let Some(cert) = tls.ssl().peer_certificate() {
            ext.insert(PeerCertificate(cert));
        }
    }
}

/// The headers every response carries: nothing is sniffed, framed, cached or sent as
/// a referrer; HTML may load only from tafel itself (the API documentation page), and
/// everything else nothing at all; HSTS when tafel serves TLS. A handler's own
/// `Cache-Control` and `Content-Security-Policy` (the console's pages) win.
fn security_headers<B>(res: &mut ServiceResponse<B>) {
    use actix_web::http::header;
    let docs = res.request().path().starts_with("/api/v1/docs");
    let tls = res
        .request()
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.tls.enabled);
    let csp = if docs {
        // Swagger UI: its own scripts and styles (inline styles included), served by tafel.
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    };
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        let cache = if docs { "no-cache" } else { "no-store" };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// With a separate people's listener, the device listener answers nothing under
/// `/api/` and nothing of the console: the admin API, login, documentation and the
/// console's pages are not reachable from there.
fn people_on_device_listener(req: &ServiceRequest) -> bool {
    let Some(admin) = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.admin_port)
    else {
        return false;
    };
    (req.path().starts_with("/api/") || crate::web::is_console_path(req.path()))
        && req.app_config().local_addr().port() != admin
}

/// A request path as the log may show it: an enrollment link's secret is not logged.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/enroll/") {
        Some(rest) if !rest.is_empty() => std::borrow::Cow::Borrowed("/enroll/<redacted>"),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// Opens the request's span and id (the first half of the access log).
fn start_request(req: &ServiceRequest) -> (String, tracing::Span) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %loggable_path(req.path()));
    req.extensions_mut().insert(RequestId(id.clone()));
    (id, span)
}

/// Awaits the response inside the span, logs it and adds `x-request-id`.
async fn finish_request<B>(
    id: String,
    group: usize,
    span: tracing::Span,
    fut: impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    async move {
        let mut res = fut.await?;
        let status = res.status().as_u16();
        let took = started.elapsed();
        crate::metrics::request(group, status, took);
        let ms = took.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else if status >= 400 {
            tracing::warn!(status, ms, "request rejected");
        } else {
            tracing::debug!(status, ms, "request done");
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), v);
        }
        security_headers(&mut res);
        Ok(res)
    }
    .instrument(span)
    .await
}
