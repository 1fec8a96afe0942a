//! The `tafel-sim` command: simulated iPads against a running tafel, and the project's
//! benchmark. Not part of the product: the `tafel` binary contains neither.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// tafel-sim — simulated iPads and Apple services, and the benchmark that drives them.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play many iPads against a running tafel: each enrolls (profile, SCEP,
    /// Authenticate, TokenUpdate), then keeps connecting and answering commands.
    /// Prints progress every second and a summary (enrollments/s, connects/s, latency).
    Simulate(SimulateArgs),
    /// The project's benchmark: a full reconcile pass and device-list latency at
    /// --reconcile-devices, fan-out of one assignment (queued and pushed to a local
    /// APNs server) at --fanout-devices, and a 30-device class rollout. Uses a fresh
    /// temporary database unless --database-url names an empty one.
    Bench(BenchArgs),
    /// Push under pressure: one command to five iPads whose pushes APNs leaves hanging,
    /// answers 503, answers 429 with Retry-After 5, and answers 200 (two). Prints the
    /// pushes each received over --seconds with the server's default push settings.
    PushPressure(PushPressureArgs),
    /// Signed device connects per second, with a client that costs next to nothing per
    /// request: tafel on a fresh database with --devices enrolled iPads; the Idle
    /// bodies of --active of them signed once in advance and replayed for --seconds;
    /// then one command to --round iPads, each receiving and answering it. Prints
    /// connects/s, iPads/s, latency percentiles and CPU per request (server, client).
    ConnectBench(ConnectBenchArgs),
    /// Replays a file of signed bodies (from connect-bench --write-bodies) against any
    /// MDM server's connect URL over plain HTTP/1.1 and prints requests/s and latency.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct ConnectBenchArgs {
    /// Enrolled iPads in the database.
    #[arg(long, default_value_t = 100_000)]
    devices: usize,
    /// Of them, iPads with identity certificates whose signed Idle bodies are replayed.
    #[arg(long, default_value_t = 10_000)]
    active: usize,
    /// Seconds of Idle connects.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive connections the client keeps open.
    #[arg(long, short = 'c', default_value_t = 32)]
    connections: usize,
    /// iPads in the command round (at most --active; 0: skip it).
    #[arg(long, default_value_t = 10_000)]
    round: usize,
    /// An empty database to use instead of a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Write the signed Idle bodies here (one `signature<TAB>body` line each), for
    /// `tafel-sim replay` or wrk with docs/bench/replay.lua.
    #[arg(long)]
    write_bodies: Option<std::path::PathBuf>,
    /// Keep the server up this many seconds after the figures (for another client).
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// The server's log filter; its log goes to stderr as `tafel serve`'s does (the
    /// figures go to stdout).
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The server's connect URL, e.g. http://127.0.0.1:9000/mdm/connect.
    #[arg(long)]
    url: String,
    /// The file of signed bodies.
    #[arg(long)]
    bodies: std::path::PathBuf,
    /// Keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 32)]
    connections: usize,
    /// Seconds to send for.
    #[arg(long, short = 'd', default_value_t = 10)]
    seconds: u64,
}

#[derive(clap::Args)]
struct PushPressureArgs {
    /// How long to watch.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// An empty database to use instead of a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Devices for the reconcile pass and the device list.
    #[arg(long, default_value_t = 100_000)]
    reconcile_devices: usize,
    /// Devices for the fan-out of one assignment.
    #[arg(long, default_value_t = 10_000)]
    fanout_devices: usize,
    /// Device-list requests to time.
    #[arg(long, default_value_t = 200)]
    list_requests: usize,
    /// An empty database to use instead of a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Devices for the licence reconcile against a local Apps and Books server (0: skip).
    #[arg(long, default_value_t = 10_000)]
    licence_devices: usize,
    /// Licensed apps for the licence reconcile.
    #[arg(long, default_value_t = 5)]
    licence_apps: usize,
    /// Devices for the ADE sync from a local device enrollment API (0: skip).
    #[arg(long, default_value_t = 10_000)]
    ade_devices: usize,
    /// Requests per web-console page (overview, device list, device page) at
    /// --reconcile-devices, logged in through the console's form (0: skip).
    #[arg(long, default_value_t = 200)]
    page_requests: usize,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Enrollment token to enroll with. Without it, --admin-token creates a
    /// simulation authority, school and token.
    #[arg(long)]
    enroll_token: Option<String>,
    /// District-admin API token (the one the first start printed).
    #[arg(long, env = "TAFEL_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Number of simulated devices.
    #[arg(long, short = 'n', default_value_t = 100)]
    devices: usize,
    /// Requests in flight at once.
    #[arg(long, short = 'c', default_value_t = 32)]
    concurrency: usize,
    /// Seconds the devices keep connecting after enrollment.
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Share of commands answered NotNow (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    not_now: f64,
    /// Share of commands answered Error (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    error: f64,
    /// Use one RSA key for all devices (certificates stay per device): measures the
    /// server, not key generation.
    #[arg(long)]
    shared_key: bool,
    /// RequestType queued for every device after enrollment, e.g. DeviceInformation.
    #[arg(long)]
    enqueue: Option<String>,
    /// Accept a self-signed server certificate.
    #[arg(long)]
    insecure: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Automated Device Enrollment: reset iPads go from Setup Assistant to
    /// DeviceConfigured (machine info, profile, SCEP, awaiting configuration, the
    /// school's Wi-Fi and an app). Runs its own tafel on a temporary database with a
    /// local Apple School Manager and a simulated Apple device CA; --server is not used.
    #[arg(long)]
    ade: bool,
    /// With --ade: milliseconds between a waiting iPad's connects (stands in for pushes).
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// With --ade: database URL for the server (default: a temporary SQLite file).
    #[arg(long)]
    database_url: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate(args),
        Command::Bench(a) => bench(a),
        Command::PushPressure(a) => push_pressure(a),
        Command::ConnectBench(a) => connect_bench(a),
        Command::Replay(a) => replay(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tafel-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn connect_bench(a: ConnectBenchArgs) -> anyhow::Result<()> {
    runtime()?.block_on(tafel_sim::connect::run(
        tafel_sim::connect::ConnectOptions {
            devices: a.devices,
            active: a.active,
            seconds: a.seconds,
            connections: a.connections,
            round: a.round,
            database_url: a.database_url,
            write_bodies: a.write_bodies,
            hold: a.hold,
            log_level: a.log_level,
        },
    ))
}

fn replay(a: ReplayArgs) -> anyhow::Result<()> {
    runtime()?.block_on(tafel_sim::connect::replay_file(
        &a.url,
        &a.bodies,
        a.connections,
        a.seconds,
    ))
}

fn push_pressure(a: PushPressureArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(tafel_sim::bench::push_pressure(
        a.database_url.as_deref(),
        a.seconds,
    ))
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(tafel_sim::bench::run(tafel_sim::bench::BenchOptions {
        reconcile_devices: a.reconcile_devices,
        fanout_devices: a.fanout_devices,
        list_requests: a.list_requests,
        database_url: a.database_url,
        licence_devices: a.licence_devices,
        licence_apps: a.licence_apps,
        ade_devices: a.ade_devices,
        page_requests: a.page_requests,
    }))
}

fn simulate_ade(a: &SimulateArgs) -> anyhow::Result<()> {
    let opts = tafel_sim::bench::AdeSetupOptions {
        devices: a.devices,
        concurrency: a.concurrency.max(1),
        shared_key: a.shared_key,
        poll: std::time::Duration::from_millis(a.poll_ms.max(1)),
        database_url: a.database_url.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let step = (a.devices / 10).max(1);
    let s = rt.block_on(tafel_sim::bench::ade_setup(opts, move |done, total| {
        if done % step == 0 || done == total {
            eprintln!("[ade] {done}/{total} iPads through Setup Assistant");
        }
    }))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "ADE sync           {} devices, profiles assigned, in {:.2} s ({} API calls)",
            s.sync_devices, s.sync_seconds, s.sync_api_calls
        );
        println!(
            "first contact → DeviceConfigured: {} iPads, p50 {:.2} s, p99 {:.2} s, max {:.2} s; all in {:.1} s ({} at once, {:.1} commands each, {})",
            s.configured,
            s.p50_seconds,
            s.p99_seconds,
            s.max_seconds,
            s.seconds,
            a.concurrency.max(1),
            s.commands_per_device,
            if a.shared_key { "one shared RSA key" } else { "own RSA key per iPad, made before the clock starts" }
        );
        println!("errors             {}", s.errors);
        for e in &s.error_samples {
            println!("  {e}");
        }
    }
    anyhow::ensure!(
        s.errors == 0,
        "{} iPads did not reach DeviceConfigured",
        s.errors
    );
    Ok(())
}

fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    if !(0.0..=1.0).contains(&a.not_now)
        || !(0.0..=1.0).contains(&a.error)
        || a.not_now + a.error > 1.0
    {
        anyhow::bail!(
            "--not-now and --error are shares between 0.0 and 1.0 that add up to at most 1.0"
        );
    }
    if a.devices == 0 {
        anyhow::bail!("--devices must be at least 1");
    }
    if a.ade {
        return simulate_ade(&a);
    }
    let opts = tafel_sim::runner::SimOptions {
        server: a.server.trim_end_matches('/').to_owned(),
        enroll_token: a.enroll_token,
        admin_token: a.admin_token,
        devices: a.devices,
        concurrency: a.concurrency.max(1),
        duration: std::time::Duration::from_secs(a.duration),
        not_now: a.not_now,
        error: a.error,
        shared_key: a.shared_key,
        enqueue: a.enqueue,
        insecure: a.insecure,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let total = opts.devices;
    let summary = rt.block_on(tafel_sim::runner::run(opts, move |phase, p| {
        eprintln!(
            "[{phase}] enrolled {}/{total}  connects {}  commands {}  errors {}",
            p.enrolled.load(Ordering::Relaxed),
            p.connects.load(Ordering::Relaxed),
            p.commands.load(Ordering::Relaxed),
            p.errors.load(Ordering::Relaxed),
        );
    }))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "devices enrolled   {} in {:.1} s = {:.1}/s (p50 {:.1} ms, p99 {:.1} ms)",
            summary.enrolled,
            summary.enroll_seconds,
            summary.enrolled_per_second,
            summary.enroll_p50_ms,
            summary.enroll_p99_ms
        );
        println!(
            "connects           {} in {:.1} s = {:.0}/s",
            summary.connects, summary.connect_seconds, summary.connects_per_second
        );
        println!(
            "connect latency    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            summary.connect_p50_ms, summary.connect_p99_ms, summary.connect_max_ms
        );
        println!("commands answered  {}", summary.commands);
        println!("errors             {}", summary.errors);
        for e in &summary.error_samples {
            println!("  e.g. {e}");
        }
    }
    if summary.enrolled == 0 {
        anyhow::bail!("no device enrolled");
    }
    Ok(())
}
