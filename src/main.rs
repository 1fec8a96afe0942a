//! The `tafel` command: serve, init, migrate, token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use tafel::config::Settings;

/// tafel — Apple MDM for school districts.
///
/// Settings come from tafel.toml (or --config) and TAFEL_* environment variables,
/// e.g. TAFEL_DATABASE_URL=postgres://tafel@db/tafel or TAFEL_TLS__ENABLED=true.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file. Without this flag, ./tafel.toml is read when it exists.
    #[arg(long, global = true, env = "TAFEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. On first start it creates the CA and server certificate,
    /// migrates the database and prints a district-admin API token (once).
    Serve,
    /// Create the certificate hierarchy under the certificate directory (default
    /// certs/): the root (key encrypted), the issuing CA, the SCEP RA, the server and
    /// profile-signing certificates. Existing files are kept; a single-root directory
    /// from an older tafel is migrated (its root stays what enrolled iPads trust).
    Init {
        /// Replace existing keys and certificates. Enrolled devices must enroll again.
        #[arg(long)]
        force: bool,
    },
    /// tafel's own certificates: how long each has left, and renewing them.
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Apply pending database migrations and exit (for operators who migrate
    /// separately from starting the server).
    Migrate,
    /// Print the effective configuration (secrets are never part of it).
    Config,
    /// Play many iPads against a running tafel: each enrolls (profile, SCEP,
    /// Authenticate, TokenUpdate), then keeps connecting and answering commands.
    /// Prints progress every second and a summary (enrollments/s, connects/s, latency).
    Simulate(SimulateArgs),
    /// The project's benchmark: a full reconcile pass and device-list latency at
    /// --reconcile-devices, fan-out of one assignment (queued and pushed to a local
    /// APNs server) at --fanout-devices, and a 30-device class rollout. Uses a fresh
    /// temporary database unless --database-url names an empty one.
    Bench(BenchArgs),
}

#[derive(Subcommand)]
enum CertsAction {
    /// Each certificate, its end of validity and what to do (60/30/7-day warnings).
    Status,
    /// Issue one certificate anew. Restart tafel afterwards to use it. Devices need
    /// nothing: they trust the root, which stays.
    Renew {
        /// `server`, `signing` and `ra` use the issuing CA's key (online); `issuing`
        /// certifies the issuing CA again with its key and needs the root key
        /// (TAFEL_ROOT_PASSPHRASE or certs/root.passphrase).
        #[arg(value_enum)]
        what: RenewWhat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RenewWhat {
    Server,
    Signing,
    Ra,
    Issuing,
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
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tafel: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let (file, explicit) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("tafel.toml"), false),
    };
    Ok(Settings::load(Some(&file), explicit, std::env::vars())?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Simulate(args) = cli.command {
        return simulate(args);
    }
    if let Command::Bench(a) = cli.command {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        return rt.block_on(tafel::bench::run(tafel::bench::BenchOptions {
            reconcile_devices: a.reconcile_devices,
            fanout_devices: a.fanout_devices,
            list_requests: a.list_requests,
            database_url: a.database_url,
            licence_devices: a.licence_devices,
            licence_apps: a.licence_apps,
            ade_devices: a.ade_devices,
        }));
    }
    let settings = load_settings(&cli)?;
    tafel::telemetry::init(settings.log_format, &settings.log_level);
    match cli.command {
        Command::Serve => serve(settings),
        Command::Init { force } => {
            let report = tafel::pki::store::init(&settings.certs_dir, &settings.hosts, force)?;
            for p in &report.created {
                println!("created {}", p.display());
            }
            for p in &report.kept {
                println!("kept    {}", p.display());
            }
            if report.migrated {
                println!("migrated: the single root became the root of a hierarchy (its key is now encrypted in root.key); move root.key and root.passphrase off this server");
            }
            Ok(())
        }
        Command::Certs { action } => certs(&settings, action),
        Command::Migrate => {
            let db = tafel::db::Db::connect(&settings.database()?, 1)?;
            let applied = db.migrate()?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Simulate(_) | Command::Bench(_) => Ok(()),
    }
}

fn simulate_ade(a: &SimulateArgs) -> anyhow::Result<()> {
    let opts = tafel::bench::AdeSetupOptions {
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
    let s = rt.block_on(tafel::bench::ade_setup(opts, move |done, total| {
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
    let opts = tafel::sim::runner::SimOptions {
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
    let summary = rt.block_on(tafel::sim::runner::run(opts, move |phase, p| {
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

fn certs(settings: &Settings, action: CertsAction) -> anyhow::Result<()> {
    use tafel::pki::{lifecycle, store};
    match action {
        CertsAction::Status => {
            let certs = store::certificates(&settings.certs_dir)
                .context("cannot read the certificates (tafel init creates them)")?;
            for s in lifecycle::status(&certs, chrono::Utc::now()) {
                println!(
                    "{:<8} {:<9} {:>6} days  until {}  {}",
                    s.name,
                    format!("{:?}", s.level).to_lowercase(),
                    s.days_left,
                    s.not_after.format("%Y-%m-%d"),
                    if s.level == lifecycle::Level::Ok {
                        ""
                    } else {
                        &s.action
                    }
                );
            }
            Ok(())
        }
        CertsAction::Renew { what } => {
            let what = match what {
                RenewWhat::Server => store::Renewable::Server,
                RenewWhat::Signing => store::Renewable::Signing,
                RenewWhat::Ra => store::Renewable::Ra,
                RenewWhat::Issuing => store::Renewable::Issuing,
            };
            for p in store::renew(&settings.certs_dir, &settings.hosts, what)? {
                println!("renewed {}", p.display());
            }
            println!("restart tafel to use it");
            Ok(())
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let workers = settings.workers;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        rt.worker_threads(workers);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let app = tafel::startup::Application::build(settings).await?;
        if let Some(token) = &app.first_admin_token {
            // Written in one piece, and a closed stdout (a supervisor that stopped reading)
            // must not stop the server: the token is then lost, not the district.
            use std::io::Write;
            let notice = format!(
                "First start: district-admin API token (shown only this once, store it now):\n  {token}\nUse it as: Authorization: Bearer {token}\n"
            );
            let mut out = std::io::stdout().lock();
            if out.write_all(notice.as_bytes()).and_then(|()| out.flush()).is_err() {
                tracing::warn!("could not print the first district-admin token: stdout is closed");
            }
        }
        app.run_until_stopped().await?;
        Ok(())
    })
}
