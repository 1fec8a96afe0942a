//! `/metrics` in Prometheus's text format: what an operator watches without reading
//! logs — requests by kind and status, device messages by type and outcome, push
//! results, reconcile passes, the database pool's waits, and, read from the database at
//! scrape time, the command queue by state, answer latency and enrollments.
//!
//! Counting costs one atomic add on the request path: counters are fixed arrays indexed
//! by small label tables, not maps. Figures are per node (a scrape sees the node it
//! reaches); the database figures are the district's.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::prelude::*;

use crate::db::schema::{command_queue, devices};
use crate::db::{now, DbConn};

/// Request groups, by path.
const GROUPS: [&str; 7] = [
    "device", "scep", "enroll", "api", "console", "probe", "other",
];
/// Status classes.
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];
/// Device messages: check-in message types, then connect statuses.
const MESSAGES: [&str; 13] = [
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "DeclarativeManagement",
    "GetBootstrapToken",
    "SetBootstrapToken",
    "GetToken",
    "Idle",
    "Acknowledged",
    "Error",
    "CommandFormatError",
    "NotNow",
];
/// What became of a device message.
const OUTCOMES: [&str; 3] = ["ok", "refused", "failed"];
/// Push results (as [`crate::push::service::PushState::as_str`]).
const PUSH: [&str; 8] = [
    "delivered",
    "invalid_token",
    "retry",
    "failed",
    "no_push_certificate",
    "no_token",
    "not_enrolled",
    "in_flight",
];

/// A histogram with fixed buckets (seconds).
struct Histogram<const N: usize> {
    bounds: [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    const fn new(bounds: [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` without braces.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

const REQUEST_BOUNDS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

struct Registry {
    requests: [[AtomicU64; CLASSES.len()]; GROUPS.len()],
    durations: [Histogram<10>; GROUPS.len()],
    messages: [[AtomicU64; OUTCOMES.len()]; MESSAGES.len()],
    push: [AtomicU64; PUSH.len()],
    reconcile: Histogram<9>,
    pool_wait: Histogram<8>,
}

static REGISTRY: Registry = Registry {
    requests: [const { [const { AtomicU64::new(0) }; CLASSES.len()] }; GROUPS.len()],
    durations: [const { Histogram::new(REQUEST_BOUNDS) }; GROUPS.len()],
    messages: [const { [const { AtomicU64::new(0) }; OUTCOMES.len()] }; MESSAGES.len()],
    push: [const { AtomicU64::new(0) }; PUSH.len()],
    reconcile: Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0]),
    pool_wait: Histogram::new([0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
};

/// The group of a request path (device paths: the configured check-in/connect paths).
pub fn group(path: &str, device_paths: (&str, &str)) -> usize {
    let g = if path == device_paths.0 || path == device_paths.1 || path.starts_with("/mdm/") {
        "device"
    } else if path.starts_with("/scep") {
        "scep"
    } else if path.starts_with("/enroll") || path.starts_with("/ade/") {
        "enroll"
    } else if path.starts_with("/api/") {
        "api"
    } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        "probe"
    } else if crate::web::is_console_path(path) || path.starts_with("/static/") {
        "console"
    } else {
        "other"
    };
    GROUPS
        .iter()
        .position(|x| *x == g)
        .unwrap_or(GROUPS.len() - 1)
}

/// Counts a finished request of group `g` (see [`group`]).
pub fn request(g: usize, status: u16, took: Duration) {
    let g = g.min(GROUPS.len() - 1);
    let class = match status {
        200..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        _ => 3,
    };
    REGISTRY.requests[g][class].fetch_add(1, Ordering::Relaxed);
    REGISTRY.durations[g].observe(took);
}

/// Counts a device message (`kind`: a check-in MessageType or a connect Status) and
/// what became of it (`status`: the HTTP status answered).
pub fn device_message(kind: &str, status: u16) {
    if let Some(i) = MESSAGES.iter().position(|m| *m == kind) {
        let outcome = match status {
            0..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        REGISTRY.messages[i][outcome].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a push result.
pub fn push(result: &str) {
    if let Some(i) = PUSH.iter().position(|p| *p == result) {
        REGISTRY.push[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Times a reconcile pass.
pub fn reconcile(took: Duration) {
    REGISTRY.reconcile.observe(took);
}

/// Times a wait for a pooled database connection.
pub fn pool_wait(took: Duration) {
    REGISTRY.pool_wait.observe(took);
}

/// What the database says at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Queue rows by state.
    pub queue: Vec<(String, i64)>,
    /// Devices by enrollment state.
    pub devices: Vec<(String, i64)>,
    /// Seconds from queueing to answer of commands answered in the last 15 minutes.
    pub latencies: Vec<f64>,
}

/// Reads the database's figures.
pub fn snapshot(conn: &mut DbConn) -> QueryResult<Snapshot> {
    let queue: Vec<(String, i64)> = command_queue::table
        .group_by(command_queue::status)
        .select((command_queue::status, diesel::dsl::count_star()))
        .load(conn)?;
    let devices: Vec<(String, i64)> = devices::table
        .group_by(devices::enrollment_status)
        .select((devices::enrollment_status, diesel::dsl::count_star()))
        .load(conn)?;
    let since = now() - chrono::Duration::minutes(15);
    let answered: Vec<(chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)> =
        command_queue::table
            .filter(command_queue::answered_at.ge(since))
            .select((command_queue::created_at, command_queue::answered_at))
            .limit(20_000)
            .load(conn)?;
    let mut latencies: Vec<f64> = answered
        .into_iter()
        .filter_map(|(queued, answered)| {
            Some((answered? - queued).num_milliseconds().max(0) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Snapshot {
        queue,
        devices,
        latencies,
    })
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The page: this node's counters, the database's figures, the pool's state.
pub fn render(db: &Snapshot, pool: (u32, u32)) -> String {
    let mut out = String::with_capacity(16 * 1024);
    header(
        &mut out,
        "tafel_http_requests_total",
        "counter",
        "Requests answered, by kind of endpoint and status class.",
    );
    for (g, name) in GROUPS.iter().enumerate() {
        for (c, class) in CLASSES.iter().enumerate() {
            let n = REGISTRY.requests[g][c].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tafel_http_requests_total{{group=\"{name}\",status=\"{class}\"}} {n}"
            );
        }
    }
    header(
        &mut out,
        "tafel_http_request_duration_seconds",
        "histogram",
        "Time to answer a request, by kind of endpoint.",
    );
    for (g, name) in GROUPS.iter().enumerate() {
        REGISTRY.durations[g].write(
            &mut out,
            "tafel_http_request_duration_seconds",
            &format!("group=\"{name}\""),
        );
    }
    header(&mut out, "tafel_device_messages_total", "counter", "Device check-ins (by MessageType) and connects (by Status), by outcome: ok, refused (4xx), failed (5xx).");
    for (m, name) in MESSAGES.iter().enumerate() {
        let endpoint = if m < 8 { "checkin" } else { "connect" };
        for (o, outcome) in OUTCOMES.iter().enumerate() {
            let n = REGISTRY.messages[m][o].load(Ordering::Relaxed);
            let _ = writeln!(out, "tafel_device_messages_total{{endpoint=\"{endpoint}\",type=\"{name}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    header(
        &mut out,
        "tafel_push_results_total",
        "counter",
        "APNs pushes by result (and devices not pushed, by why).",
    );
    for (i, name) in PUSH.iter().enumerate() {
        let n = REGISTRY.push[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "tafel_push_results_total{{result=\"{name}\"}} {n}");
    }
    header(
        &mut out,
        "tafel_reconcile_duration_seconds",
        "histogram",
        "Duration of reconcile passes.",
    );
    REGISTRY
        .reconcile
        .write(&mut out, "tafel_reconcile_duration_seconds", "");
    header(
        &mut out,
        "tafel_db_pool_wait_seconds",
        "histogram",
        "Time spent waiting for a database connection from the pool.",
    );
    REGISTRY
        .pool_wait
        .write(&mut out, "tafel_db_pool_wait_seconds", "");
    header(
        &mut out,
        "tafel_db_pool_connections",
        "gauge",
        "Database connections open in this node's pool, by state.",
    );
    let _ = writeln!(
        out,
        "tafel_db_pool_connections{{state=\"open\"}} {}",
        pool.0
    );
    let _ = writeln!(
        out,
        "tafel_db_pool_connections{{state=\"idle\"}} {}",
        pool.1
    );
    header(
        &mut out,
        "tafel_command_queue",
        "gauge",
        "Command queue rows by state (all nodes).",
    );
    for (state, n) in &db.queue {
        let _ = writeln!(out, "tafel_command_queue{{state=\"{state}\"}} {n}");
    }
    header(
        &mut out,
        "tafel_devices",
        "gauge",
        "Devices by enrollment state (all nodes).",
    );
    for (state, n) in &db.devices {
        let _ = writeln!(out, "tafel_devices{{enrollment=\"{state}\"}} {n}");
    }
    header(&mut out, "tafel_command_latency_seconds", "summary", "Seconds from queueing a command to the device's answer, for commands answered in the last 15 minutes.");
    for q in [0.5, 0.9, 0.99] {
        let v = quantile(&db.latencies, q);
        let _ = writeln!(out, "tafel_command_latency_seconds{{quantile=\"{q}\"}} {v}");
    }
    let sum: f64 = db.latencies.iter().sum();
    let _ = writeln!(out, "tafel_command_latency_seconds_sum {sum}");
    let _ = writeln!(
        out,
        "tafel_command_latency_seconds_count {}",
        db.latencies.len()
    );
    out
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_ends_in_inf() {
        let h = Histogram::new([0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.write(&mut out, "x", "g=\"a\"");
        assert!(out.contains("x_bucket{g=\"a\",le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{g=\"a\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{g=\"a\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{g=\"a\"} 3\n"), "{out}");
    }

    #[test]
    fn paths_fall_into_their_groups() {
        let d = ("/mdm/checkin", "/mdm/connect");
        assert_eq!(GROUPS[group("/mdm/connect", d)], "device");
        assert_eq!(GROUPS[group("/scep", d)], "scep");
        assert_eq!(GROUPS[group("/api/v1/devices", d)], "api");
        assert_eq!(GROUPS[group("/readyz", d)], "probe");
        assert_eq!(GROUPS[group("/nothing-here", d)], "other");
    }
}
