//! `tafel bench`: the project's own benchmark for the figures the design names —
//! a full reconcile pass, fan-out of one assignment (queued and pushed to a local APNs
//! server), a 30-device class rollout, push throughput, and device-list latency — on a
//! fresh database with generated devices, over real HTTP where a person or a device
//! would use HTTP. Device traffic is measured by `tafel simulate`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::prelude::*;
use serde_json::json;

use crate::apns::SimPki;
use tafel::assign::reconcile;
use tafel::config::Settings;
use tafel::db::schema::{class_devices, devices};
use tafel::db::{new_id, now, DbConn};
use tafel::startup::Application;
use tafel::state::AppState;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Devices for the reconcile pass and the device list.
    pub reconcile_devices: usize,
    /// Devices for the fan-out of one assignment.
    pub fanout_devices: usize,
    /// Device-list requests.
    pub list_requests: usize,
    /// Database URL; default a temporary SQLite file.
    pub database_url: Option<String>,
    /// Devices for the licence reconcile (0: skip).
    pub licence_devices: usize,
    /// Licensed apps for the licence reconcile.
    pub licence_apps: usize,
    /// Devices for the ADE sync (0: skip).
    pub ade_devices: usize,
    /// Requests per web-console page (overview, device list, device page) at
    /// `reconcile_devices` (0: skip).
    pub page_requests: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Inserts `n` active devices with push tokens into a school (and the first `class_n`
/// of them into a class); returns their ids.
pub(crate) fn insert_devices(
    conn: &mut DbConn,
    tenant: &str,
    school: &str,
    class: Option<&str>,
    class_n: usize,
    n: usize,
    topic: &str,
) -> anyhow::Result<Vec<String>> {
    let at = now();
    let mut ids = Vec::with_capacity(n);
    let base: u64 = rand_u64() & 0x0000_FFFF_FFF0_0000;
    for chunk_start in (0..n).step_by(500) {
        let end = (chunk_start + 500).min(n);
        let rows: Vec<_> = (chunk_start..end)
            .map(|i| {
                let id = new_id();
                ids.push(id.clone());
                let token = hex::encode(openssl::sha::sha256(id.as_bytes()));
                (
                    devices::id.eq(id),
                    devices::udid.eq(Some(format!("00008103-{:016X}", base + i as u64))),
                    devices::serial_number.eq(Some(format!("BENCH{:07}", i))),
                    devices::tenant_id.eq(Some(tenant.to_owned())),
                    devices::school_id.eq(Some(school.to_owned())),
                    devices::name.eq(Some(format!("iPad {i:06}"))),
                    devices::product_name.eq(Some(
                        if i % 3 == 0 { "iPad13,18" } else { "iPad12,1" }.to_owned(),
                    )),
                    devices::os_version
                        .eq(Some(if i % 2 == 0 { "18.1" } else { "17.6" }.to_owned())),
                    devices::enrollment_status.eq("active"),
                    devices::topic.eq(Some(topic.to_owned())),
                    (
                        devices::push_token.eq(Some(token)),
                        devices::push_magic.eq(Some(format!("magic-{i}"))),
                        devices::awaiting_configuration.eq(false),
                        devices::last_seen_at.eq(Some(at)),
                        devices::created_at.eq(at),
                        devices::updated_at.eq(at),
                    ),
                )
            })
            .collect();
        let insert = diesel::insert_into(devices::table).values(rows);
        tafel::with_backend!(conn, |c| insert.execute(c))?;
    }
    if let Some(class) = class {
        let rows: Vec<_> = ids[..class_n.min(n)]
            .iter()
            .map(|d| {
                (
                    class_devices::class_id.eq(class.to_owned()),
                    class_devices::device_id.eq(d.clone()),
                )
            })
            .collect();
        let insert = diesel::insert_into(class_devices::table).values(rows);
        tafel::with_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(ids)
}

pub(crate) fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// A server on a temporary directory, with its first-start token.
pub(crate) struct Server {
    pub(crate) app: AppState,
    pub(crate) base: String,
    token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub(crate) async fn server(
    database_url: Option<&str>,
    tweak: impl FnOnce(&mut Settings, &std::path::Path) -> anyhow::Result<()>,
) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut s = Settings {
        listen: listener.local_addr()?,
        public_url: format!("http://127.0.0.1:{port}"),
        certs_dir: dir.path().join("certs"),
        database_url: database_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display())),
        log_level: "error".into(),
        ..Settings::default()
    };
    tweak(&mut s, dir.path())?;
    let app = Application::build_on(s, listener).await?;
    let token = app
        .first_admin_token
        .clone()
        .context("no first-start token (use an empty database)")?;
    let (_, state) = app.spawn();
    Ok(Server {
        app: state,
        base: format!("http://127.0.0.1:{port}"),
        token,
        client: reqwest::Client::new(),
        _dir: dir,
    })
}

impl Server {
    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let v: serde_json::Value = res.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
        Ok(v)
    }

    /// Authority (topic), school, class and an app in the catalog.
    pub(crate) async fn school(
        &self,
        topic: &str,
    ) -> anyhow::Result<(String, String, String, String)> {
        let slug = format!("bench-{:x}", rand_u64() as u32);
        let t = self
            .post(
                "/api/v1/tenants",
                json!({"name": "Bench", "slug": slug, "push_topic": topic}),
            )
            .await?;
        let tid = t["id"].as_str().unwrap_or_default().to_owned();
        let s = self
            .post(
                &format!("/api/v1/tenants/{tid}/schools"),
                json!({"name": "Bench school"}),
            )
            .await?;
        let sid = s["id"].as_str().unwrap_or_default().to_owned();
        let c = self
            .post(
                &format!("/api/v1/schools/{sid}/classes"),
                json!({"name": "7b", "school_year": "2026/27"}),
            )
            .await?;
        let cid = c["id"].as_str().unwrap_or_default().to_owned();
        let a = self
            .post("/api/v1/apps", json!({"tenant_id": tid, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": "361285480", "licensed": false}))
            .await?;
        Ok((
            tid,
            sid,
            cid,
            a["id"].as_str().unwrap_or_default().to_owned(),
        ))
    }
}

/// Licence reconcile: `devices` devices, `apps` licensed apps assigned to their school,
/// against a local Apps and Books server; prints time and API calls.
async fn licence_scenario(opts: &BenchOptions, devices: usize, apps: usize) -> anyhow::Result<()> {
    let file = crate::vpp::token_file("Bench", chrono::Utc::now() + chrono::Duration::days(300));
    let vpp = crate::vpp::VppSim::start(&file)?;
    let url = vpp.url.clone();
    let srv = server(opts.database_url.as_deref(), |s, _| {
        s.reconcile.automatic = false;
        s.vpp.base_url = url;
        Ok(())
    })
    .await?;
    let state = srv.app.clone();
    let (tid, sid, _, _) = srv.school("com.apple.mgmt.External.bench-vpp").await?;
    srv.post(
        &format!("/api/v1/tenants/{tid}/vpp-tokens"),
        json!({"token_file": file}),
    )
    .await?;
    for i in 0..apps {
        let adam = (500_000_000 + i).to_string();
        vpp.add_asset(&adam, devices as i64);
        let a = srv
            .post("/api/v1/apps", json!({"tenant_id": tid, "name": format!("App {i}"), "bundle_id": format!("de.bench.app{i}"), "adam_id": adam}))
            .await?;
        srv.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": a["id"], "target_kind": "school", "target_id": sid})).await?;
    }
    let (t_tid, t_sid) = (tid.clone(), sid.clone());
    state
        .db
        .run(move |conn| {
            insert_devices(
                conn,
                &t_tid,
                &t_sid,
                None,
                0,
                devices,
                "com.apple.mgmt.External.bench-vpp",
            )
        })
        .await?;
    state.licences.sync().await?;
    let t = Instant::now();
    let st = state.clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<reconcile::Report> {
        let mut conn = st.db.get()?;
        let sign = |p: &tafel::catalog::Profile| st.deliver_profile(p);
        Ok(reconcile::run(&mut conn, chrono::Utc::now(), None, &sign)?)
    })
    .await??;
    let (licensed, calls) = state
        .licences
        .after_pass(&report, chrono::Utc::now())
        .await?;
    let licensing = t.elapsed();
    let st = state.clone();
    let again = tokio::task::spawn_blocking(move || -> anyhow::Result<reconcile::Report> {
        let mut conn = st.db.get()?;
        let sign = |p: &tafel::catalog::Profile| st.deliver_profile(p);
        Ok(reconcile::run(&mut conn, chrono::Utc::now(), None, &sign)?)
    })
    .await??;
    println!(
        "licence reconcile: {devices} devices x {apps} apps: {} licences needed, {} associated, {} devices licensed in {:.2} s with {calls} Apps and Books API calls; the next pass queued {} installs in {:.2} s total",
        report.needed_licences.len(),
        vpp.assignments().len(),
        licensed.iter().collect::<std::collections::HashSet<_>>().len(),
        licensing.as_secs_f64(),
        again.installs,
        t.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn ade_tokens() -> tafel::ade::token::OAuthTokens {
    tafel::ade::token::OAuthTokens {
        consumer_key: "CK_bench".into(),
        consumer_secret: "CS_bench".into(),
        access_token: "AT_bench".into(),
        access_secret: "AS_bench".into(),
        access_token_expiry: chrono::Utc::now() + chrono::Duration::days(365),
    }
}

/// The server-token round trip for an authority (key pair, `.p7m`, upload).
async fn ade_token(state: &AppState, tenant_id: &str) -> anyhow::Result<()> {
    let t = state.ade.create(tenant_id, "bench").await?;
    let cert = openssl::x509::X509::from_pem(t.cert_pem.as_bytes())?;
    let p7m = crate::server_token::encrypt_server_token(&ade_tokens(), &cert)?;
    state.ade.upload(&t.id, &p7m, "bench").await?;
    Ok(())
}

/// ADE device sync: `devices` devices from a local device enrollment API.
async fn ade_scenario(opts: &BenchOptions, devices: usize) -> anyhow::Result<()> {
    let sim = crate::ade::AdeSim::start(ade_tokens())?;
    let serials = sim.add_devices(devices);
    let url = sim.url.clone();
    let srv = server(opts.database_url.as_deref(), |s, _| {
        s.reconcile.automatic = false;
        s.ade.base_url = url;
        s.ade.sync_minutes = 0;
        Ok(())
    })
    .await?;
    let state = srv.app.clone();
    let (tid, sid, _, _) = srv.school("com.apple.mgmt.External.bench-ade").await?;
    // Every serial is placed by rule, so the sync also defines the school's profile
    // and assigns it to every device.
    for chunk in serials.chunks(10_000) {
        srv.post(
            &format!("/api/v1/tenants/{tid}/ade-rules"),
            json!({"school_id": sid, "serials": chunk}),
        )
        .await?;
    }
    ade_token(&state, &tid).await?;
    let started = Instant::now();
    let reports = state.ade.sync().await?;
    let took = started.elapsed();
    for r in reports {
        println!(
            "ADE sync: {} devices ({} new in tafel, {} placed by rule, school profile defined {}x and assigned to {}) in {:.2} s with {} device enrollment API calls (full fetch: {})",
            r.devices,
            r.new_devices,
            r.placed,
            r.profiles_defined,
            r.profiles_assigned,
            took.as_secs_f64(),
            r.api_calls,
            r.full
        );
    }
    Ok(())
}

/// What `tafel simulate --ade` does.
#[derive(Debug, Clone)]
pub struct AdeSetupOptions {
    /// Reset iPads going through Setup Assistant.
    pub devices: usize,
    /// iPads in Setup Assistant at once.
    pub concurrency: usize,
    /// One RSA key for all iPads (spares key generation).
    pub shared_key: bool,
    /// How often a waiting iPad connects (stands in for APNs pushes).
    pub poll: Duration,
    /// Database URL; default a temporary SQLite file.
    pub database_url: Option<String>,
}

/// The figures of an ADE run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdeSetupSummary {
    /// iPads that reached DeviceConfigured.
    pub configured: usize,
    /// iPads that failed.
    pub errors: usize,
    /// First error messages.
    pub error_samples: Vec<String>,
    /// Wall time for all iPads.
    pub seconds: f64,
    /// First contact → DeviceConfigured, per iPad: median.
    pub p50_seconds: f64,
    /// 99th percentile.
    pub p99_seconds: f64,
    /// Slowest.
    pub max_seconds: f64,
    /// Commands each iPad executed before DeviceConfigured (incl.).
    pub commands_per_device: f64,
    /// The ADE sync before (devices, seconds, API calls).
    pub sync_devices: usize,
    /// Sync time.
    pub sync_seconds: f64,
    /// Device enrollment API calls of the sync (profiles included).
    pub sync_api_calls: u64,
}

/// Reset iPads enrolling through ADE against a tafel of its own (temporary database,
/// a local Apple School Manager, a simulated Apple device CA): serials placed by a rule,
/// synced, each school's profile assigned; then every iPad goes machine info → profile
/// → SCEP → Authenticate → TokenUpdate (awaiting configuration) → the school's Wi-Fi
/// and Keynote → DeviceConfigured. `progress(done, total)` is called as iPads finish.
pub async fn ade_setup(
    opts: AdeSetupOptions,
    progress: impl Fn(usize, usize),
) -> anyhow::Result<AdeSetupSummary> {
    use crate::setup;
    use futures_util::stream::{self, StreamExt};
    anyhow::ensure!(opts.devices > 0, "at least one device");
    let sim = crate::ade::AdeSim::start(ade_tokens())?;
    let serials = sim.add_devices(opts.devices);
    let device_ca = Arc::new(setup::DeviceCa::generate()?);
    let anchor_pem = device_ca.cert_pem()?;
    let url = sim.url.clone();
    let srv = server(opts.database_url.as_deref(), move |s, dir| {
        let anchors = dir.join("simulated-device-ca.pem");
        std::fs::write(&anchors, &anchor_pem)?;
        s.ade.base_url = url;
        s.ade.machine_info_anchors = vec![anchors];
        s.ade.sync_minutes = 0;
        Ok(())
    })
    .await?;
    let state = srv.app.clone();
    let (tid, sid, _, keynote) = srv.school("com.apple.mgmt.External.sim-ade").await?;
    let wifi = srv
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": sid, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang", "school_slug": "sim"}}))
        .await?;
    for (kind, id) in [("profile", wifi["id"].clone()), ("app", json!(keynote))] {
        srv.post(
            "/api/v1/assignments",
            json!({"item_kind": kind, "item_id": id, "target_kind": "school", "target_id": sid}),
        )
        .await?;
    }
    srv.post(
        &format!("/api/v1/tenants/{tid}/ade-rules"),
        json!({"school_id": sid, "serials": serials, "description": "simulated delivery"}),
    )
    .await?;
    ade_token(&state, &tid).await?;
    let started = Instant::now();
    let report = state
        .ade
        .sync()
        .await?
        .pop()
        .context("the ADE sync reported nothing")?;
    let sync_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.profiles_assigned == opts.devices,
        "profile assigned to {} of {} serials",
        report.profiles_assigned,
        opts.devices
    );

    let enroll_url = format!("{}{}", srv.base, tafel::mdm::ade::PATH);
    let client = reqwest::Client::new();
    // Device-side work a real iPad does on its own CPU (its Apple identity exists
    // already; its SCEP key is made on every iPad at once) is done before any clock
    // starts, so the figures are tafel's and the protocol's, not the simulator's.
    let shared = if opts.shared_key {
        Some(crate::enroll::new_key()?)
    } else {
        None
    };
    let ca = device_ca.clone();
    let ipads: Vec<(
        tafel::protocol::Udid,
        String,
        openssl::pkey::PKey<openssl::pkey::Private>,
        setup::AppleIdentity,
    )> = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        serials
            .into_iter()
            .enumerate()
            .map(|(i, serial)| {
                let udid = tafel::protocol::Udid::parse(&format!("00008103-SIMADE{i:010}"))?;
                let key = match &shared {
                    Some(k) => k.clone(),
                    None => crate::enroll::new_key()?,
                };
                let apple = ca.identity(udid.as_str(), &key)?;
                Ok((udid, serial, key, apple))
            })
            .collect()
    })
    .await??;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Result<(f64, usize), String>> = stream::iter(ipads)
        .map(|(udid, serial, key, apple)| {
            let (client, enroll_url) = (client.clone(), enroll_url.clone());
            let (done, progress, poll) = (&done, &progress, opts.poll);
            async move {
                let outcome = async {
                    let t0 = Instant::now();
                    let mut ipad =
                        setup::ade_enroll(&client, &enroll_url, udid, serial, &apple, Some(key))
                            .await?;
                    ipad.store.insert(361285480, "com.apple.Keynote".into());
                    let seen =
                        setup::await_configuration(&mut ipad, Duration::from_secs(600), poll)
                            .await?;
                    Ok::<_, crate::device::SimError>((t0, seen))
                }
                .await
                .map(|(t0, seen)| (t0.elapsed().as_secs_f64(), seen.len()))
                .map_err(|e| {
                    // The whole chain: "error sending request" alone says little.
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    text
                });
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(n, opts.devices);
                outcome
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = Vec::new();
    let mut commands = 0usize;
    let mut error_samples = Vec::new();
    let mut errors = 0;
    for r in results {
        match r {
            Ok((t, n)) => {
                times.push(t);
                commands += n;
            }
            Err(e) => {
                errors += 1;
                if error_samples.len() < 5 {
                    error_samples.push(e);
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(AdeSetupSummary {
        configured: times.len(),
        errors,
        error_samples,
        seconds,
        p50_seconds: percentile(&times, 0.50),
        p99_seconds: percentile(&times, 0.99),
        max_seconds: times.last().copied().unwrap_or_default(),
        commands_per_device: if times.is_empty() {
            0.0
        } else {
            commands as f64 / times.len() as f64
        },
        sync_devices: report.devices,
        sync_seconds,
        sync_api_calls: report.api_calls,
    })
}

/// Runs every scenario and prints the figures.
pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    if opts.ade_devices > 0 {
        ade_scenario(&opts, opts.ade_devices).await?;
    }
    if opts.licence_devices > 0 {
        licence_scenario(&opts, opts.licence_devices, opts.licence_apps).await?;
    }
    // 1. A full reconcile pass and device-list latency at `reconcile_devices`.
    {
        let srv = server(opts.database_url.as_deref(), |s, _| {
            s.reconcile.automatic = false;
            Ok(())
        })
        .await?;
        let (tid, sid, cid, app_id) = srv.school("com.apple.mgmt.External.bench").await?;
        let n = opts.reconcile_devices;
        let state = srv.app.clone();
        let (t_tid, t_sid, t_cid) = (tid.clone(), sid.clone(), cid.clone());
        let t0 = Instant::now();
        state
            .db
            .run(move |conn| {
                insert_devices(
                    conn,
                    &t_tid,
                    &t_sid,
                    Some(&t_cid),
                    30,
                    n,
                    "com.apple.mgmt.External.bench",
                )
            })
            .await?;
        eprintln!(
            "inserted {n} devices in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        srv.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": app_id, "target_kind": "school", "target_id": sid})).await?;
        for label in [
            "first pass (enqueues every install)",
            "second pass (nothing to do)",
        ] {
            let st = state.clone();
            let t = Instant::now();
            let report =
                tokio::task::spawn_blocking(move || -> anyhow::Result<reconcile::Report> {
                    let mut conn = st.db.get()?;
                    let sign = |p: &tafel::catalog::Profile| st.deliver_profile(p);
                    Ok(reconcile::run(&mut conn, chrono::Utc::now(), None, &sign)?)
                })
                .await??;
            println!(
                "reconcile {label}: {} devices in {:.2} s ({} installs queued, {} commands)",
                report.devices,
                t.elapsed().as_secs_f64(),
                report.installs,
                report.commands
            );
        }
        let queries = [
            format!("/api/v1/devices?school_id={sid}&limit=50"),
            format!("/api/v1/devices?school_id={sid}&os_version=18.*&model=iPad13,18&limit=50"),
            format!("/api/v1/devices?class_id={cid}&limit=50"),
            "/api/v1/devices?q=ipad%2000042&limit=50".to_owned(),
            format!("/api/v1/devices?school_id={sid}&enrolled=true&last_seen_after=2020-01-01T00:00:00Z&limit=50"),
        ];
        let mut lat = Vec::new();
        let mut cursor: Option<String> = None;
        for i in 0..opts.list_requests {
            let mut url = format!("{}{}", srv.base, queries[i % queries.len()]);
            // Every fifth request pages on from the previous school page.
            if i % queries.len() == 0 {
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
            }
            let t = Instant::now();
            let res = srv.client.get(&url).bearer_auth(&srv.token).send().await?;
            anyhow::ensure!(res.status().is_success(), "GET {url}: {}", res.status());
            let v: serde_json::Value = res.json().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            if i % queries.len() == 0 {
                cursor = v["next_cursor"].as_str().map(str::to_owned);
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "device list at {n} devices: {} filtered pages, p50 {:.1} ms, p99 {:.1} ms",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
        if opts.page_requests > 0 {
            console_pages(&srv, &sid, &cid, n, opts.page_requests).await?;
        }
    }

    // 2. Fan-out to `fanout_devices` and a 30-device class rollout, pushed to a local APNs server.
    {
        let PushBench {
            srv,
            sim,
            pki,
            tid,
            sid,
            cid,
            app_id,
        } = push_bench(opts.database_url.as_deref()).await?;
        let topic = PUSH_TOPIC;
        // The class rollout needs its 30 devices whatever the fan-out size.
        let n = opts.fanout_devices.max(30);
        let state = srv.app.clone();
        let (t_tid, t_sid, t_cid) = (tid.clone(), sid.clone(), cid.clone());
        state
            .db
            .run(move |conn| insert_devices(conn, &t_tid, &t_sid, Some(&t_cid), 30, n, topic))
            .await?;

        // 30-device class rollout: assignment → queued → pushed.
        let t = Instant::now();
        srv.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": app_id, "target_kind": "class", "target_id": cid})).await?;
        wait_pushes(&sim, 30, Duration::from_secs(60)).await;
        let rollout = t.elapsed();
        let got = sim.received().len();
        println!(
            "class rollout: 30 devices queued and pushed in {:.0} ms ({got} pushes received)",
            rollout.as_secs_f64() * 1000.0
        );

        // Fan-out: one assignment to the whole school.
        let before = sim.received().len();
        let pages = srv
            .post("/api/v1/apps", json!({"tenant_id": tid, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726", "licensed": false}))
            .await?;
        let t = Instant::now();
        srv.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": pages["id"], "target_kind": "school", "target_id": sid})).await?;
        wait_pushes(&sim, before + n, Duration::from_secs(120)).await;
        let fanout = t.elapsed();
        let pushes = sim.received();
        let fan: Vec<_> = pushes[before..].to_vec();
        let first = fan.first().map(|p| p.at);
        let last = fan.last().map(|p| p.at);
        println!("fan-out: one assignment to {n} devices queued and pushed in {:.2} s ({} pushes received)", fanout.as_secs_f64(), fan.len());
        if let (Some(a), Some(b)) = (first, last) {
            let secs = (b - a).num_milliseconds().max(1) as f64 / 1000.0;
            println!("push throughput: {} pushes in {:.2} s = {:.0} pushes/s over HTTP/2 to the local APNs server", fan.len(), secs, fan.len() as f64 / secs);
        }
        drop(pki);
    }
    Ok(())
}

const PUSH_TOPIC: &str = "com.apple.mgmt.External.bench-push";

/// A server that pushes to a local APNs simulator, with an authority holding the
/// simulator's push certificate (its school, class and an app).
struct PushBench {
    srv: Server,
    sim: crate::apns::ApnsSim,
    pki: Arc<SimPki>,
    tid: String,
    sid: String,
    cid: String,
    app_id: String,
}

async fn push_bench(database_url: Option<&str>) -> anyhow::Result<PushBench> {
    let pki = Arc::new(SimPki::generate(PUSH_TOPIC)?);
    let sim = pki.start_sim()?;
    let (url, ca_pem) = (sim.url.clone(), pki.ca_pem()?);
    let srv = server(database_url, |s, dir| {
        let ca = dir.join("apns-ca.pem");
        std::fs::write(&ca, &ca_pem)?;
        s.push.base_url = url;
        // The simulator's CA stands in for Apple's push CA.
        s.push.certificate_anchors = vec![ca.clone()];
        s.push.extra_root_ca = Some(ca);
        Ok(())
    })
    .await?;
    let (tid, sid, cid, app_id) = srv.school(PUSH_TOPIC).await?;
    let cert_pem = String::from_utf8(pki.push.cert.to_pem()?)?;
    let key_pem = String::from_utf8(pki.push.key.private_key_to_pem_pkcs8()?)?;
    let res = srv
        .client
        .put(format!(
            "{}/api/v1/tenants/{tid}/push-certificate",
            srv.base
        ))
        .bearer_auth(&srv.token)
        .json(&json!({"certificate_pem": cert_pem, "private_key_pem": key_pem, "force": true}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "push certificate upload: {}",
        res.status()
    );
    Ok(PushBench {
        srv,
        sim,
        pki,
        tid,
        sid,
        cid,
        app_id,
    })
}

/// Push under pressure: five iPads get one command each in one go; APNs never answers
/// the first (the request hangs beyond the client's timeout), answers the second 503,
/// the third 429 with `Retry-After: 5`, the last two 200. Counts the pushes each token
/// receives over `seconds` with the server's default settings, and how long the
/// healthy iPads' results took to be recorded.
pub async fn push_pressure(database_url: Option<&str>, seconds: u64) -> anyhow::Result<()> {
    let b = push_bench(database_url).await?;
    let state = b.srv.app.clone();
    let (tid, sid) = (b.tid.clone(), b.sid.clone());
    let ids = state
        .db
        .run(move |conn| insert_devices(conn, &tid, &sid, None, 0, 5, PUSH_TOPIC))
        .await?;
    let token = |i: usize| hex::encode(openssl::sha::sha256(ids[i].as_bytes()));
    let names = [
        "hanging",
        "503",
        "429 (Retry-After: 5)",
        "healthy",
        "healthy",
    ];
    b.sim
        .set_delay(&token(0), Duration::from_secs(seconds + 60));
    b.sim
        .set_response(&token(1), crate::apns::Response::from_status(503));
    b.sim.set_response(
        &token(2),
        crate::apns::Response::TooManyRequests {
            retry_after: Some(5),
        },
    );
    let udids: Vec<String> = {
        let ids = ids.clone();
        state
            .db
            .run(move |conn| -> anyhow::Result<Vec<String>> {
                let q = devices::table
                    .filter(devices::id.eq_any(&ids))
                    .select((devices::id, devices::udid));
                let rows: Vec<(String, Option<String>)> =
                    tafel::with_backend!(conn, |c| q.load(c))?;
                Ok(ids
                    .iter()
                    .filter_map(|id| rows.iter().find(|r| &r.0 == id)?.1.clone())
                    .collect())
            })
            .await?
    };
    let t = Instant::now();
    b.srv
        .post(
            "/api/v1/commands",
            json!({"udids": udids, "request_type": "ProfileList"}),
        )
        .await?;
    // When were the healthy iPads' results recorded?
    let mut healthy_recorded: Option<Duration> = None;
    let end = t + Duration::from_secs(seconds);
    while Instant::now() < end {
        if healthy_recorded.is_none() {
            let healthy = vec![ids[3].clone(), ids[4].clone()];
            let done = state
                .db
                .run(move |conn| -> anyhow::Result<i64> {
                    let q = devices::table
                        .filter(devices::id.eq_any(&healthy))
                        .filter(devices::last_push_result.eq("delivered"))
                        .count();
                    Ok(tafel::with_backend!(conn, |c| q.get_result(c))?)
                })
                .await?;
            if done == 2 {
                healthy_recorded = Some(t.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = b.sim.received();
    println!("push under pressure over {seconds} s (server defaults, one command to five iPads):");
    for (i, name) in names.iter().enumerate() {
        let tok = token(i);
        let at: Vec<String> = received
            .iter()
            .filter(|p| p.token == tok)
            .map(|p| {
                format!(
                    "{:.1}",
                    (p.at - received[0].at).num_milliseconds() as f64 / 1000.0
                )
            })
            .collect();
        println!(
            "  {name:<22} {:>3} pushes (at s: {})",
            at.len(),
            at.join(", ")
        );
    }
    match healthy_recorded {
        Some(d) => println!(
            "  healthy results recorded {:.2} s after the command was queued",
            d.as_secs_f64()
        ),
        None => println!("  healthy results not recorded within {seconds} s"),
    }
    drop(b.pki);
    Ok(())
}

/// The web console as a browser uses it, at `n` devices: logs in through the form (its
/// cookie and token), then times the overview, the device list (a school's first page,
/// a class, a search, a later page) and device pages, each rendered in full.
async fn console_pages(
    srv: &Server,
    sid: &str,
    cid: &str,
    n: usize,
    requests: usize,
) -> anyhow::Result<()> {
    let password = "bench console password";
    srv.post(
        "/api/v1/users",
        json!({"name": "Bench admin", "email": "bench@console.example", "role": "district_admin", "password": password}),
    )
    .await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie_of = |res: &reqwest::Response, name: &str| -> Option<String> {
        res.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
    };
    let page = client.get(format!("{}/login", srv.base)).send().await?;
    let pre = cookie_of(&page, "tafel_login").context("no log-in cookie")?;
    let html = page.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .context("no log-in token")?
        .to_owned();
    let res = client
        .post(format!("{}/login", srv.base))
        .header(reqwest::header::COOKIE, format!("tafel_login={pre}"))
        .form(&[
            ("email", "bench@console.example"),
            ("password", password),
            ("csrf", &csrf),
        ])
        .send()
        .await?;
    let session = cookie_of(&res, "tafel_session").context("log-in refused")?;
    // A device to open, and the cursor of a later page of the school.
    let first = client
        .get(format!(
            "{}/api/v1/devices?school_id={sid}&limit=500",
            srv.base
        ))
        .bearer_auth(&srv.token)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let udids: Vec<String> = first["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["udid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let later = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!udids.is_empty(), "no devices to open");
    /// A page's name and its path for the i-th request.
    type Page<'a> = (&'a str, Box<dyn Fn(usize) -> String + 'a>);
    let pages: [Page<'_>; 3] = [
        ("overview", Box::new(|_| "/admin".to_owned())),
        (
            "device list",
            Box::new(move |i| match i % 4 {
                0 => format!("/admin/geraete?schule={sid}"),
                1 => format!("/admin/geraete?schule={sid}&klasse={cid}"),
                2 => "/admin/geraete?q=iPad+0004".to_owned(),
                _ => format!("/admin/geraete?schule={sid}&weiter={later}"),
            }),
        ),
        (
            "device page",
            Box::new(move |i| format!("/admin/geraete/{}", udids[i % udids.len()])),
        ),
    ];
    for (name, path) in pages {
        let mut lat = Vec::with_capacity(requests);
        for i in 0..requests {
            let url = format!("{}{}", srv.base, path(i));
            let t = Instant::now();
            let res = client
                .get(&url)
                .header(reqwest::header::COOKIE, format!("tafel_session={session}"))
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "GET {url}: {}", res.status());
            let body = res.bytes().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(
                body.len() > 500,
                "GET {url}: a page of {} bytes",
                body.len()
            );
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "console {name} at {n} devices: {requests} pages, p50 {:.1} ms, p99 {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
    Ok(())
}

async fn wait_pushes(sim: &crate::apns::ApnsSim, n: usize, max: Duration) {
    let until = Instant::now() + max;
    while sim.received().len() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
