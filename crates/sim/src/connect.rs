//! `tafel-sim connect-bench` and `tafel-sim replay`: signed device connects per second,
//! measured with a client that costs next to nothing per request.
//!
//! The simulator signs every message with RSA on the cores the server needs; here every
//! body is signed once, in advance, as iOS signs it (`Mdm-Signature`, indefinite-length
//! BER), and the requests are replayed byte for byte over keep-alive connections by one
//! thread running a single-threaded runtime. What it costs per request is measured
//! (the thread's own CPU time) and printed beside the figures.
//!
//! `connect-bench` runs tafel in this process on a fresh database with `--devices`
//! enrolled iPads, `--active` of them with real identity certificates from the server's
//! CA, and prints two figures:
//! - **connects**: `Idle` messages from the active iPads (each once as a warm-up, then
//!   for `--seconds`), per second, with latency percentiles;
//! - **command round**: one command queued for `--round` iPads; each connects, receives
//!   it, answers `Acknowledged` and gets the empty reply; iPads per second.
//!
//! `--write-bodies FILE` writes the signed Idle bodies (one `signature<TAB>body` line
//! each) for another client such as wrk (`docs/bench/replay.lua`); `--hold N` keeps the
//! server up N seconds after the figures. The server logs to stderr as `tafel serve`
//! does (`--log-level`); the figures go to stdout. `replay` sends such a file to any server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use diesel::prelude::*;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Name, X509};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench::{insert_devices, server};
use tafel::db::schema::devices;
use tafel::pki::cms;
use tafel::protocol::Command;
use tafel::queue::{self, EnqueueOptions};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Enrolled iPads in the database.
    pub devices: usize,
    /// Of them, iPads with identity certificates whose Idle bodies are replayed.
    pub active: usize,
    /// Seconds of Idle connects.
    pub seconds: u64,
    /// Connections the client keeps open.
    pub connections: usize,
    /// iPads in the command round (at most `active`; 0: skip).
    pub round: usize,
    /// Database URL; default a temporary SQLite file.
    pub database_url: Option<String>,
    /// Where to write the signed Idle bodies.
    pub write_bodies: Option<PathBuf>,
    /// Seconds the server stays up after the figures.
    pub hold: u64,
    /// The server's log filter (`tafel serve`'s default: info).
    pub log_level: String,
}

/// One signed message, ready to send.
struct Signed {
    signature: String,
    body: String,
}

impl Signed {
    fn request(&self, host: &str, path: &str) -> Vec<u8> {
        format!(
            "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-apple-aspen-mdm\r\nMdm-Signature: {}\r\nContent-Length: {}\r\n\r\n{}",
            self.signature,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

fn plist(dict: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\"><plist version=\"1.0\"><dict>{dict}</dict></plist>"
    )
}

fn idle_body(udid: &str) -> String {
    plist(&format!(
        "<key>Status</key><string>Idle</string><key>UDID</key><string>{udid}</string>"
    ))
}

fn ack_body(udid: &str, uuid: &str) -> String {
    plist(&format!(
        "<key>CommandUUID</key><string>{uuid}</string><key>ProfileList</key><array/><key>Status</key><string>Acknowledged</string><key>UDID</key><string>{udid}</string>"
    ))
}

/// An active iPad: its UDID and identity.
struct Ipad {
    udid: String,
    cert: X509,
}

/// `f` of every item, the items split over the machine's cores, in order.
fn on_all_cores<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let parts: Vec<anyhow::Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || part.iter().map(f).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread failed")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Signs `bodies` on every core, as iOS encodes `Mdm-Signature`.
fn sign_all(
    items: Vec<(String, &X509)>,
    key: &PKey<Private>,
    what: &str,
) -> anyhow::Result<Vec<Signed>> {
    let started = Instant::now();
    let out = on_all_cores(&items, |(body, cert)| {
        let sig = cms::sign_detached_ber_indefinite(body.as_bytes(), cert, key)?;
        Ok(Signed {
            signature: base64::engine::general_purpose::STANDARD.encode(sig),
            body: body.clone(),
        })
    })?;
    println!(
        "  signed {} {what} bodies in advance ({:.1} s)",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Issues `n` identity certificates from the server's CA (one shared key: the server's
/// work per connect does not depend on it, the client's set-up does).
fn issue_identities(
    ca: &tafel::pki::CertificateAuthority,
    key: &PKey<Private>,
    n: usize,
) -> anyhow::Result<Vec<Ipad>> {
    let started = Instant::now();
    let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
    let base = crate::bench::rand_u64() & 0x0000_FFFF_FFF0_0000;
    let indices: Vec<u64> = (0..n as u64).collect();
    let out = on_all_cores(&indices, |i| {
        let udid = format!("00008130-{:016X}", base + i);
        let mut name = X509Name::builder()?;
        name.append_entry_by_text("CN", &udid)?;
        let cert = ca.issue_client_cert(&public, &name.build(), 30)?;
        Ok(Ipad { udid, cert })
    })?;
    println!(
        "  issued {} identity certificates ({:.1} s)",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Runs the benchmark (see the module).
pub async fn run(opts: ConnectOptions) -> anyhow::Result<()> {
    anyhow::ensure!(opts.active > 0, "--active: at least one iPad");
    anyhow::ensure!(
        opts.devices >= opts.active,
        "--devices must be at least --active"
    );
    anyhow::ensure!(opts.connections > 0, "--connections: at least one");
    // The server logs as `tafel serve` does (to stderr), so its cost is measured too.
    tafel::telemetry::init(tafel::config::LogFormat::Text, &opts.log_level);
    let topic = "com.apple.mgmt.External.bench-connect";
    let srv = server(opts.database_url.as_deref(), |s, _| {
        s.reconcile.automatic = false;
        Ok(())
    })
    .await?;
    let state = srv.app.clone();
    let backend = format!("{:?}", state.db.backend());
    println!(
        "connect-bench: {} iPads enrolled ({} with identities), {} backend",
        opts.devices, opts.active, backend
    );
    let (tid, sid, _, _) = srv.school(topic).await?;
    let started = Instant::now();
    let total = opts.devices;
    let ids = state
        .db
        .run(move |conn| insert_devices(conn, &tid, &sid, None, 0, total, topic))
        .await?;
    println!(
        "  inserted {} iPads ({:.1} s)",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
    let ipads = issue_identities(&state.ca, &key, opts.active)?;
    // The active iPads take the first rows: their UDID and identity certificate.
    let bound: Vec<(String, String, String)> = ipads
        .iter()
        .zip(&ids)
        .map(|(ipad, id)| {
            Ok((
                id.clone(),
                ipad.udid.clone(),
                tafel::pki::sha256_fingerprint(&ipad.cert)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let not_after = (chrono::Utc::now() + chrono::Duration::days(29)).naive_utc();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| -> anyhow::Result<()> {
                for (id, udid, sha) in &bound {
                    let update = diesel::update(devices::table.find(id)).set((
                        devices::udid.eq(udid),
                        devices::identity_cert_sha256.eq(sha),
                        devices::identity_cert_not_after.eq(not_after),
                    ));
                    tafel::with_backend!(conn, |c| update.execute(c))?;
                }
                Ok(())
            })
        })
        .await?;
    let idle = sign_all(
        ipads
            .iter()
            .map(|i| (idle_body(&i.udid), &i.cert))
            .collect(),
        &key,
        "Idle",
    )?;
    if let Some(path) = &opts.write_bodies {
        write_bodies(path, &idle)?;
    }
    let addr: SocketAddr = srv
        .base
        .trim_start_matches("http://")
        .parse()
        .context("server address")?;
    let path = state.settings.mdm.connect_path.clone();
    let host = addr.to_string();
    let requests: Arc<Vec<Vec<u8>>> =
        Arc::new(idle.iter().map(|s| s.request(&host, &path)).collect());

    // Every iPad once: the server meets each certificate for the first time.
    let warm = replay(
        addr,
        requests.clone(),
        opts.connections,
        Until::Count(requests.len()),
    )
    .await?;
    println!(
        "first contact: {} iPads in {:.2} s, {:.0}/s (each certificate checked in full)",
        warm.requests,
        warm.elapsed.as_secs_f64(),
        warm.per_second()
    );
    let load = replay(
        addr,
        requests,
        opts.connections,
        Until::Elapsed(Duration::from_secs(opts.seconds)),
    )
    .await?;
    println!(
        "connects: {:.0} signed Idle connects/s over {:.1} s ({} requests, {} not 200), {}",
        load.per_second(),
        load.elapsed.as_secs_f64(),
        load.requests,
        load.failures,
        load.describe(),
    );
    if opts.round > 0 {
        command_round(&state, &ipads, &ids, &idle, &key, addr, &opts).await?;
    }
    if opts.hold > 0 {
        println!(
            "holding the server at {}{} for {} s",
            srv.base, path, opts.hold
        );
        tokio::time::sleep(Duration::from_secs(opts.hold)).await;
    }
    Ok(())
}

/// One command to `round` iPads; each connects, receives it, answers, gets the empty reply.
async fn command_round(
    state: &tafel::state::AppState,
    ipads: &[Ipad],
    ids: &[String],
    idle: &[Signed],
    key: &PKey<Private>,
    addr: SocketAddr,
    opts: &ConnectOptions,
) -> anyhow::Result<()> {
    let n = opts.round.min(ipads.len());
    let command = Command::new("ProfileList", plist::Dictionary::new())?;
    let uuid = command.command_uuid.as_str().to_owned();
    let acks = sign_all(
        ipads[..n]
            .iter()
            .map(|i| (ack_body(&i.udid, &uuid), &i.cert))
            .collect(),
        key,
        "Acknowledged",
    )?;
    let targets = ids[..n].to_vec();
    let started = Instant::now();
    state
        .db
        .run(move |conn| {
            queue::enqueue(
                conn,
                &command,
                &targets,
                &EnqueueOptions {
                    source: "bench".into(),
                    ..EnqueueOptions::default()
                },
            )
        })
        .await?;
    println!(
        "  queued {uuid} for {n} iPads ({:.2} s)",
        started.elapsed().as_secs_f64()
    );
    let host = addr.to_string();
    let path = &state.settings.mdm.connect_path;
    let pairs: Arc<Vec<(Vec<u8>, Vec<u8>)>> = Arc::new(
        idle[..n]
            .iter()
            .zip(&acks)
            .map(|(i, a)| (i.request(&host, path), a.request(&host, path)))
            .collect(),
    );
    let result = round(addr, pairs, opts.connections, uuid.clone()).await?;
    println!(
        "command round: {} iPads received and answered one command in {:.2} s, {:.0} iPads/s ({} failed), {}",
        result.requests,
        result.elapsed.as_secs_f64(),
        result.per_second(),
        result.failures,
        result.describe(),
    );
    let done: i64 = state
        .db
        .run(move |conn| {
            use tafel::db::schema::command_queue;
            let q = command_queue::table
                .filter(command_queue::command_uuid.eq(&uuid))
                .filter(command_queue::status.eq(queue::QueueState::Acknowledged))
                .count();
            anyhow::Ok(tafel::with_backend!(conn, |c| q.get_result(c))?)
        })
        .await?;
    anyhow::ensure!(
        done as usize == n,
        "only {done} of {n} answers are recorded as acknowledged"
    );
    Ok(())
}

fn write_bodies(path: &Path, signed: &[Signed]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
    );
    for s in signed {
        writeln!(f, "{}\t{}", s.signature, s.body)?;
    }
    f.flush()?;
    println!(
        "  wrote {} signed Idle bodies to {}",
        signed.len(),
        path.display()
    );
    Ok(())
}

/// Reads a file written by `--write-bodies`.
pub fn read_bodies(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, line)| {
            line.split_once('\t')
                .map(|(s, b)| (s.to_owned(), b.to_owned()))
                .with_context(|| format!("{}: line {} has no tab", path.display(), n + 1))
        })
        .collect()
}

/// `tafel-sim replay`: the bodies of `file` against `url` (http only).
pub async fn replay_file(
    url: &str,
    file: &Path,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("--url: http://host:port/path (the client speaks plain HTTP/1.1)")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = tokio::net::lookup_host(host)
        .await?
        .next()
        .with_context(|| format!("{host}: no address"))?;
    let path = format!("/{path}");
    let requests: Vec<Vec<u8>> = read_bodies(file)?
        .into_iter()
        .map(|(signature, body)| Signed { signature, body }.request(host, &path))
        .collect();
    anyhow::ensure!(!requests.is_empty(), "{}: no bodies", file.display());
    let load = replay(
        addr,
        Arc::new(requests),
        connections.max(1),
        Until::Elapsed(Duration::from_secs(seconds)),
    )
    .await?;
    println!(
        "{:.0} requests/s over {:.1} s ({} requests, {} not 200), {}",
        load.per_second(),
        load.elapsed.as_secs_f64(),
        load.requests,
        load.failures,
        load.describe()
    );
    Ok(())
}

/// When a replay ends.
#[derive(Clone, Copy)]
enum Until {
    /// After this many requests in all.
    Count(usize),
    /// After this long.
    Elapsed(Duration),
}

/// What a run measured.
struct Measured {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    /// Latencies in microseconds, sorted.
    latencies: Vec<u32>,
    /// CPU time of the client's thread.
    client_cpu: Duration,
    /// CPU time of the whole process (server and client) over the run.
    process_cpu: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> f64 {
        match self.latencies.len() {
            0 => 0.0,
            n => f64::from(self.latencies[((n - 1) as f64 * p).round() as usize]) / 1000.0,
        }
    }

    fn describe(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.requests.max(1) as f64;
        format!(
            "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; CPU per request: server {:.0} µs, client {:.1} µs",
            self.percentile(0.50),
            self.percentile(0.99),
            self.percentile(1.0),
            per(self.process_cpu.saturating_sub(self.client_cpu)),
            per(self.client_cpu),
        )
    }
}

fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are the constants above.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `work` on a thread of its own with a single-threaded runtime; returns its
/// result and the thread's CPU time.
async fn on_client_thread<T: Send + 'static>(
    work: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>>>>
        + Send
        + 'static,
) -> anyhow::Result<(T, Duration)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    let cpu = thread_cpu();
                    let out = rt.block_on(work())?;
                    Ok((out, thread_cpu().saturating_sub(cpu)))
                });
            let _ = tx.send(result);
        })?;
    rx.await.context("the client thread ended early")?
}

/// Opens `connections` keep-alive connections on the client thread and runs `work` on
/// each (it returns its latencies and failures); measures the whole.
async fn drive<W, F>(addr: SocketAddr, connections: usize, work: W) -> anyhow::Result<Measured>
where
    W: Fn(Connection) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = anyhow::Result<(Vec<u32>, usize)>> + Send + 'static,
{
    let process_before = process_cpu();
    let started = Instant::now();
    let (parts, client_cpu) = on_client_thread(move || {
        Box::pin(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..connections {
                let work = work.clone();
                tasks.spawn(async move {
                    let conn = Connection::open(addr).await?;
                    work(conn).await
                });
            }
            let mut parts = Vec::new();
            while let Some(r) = tasks.join_next().await {
                parts.push(r??);
            }
            Ok(parts)
        })
    })
    .await?;
    let elapsed = started.elapsed();
    let mut latencies: Vec<u32> = Vec::new();
    let mut failures = 0;
    for (l, f) in parts {
        latencies.extend(l);
        failures += f;
    }
    latencies.sort_unstable();
    Ok(Measured {
        requests: latencies.len(),
        failures,
        elapsed,
        latencies,
        client_cpu,
        process_cpu: process_cpu().saturating_sub(process_before),
    })
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// Sends `requests` round-robin over `connections` keep-alive connections.
async fn replay(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    until: Until,
) -> anyhow::Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let (deadline, limit) = match until {
        Until::Elapsed(d) => (Some(Instant::now() + d), usize::MAX),
        Until::Count(n) => (None, n),
    };
    drive(addr, connections, move |mut conn| {
        let (requests, next) = (requests.clone(), next.clone());
        async move {
            let (mut latencies, mut failures) = (Vec::new(), 0usize);
            while deadline.is_none_or(|d| Instant::now() < d) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let t = Instant::now();
                let (status, _) = conn.exchange(&requests[i % requests.len()]).await?;
                latencies.push(micros(t));
                failures += usize::from(status != 200);
            }
            anyhow::Ok((latencies, failures))
        }
    })
    .await
}

/// Each iPad once: Idle (the reply must carry command `uuid`), then its answer (the
/// reply must be empty). Latency is per iPad, both exchanges.
async fn round(
    addr: SocketAddr,
    pairs: Arc<Vec<(Vec<u8>, Vec<u8>)>>,
    connections: usize,
    uuid: String,
) -> anyhow::Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let uuid = Arc::new(uuid);
    drive(addr, connections, move |mut conn| {
        let (pairs, next, uuid) = (pairs.clone(), next.clone(), uuid.clone());
        async move {
            let (mut latencies, mut failures) = (Vec::new(), 0usize);
            while let Some((idle, ack)) = pairs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t = Instant::now();
                let (status, body) = conn.exchange(idle).await?;
                let got = status == 200 && contains(&body, uuid.as_bytes());
                let (status, body) = if got {
                    conn.exchange(ack).await?
                } else {
                    (status, body)
                };
                latencies.push(micros(t));
                failures += usize::from(!got || status != 200 || !body.is_empty());
            }
            anyhow::Ok((latencies, failures))
        }
    })
    .await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A keep-alive HTTP/1.1 connection that sends prepared requests and reads
/// `Content-Length` responses.
struct Connection {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `request`; the status and body of the answer.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, head, len)) = parse_head(&self.buf)? {
                while self.buf.len() < head + len {
                    self.fill().await?;
                }
                let body = self.buf[head..head + len].to_vec();
                self.buf.drain(..head + len);
                return Ok((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The status, header length and `Content-Length` of a complete response head.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(u16, usize, usize)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let mut len = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().context("Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            anyhow::bail!("chunked responses are not read by this client");
        }
    }
    Ok(Some((status, end + 4, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_when_complete() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0").unwrap(),
            None
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n").unwrap(),
            Some((200, 39, 12))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 410 Gone\r\n\r\n").unwrap(),
            Some((410, 21, 0))
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }
}
