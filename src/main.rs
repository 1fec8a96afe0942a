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
    #[arg(long, short, global = true, env = "TAFEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. On first start it creates the CA and server certificate,
    /// migrates the database and prints a district-admin API token (once).
    Serve,
    /// Create the CA and server certificate under the certificate directory
    /// (default certs/). Existing files are kept.
    Init {
        /// Replace existing keys and certificates. Enrolled devices must enroll again.
        #[arg(long)]
        force: bool,
    },
    /// Apply pending database migrations and exit (for operators who migrate
    /// separately from starting the server).
    Migrate,
    /// Print the effective configuration (secrets are never part of it).
    Config,
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
            Ok(())
        }
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
            println!("First start: district-admin API token (shown only this once, store it now):");
            println!("  {token}");
            println!("Use it as: Authorization: Bearer {token}");
        }
        app.run_until_stopped().await?;
        Ok(())
    })
}
