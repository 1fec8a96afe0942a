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

use crate::assign::reconcile;
use crate::config::Settings;
use crate::db::schema::{class_devices, devices};
use crate::db::{new_id, now, DbConn};
use crate::sim::apns::SimPki;
use crate::startup::Application;
use crate::state::AppState;

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
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Inserts `n` active devices with push tokens into a school (and the first `class_n`
/// of them into a class); returns their ids.
fn insert_devices(
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
        crate::with_backend!(conn, |c| insert.execute(c))?;
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
        crate::with_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(ids)
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// A server on a temporary directory, with its first-start token.
struct Server {
    app: AppState,
    base: String,
    token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn server(
    opts: &BenchOptions,
    tweak: impl FnOnce(&mut Settings, &std::path::Path) -> anyhow::Result<()>,
) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut s = Settings {
        listen: listener.local_addr()?,
        public_url: format!("http://127.0.0.1:{port}"),
        certs_dir: dir.path().join("certs"),
        database_url: opts
            .database_url
            .clone()
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
    async fn school(&self, topic: &str) -> anyhow::Result<(String, String, String, String)> {
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
    let file =
        crate::sim::vpp::token_file("Bench", chrono::Utc::now() + chrono::Duration::days(300));
    let vpp = crate::sim::vpp::VppSim::start(&file)?;
    let url = vpp.url.clone();
    let srv = server(opts, |s, _| {
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
            .map_err(|e| crate::db::DbError::Migration(e.to_string()))
        })
        .await?;
    state.licences.sync().await?;
    let t = Instant::now();
    let st = state.clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<reconcile::Report> {
        let mut conn = st.db.get()?;
        let sign = |b: &[u8]| st.signer.sign(b, &st.ca).map_err(|e| e.to_string());
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
        let sign = |b: &[u8]| st.signer.sign(b, &st.ca).map_err(|e| e.to_string());
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

/// ADE device sync: `devices` devices from a local device enrollment API.
async fn ade_scenario(opts: &BenchOptions, devices: usize) -> anyhow::Result<()> {
    let tokens = crate::ade::token::OAuthTokens {
        consumer_key: "CK_bench".into(),
        consumer_secret: "CS_bench".into(),
        access_token: "AT_bench".into(),
        access_secret: "AS_bench".into(),
        access_token_expiry: chrono::Utc::now() + chrono::Duration::days(365),
    };
    let sim = crate::sim::ade::AdeSim::start(tokens.clone())?;
    sim.add_devices(devices);
    let url = sim.url.clone();
    let srv = server(opts, |s, _| {
        s.reconcile.automatic = false;
        s.ade.base_url = url;
        Ok(())
    })
    .await?;
    let state = srv.app.clone();
    let (tid, _, _, _) = srv.school("com.apple.mgmt.External.bench-ade").await?;
    let t = state.ade.create(&tid, "bench").await?;
    let cert = openssl::x509::X509::from_pem(t.cert_pem.as_bytes())?;
    let p7m = crate::ade::token::encrypt_server_token_for_tests(&tokens, &cert)?;
    state.ade.upload(&t.id, &p7m, "bench").await?;
    let started = Instant::now();
    let reports = state.ade.sync().await?;
    let took = started.elapsed();
    for r in reports {
        println!(
            "ADE sync: {} devices ({} new in tafel) in {:.2} s with {} device enrollment API calls (full fetch: {})",
            r.devices,
            r.new_devices,
            took.as_secs_f64(),
            r.api_calls,
            r.full
        );
    }
    Ok(())
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
        let srv = server(&opts, |s, _| {
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
                .map_err(|e| crate::db::DbError::Migration(e.to_string()))
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
                    let sign = |b: &[u8]| st.signer.sign(b, &st.ca).map_err(|e| e.to_string());
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
    }

    // 2. Fan-out to `fanout_devices` and a 30-device class rollout, pushed to a local APNs server.
    {
        let topic = "com.apple.mgmt.External.bench-push";
        let pki = Arc::new(SimPki::generate(topic)?);
        let sim = pki.start_sim()?;
        let (url, ca_pem) = (sim.url.clone(), pki.ca_pem()?);
        let srv = server(&opts, |s, dir| {
            let ca = dir.join("apns-ca.pem");
            std::fs::write(&ca, &ca_pem)?;
            s.push.base_url = url;
            s.push.extra_root_ca = Some(ca);
            Ok(())
        })
        .await?;
        let (tid, sid, cid, app_id) = srv.school(topic).await?;
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
        let n = opts.fanout_devices;
        let state = srv.app.clone();
        let (t_tid, t_sid, t_cid) = (tid.clone(), sid.clone(), cid.clone());
        state
            .db
            .run(move |conn| {
                insert_devices(conn, &t_tid, &t_sid, Some(&t_cid), 30, n, topic)
                    .map_err(|e| crate::db::DbError::Migration(e.to_string()))
            })
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

async fn wait_pushes(sim: &crate::sim::apns::ApnsSim, n: usize, max: Duration) {
    let until = Instant::now() + max;
    while sim.received().len() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
