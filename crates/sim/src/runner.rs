//! `tafel simulate`: many simulated iPads against a running server over real HTTP.
//! Enrolls them (profile, SCEP, check-ins), optionally queues a command for all, then
//! keeps them connecting for a while and reports throughput and latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use super::device::{Answer, SimDevice, SimError};
use super::enroll;
use tafel::protocol::Udid;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Server base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Enrollment token to use; without one, `admin_token` creates a simulation school.
    pub enroll_token: Option<String>,
    /// District-admin API token (to create the school and queue commands).
    pub admin_token: Option<String>,
    /// Number of devices.
    pub devices: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long devices keep connecting after enrollment.
    pub duration: Duration,
    /// Share of commands answered NotNow (0..1).
    pub not_now: f64,
    /// Share of commands answered Error (0..1).
    pub error: f64,
    /// One RSA key for all devices (spares key generation; certificates stay per device).
    pub shared_key: bool,
    /// RequestType queued for every device after enrollment (needs `admin_token`).
    pub enqueue: Option<String>,
    /// Accept any server certificate (self-signed development servers).
    pub insecure: bool,
}

/// Live counters, for progress output.
#[derive(Debug, Default)]
pub struct Progress {
    /// Devices enrolled.
    pub enrolled: AtomicU64,
    /// Connect requests answered.
    pub connects: AtomicU64,
    /// Commands executed and answered.
    pub commands: AtomicU64,
    /// Failed requests.
    pub errors: AtomicU64,
}

/// The figures a run ends with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Devices enrolled.
    pub enrolled: usize,
    /// Seconds the enrollment phase took.
    pub enroll_seconds: f64,
    /// Devices enrolled per second.
    pub enrolled_per_second: f64,
    /// Enrollment latency (whole flow per device), milliseconds.
    pub enroll_p50_ms: f64,
    /// 99th percentile.
    pub enroll_p99_ms: f64,
    /// Connect requests answered (Idle and command answers).
    pub connects: u64,
    /// Seconds the connect phase took.
    pub connect_seconds: f64,
    /// Connect requests per second.
    pub connects_per_second: f64,
    /// Connect latency, milliseconds.
    pub connect_p50_ms: f64,
    /// 99th percentile.
    pub connect_p99_ms: f64,
    /// Slowest.
    pub connect_max_ms: f64,
    /// Commands executed and answered.
    pub commands: u64,
    /// Failed requests (enrollment and connects).
    pub errors: u64,
    /// First few error messages.
    pub error_samples: Vec<String>,
}

/// A small, fast, non-cryptographic generator for answer choices.
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // A failure here only makes the run's ids less random.
    let _ = openssl::rand::rand_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// Errors that end a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Setting up failed.
    #[error("{0}")]
    Setup(String),
    /// HTTP client.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Device-side failure.
    #[error(transparent)]
    Sim(#[from] SimError),
}

async fn admin_post(
    client: &reqwest::Client,
    opts: &SimOptions,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, RunError> {
    let token = opts.admin_token.as_deref().ok_or_else(|| {
        RunError::Setup(
            "--admin-token is needed to create a simulation school or queue commands".into(),
        )
    })?;
    let res = client
        .post(format!("{}{path}", opts.server))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let json: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        return Err(RunError::Setup(format!(
            "POST {path} answered {status}: {json}"
        )));
    }
    Ok(json)
}

/// Creates an authority, a school and a token for the run; returns the token.
async fn create_school(
    client: &reqwest::Client,
    opts: &SimOptions,
    run: u64,
) -> Result<String, RunError> {
    let slug = format!("sim-{:08x}", run as u32);
    let tenant = admin_post(
        client,
        opts,
        "/api/v1/tenants",
        json!({"name": format!("Simulation {slug}"), "slug": slug, "push_topic": format!("com.apple.mgmt.External.{slug}")}),
    )
    .await?;
    let tenant_id = tenant["id"].as_str().unwrap_or_default();
    let school = admin_post(
        client,
        opts,
        &format!("/api/v1/tenants/{tenant_id}/schools"),
        json!({"name": "Simulated school"}),
    )
    .await?;
    let school_id = school["id"].as_str().unwrap_or_default();
    let token = admin_post(
        client,
        opts,
        &format!("/api/v1/schools/{school_id}/enrollment-tokens"),
        json!({"description": "tafel simulate", "max_uses": opts.devices}),
    )
    .await?;
    token["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| RunError::Setup("the server did not return a token".into()))
}

/// Runs a simulation; `report` is called about once a second with the counters.
pub async fn run(
    opts: SimOptions,
    report: impl Fn(&str, &Progress) + Send + Sync + 'static,
) -> Result<Summary, RunError> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(opts.insecure)
        .pool_max_idle_per_host(opts.concurrency.max(1))
        .timeout(Duration::from_secs(30))
        .build()?;
    let run_id = random_u64();
    let token = match &opts.enroll_token {
        Some(t) => t.clone(),
        None => create_school(&client, &opts, run_id).await?,
    };
    let enroll_url = format!("{}/enroll/{token}", opts.server);
    let shared_key = if opts.shared_key {
        Some(enroll::new_key()?)
    } else {
        None
    };

    let progress = Arc::new(Progress::default());
    let phase = Arc::new(std::sync::Mutex::new("enrolling"));
    let ticker = {
        let (progress, phase) = (progress.clone(), phase.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let name = *phase.lock().unwrap_or_else(|e| e.into_inner());
                report(name, &progress);
            }
        })
    };

    let mut samples = Vec::new();
    let base = run_id & 0x0000_FFFF_FFFF_0000;
    let started = Instant::now();
    let results: Vec<(Result<SimDevice, SimError>, u32)> = stream::iter(0..opts.devices)
        .map(|n| {
            let (client, url, key, progress) = (
                client.clone(),
                enroll_url.clone(),
                shared_key.clone(),
                progress.clone(),
            );
            async move {
                let t = Instant::now();
                let udid = Udid::parse(&format!("00008103-{:016X}", base + n as u64));
                let result = match udid {
                    Ok(udid) => {
                        enroll::enroll(&client, &url, udid, format!("SIM{:09}", n), key).await
                    }
                    Err(e) => Err(SimError::Protocol(e)),
                };
                match &result {
                    Ok(_) => progress.enrolled.fetch_add(1, Ordering::Relaxed),
                    Err(_) => progress.errors.fetch_add(1, Ordering::Relaxed),
                };
                (
                    result,
                    t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
                )
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let enroll_seconds = started.elapsed().as_secs_f64();
    let mut enroll_lat = Vec::with_capacity(results.len());
    let mut devices = Vec::with_capacity(results.len());
    for (r, micros) in results {
        match r {
            Ok(d) => {
                enroll_lat.push(micros);
                devices.push(d);
            }
            Err(e) => {
                if samples.len() < 5 {
                    samples.push(e.to_string());
                }
            }
        }
    }
    enroll_lat.sort_unstable();

    if let Some(request_type) = &opts.enqueue {
        let udids: Vec<String> = devices.iter().map(|d| d.udid.to_string()).collect();
        for chunk in udids.chunks(10_000) {
            admin_post(
                &client,
                &opts,
                "/api/v1/commands",
                json!({"udids": chunk, "request_type": request_type}),
            )
            .await?;
        }
    }

    *phase.lock().unwrap_or_else(|e| e.into_inner()) = "connecting";
    let enrolled = devices.len();
    let workers = opts.concurrency.max(1).min(enrolled.max(1));
    let mut groups: Vec<Vec<SimDevice>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, d) in devices.into_iter().enumerate() {
        groups[i % workers].push(d);
    }
    let deadline = Instant::now() + opts.duration;
    let connect_started = Instant::now();
    let handles: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let progress = progress.clone();
            let (not_now, error) = (opts.not_now, opts.error);
            tokio::spawn(connect_loop(
                group,
                deadline,
                progress,
                not_now,
                error,
                random_u64() | 1,
            ))
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        if let Ok((mut l, errs)) = h.await {
            lat.append(&mut l);
            for e in errs {
                if samples.len() < 5 {
                    samples.push(e);
                }
            }
        }
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    ticker.abort();
    lat.sort_unstable();
    let connects = progress.connects.load(Ordering::Relaxed);
    Ok(Summary {
        enrolled,
        enroll_seconds,
        enrolled_per_second: enrolled as f64 / enroll_seconds.max(1e-9),
        enroll_p50_ms: percentile(&enroll_lat, 0.50),
        enroll_p99_ms: percentile(&enroll_lat, 0.99),
        connects,
        connect_seconds,
        connects_per_second: connects as f64 / connect_seconds.max(1e-9),
        connect_p50_ms: percentile(&lat, 0.50),
        connect_p99_ms: percentile(&lat, 0.99),
        connect_max_ms: lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        commands: progress.commands.load(Ordering::Relaxed),
        errors: progress.errors.load(Ordering::Relaxed),
        error_samples: samples,
    })
}

/// One worker: its devices connect in turn until the deadline; each connect sequence
/// (Idle, then one answer per command) runs until the server has nothing more.
async fn connect_loop(
    mut devices: Vec<SimDevice>,
    deadline: Instant,
    progress: Arc<Progress>,
    not_now: f64,
    error: f64,
    seed: u64,
) -> (Vec<u32>, Vec<String>) {
    let mut rng = XorShift(seed);
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    if devices.is_empty() {
        return (lat, errors);
    }
    let mut i = 0;
    while Instant::now() < deadline {
        let n = devices.len();
        let device = &mut devices[i % n];
        i += 1;
        let mut t = Instant::now();
        let mut reply = device.idle().await;
        loop {
            lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            let cmd = match reply {
                Ok(None) => {
                    progress.connects.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(cmd)) => {
                    progress.connects.fetch_add(1, Ordering::Relaxed);
                    cmd
                }
                Err(e) => {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    if errors.len() < 5 {
                        errors.push(e.to_string());
                    }
                    break;
                }
            };
            let roll = rng.next_f64();
            let answer = if roll < not_now {
                Answer::NotNow
            } else if roll < not_now + error {
                Answer::Error(super::device::error_chain(
                    12_000,
                    "MDMErrorDomain",
                    "Simulated failure",
                ))
            } else {
                device.execute(&cmd)
            };
            progress.commands.fetch_add(1, Ordering::Relaxed);
            t = Instant::now();
            reply = device.answer(&cmd, answer).await;
        }
    }
    (lat, errors)
}
