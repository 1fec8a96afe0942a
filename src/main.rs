//! The `tafel` command: serve, init, certs, migrate, config. The simulators and the
//! benchmark are the `tafel-sim` command (crates/sim).

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
    /// Back up the database and certs/ into a new directory (while tafel serves).
    ///
    /// DIR gets everything a restore needs: the database (SQLite: a consistent copy taken while the server keeps serving; PostgreSQL:
    /// pg_dump --format=custom, which must be installed) and every file of the
    /// certificate directory. certs/ is not in the database but is needed: secrets.key
    /// opens the secrets sealed in it, the CA is what enrolled iPads trust. DIR holds
    /// private keys (mode 0700, files 0600): keep it as safe as the server. Back up
    /// daily and before every upgrade (README: backup and restore).
    Backup {
        /// The backup directory to create.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Replace DIR when it exists (only a backup is replaced).
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup made by `tafel backup` into an empty database and certs/.
    ///
    /// The configured database and certificate directory must be empty (a fresh directory; PostgreSQL: an
    /// empty database). Checks that the backup is a tafel database and that its
    /// secrets.key opens the secrets stored in it. Stop tafel before restoring; start
    /// it afterwards with `tafel serve` (pending migrations run then).
    Restore {
        /// The backup directory `tafel backup` wrote.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Overwrite an existing database and certificate directory.
        #[arg(long)]
        force: bool,
    },
    /// Give the user with this e-mail a one-time password (printed once, valid 72
    /// hours; it logs in only to choose a new password) and end their sessions and API
    /// tokens: the way back in for the last district admin who forgot theirs.
    ResetPassword {
        /// The user's e-mail (their login).
        email: String,
    },
    /// For an MDM vendor: sign a school authority's push certificate request (the .csr
    /// tafel made) with the vendor's "MDM CSR" certificate and key, writing the
    /// base64 PushCertRequest that Apple's Push Certificates Portal
    /// (identity.apple.com/pushcert) accepts. Runs offline; nothing is stored.
    PushVendorSign {
        /// The authority's certificate request (PEM).
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// The vendor's "MDM CSR" certificate from Apple (`mdm.cer`, DER or PEM).
        #[arg(long, value_name = "FILE")]
        vendor_cert: PathBuf,
        /// The vendor certificate's private key (PEM, unencrypted).
        #[arg(long, value_name = "FILE")]
        vendor_key: PathBuf,
        /// The vendor certificate's issuers, in order (DER or PEM). Default: Apple's
        /// WWDR G3 intermediate and Apple Root CA, built in.
        #[arg(long, value_name = "FILE")]
        chain: Vec<PathBuf>,
        /// Where to write the request (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
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
            if report.migrated {
                println!("migrated: the single root became the root of a hierarchy (its key is now encrypted in root.key); move root.key and root.passphrase off this server");
            }
            if force {
                // A new root on purpose: the database stops insisting on the old one.
                // No database yet (or none reachable): nothing was recorded.
                let forgot = settings
                    .database()
                    .ok()
                    .and_then(|url| tafel::db::Db::connect(&url, 1).ok())
                    .and_then(|db| db.get().ok())
                    .and_then(|mut conn| tafel::cluster::forget_root_ca(&mut conn).ok());
                if forgot == Some(true) {
                    println!("the database's record of the root CA was reset: the next node to start records the new root; copy the new certs/ to every node, and enrolled iPads, which trust the old root, enroll again");
                }
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
        Command::Backup { dir, force } => {
            let report = tafel::backup::backup(&settings, &dir, force)?;
            println!(
                "wrote {} ({} bytes): {}",
                report.database.display(),
                report.bytes,
                report.counts
            );
            println!(
                "wrote {}: {}",
                dir.join(tafel::backup::CERTS_DIR).display(),
                report.cert_files.join(", ")
            );
            println!(
                "{} holds private keys and secrets.key, without which the database's secrets cannot be opened: store it as safely as the server, off this machine",
                dir.display()
            );
            Ok(())
        }
        Command::Restore { dir, force } => {
            let report = tafel::backup::restore(&settings, &dir, force)?;
            println!("restored {}: {}", report.database, report.counts);
            println!(
                "secrets.key opens the database's secrets ({} checked)",
                report.secrets_checked
            );
            println!(
                "restored {}: {}",
                settings.certs_dir.display(),
                report.cert_files.join(", ")
            );
            println!("start tafel with: tafel serve");
            Ok(())
        }
        Command::ResetPassword { email } => {
            let db = tafel::db::Db::connect(&settings.database()?, 1)?;
            let mut conn = db.get()?;
            let Some(issued) = tafel::accounts::password::reset_by_email(&mut conn, &email)? else {
                anyhow::bail!("no enabled user with the e-mail {email}");
            };
            println!(
                "one-time password for {}: {}",
                issued.email, issued.password
            );
            println!(
                "valid until {} UTC; it logs in once, to choose a new password. {} session(s) and token(s) ended.",
                issued.expires_at.format("%Y-%m-%d %H:%M"),
                issued.ended
            );
            Ok(())
        }
        Command::PushVendorSign {
            csr,
            vendor_cert,
            vendor_key,
            chain,
            out,
        } => push_vendor_sign(&csr, &vendor_cert, &vendor_key, &chain, out.as_deref()),
    }
}

/// Certificates from a PEM or DER file.
fn read_certificates(path: &std::path::Path) -> anyhow::Result<Vec<openssl::x509::X509>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = if bytes.windows(5).any(|w| w == b"-----") {
        openssl::x509::X509::stack_from_pem(&bytes)?
    } else {
        vec![openssl::x509::X509::from_der(&bytes)?]
    };
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn push_vendor_sign(
    csr: &std::path::Path,
    vendor_cert: &std::path::Path,
    vendor_key: &std::path::Path,
    chain: &[PathBuf],
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use tafel::push::request;
    let csr_pem = std::fs::read(csr).with_context(|| format!("cannot read {}", csr.display()))?;
    let csr = request::parse_csr(&csr_pem)?;
    let vendor = read_certificates(vendor_cert)?
        .into_iter()
        .next()
        .context("no vendor certificate")?;
    let key_pem = std::fs::read(vendor_key)
        .with_context(|| format!("cannot read {}", vendor_key.display()))?;
    // A callback that refuses keeps openssl from asking a terminal for a passphrase.
    let key = openssl::pkey::PKey::private_key_from_pem_callback(&key_pem, |_| {
        Err(openssl::error::ErrorStack::get())
    })
    .context("the vendor key must be an unencrypted PEM private key (openssl pkey -in key.pem -out plain.pem)")?;
    let mut issuers = Vec::new();
    for path in chain {
        issuers.extend(read_certificates(path)?);
    }
    let chain = request::vendor_chain(vendor, issuers)?;
    let encoded = request::vendor_sign(&csr, &chain, &key)?;
    match out {
        Some(path) => {
            std::fs::write(path, &encoded)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}: upload it at https://identity.apple.com/pushcert",
                path.display()
            );
        }
        None => println!("{encoded}"),
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
    // Every connection is an open file: the soft limit (often 1,024) goes up to the
    // hard one (systemd: LimitNOFILE in docs/tafel.service).
    match tafel::edge::raise_open_file_limit() {
        Ok(files) if files.now < 4096 => tracing::warn!(
            open_files = files.now,
            hard_limit = files.hard,
            "few open files allowed: each connection needs one; raise the hard limit (LimitNOFILE=65536, README: the HTTP edge)"
        ),
        Ok(files) => tracing::info!(
            open_files = files.now,
            was = files.before,
            "open-file limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
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
        Ok::<(), anyhow::Error>(())
    })?;
    // What still runs on the blocking pool (a transaction, a pass under its lock) gets
    // to finish and release what it holds; background tasks end at their next step.
    rt.shutdown_timeout(std::time::Duration::from_secs(
        tafel::startup::SHUTDOWN_SECS,
    ));
    Ok(())
}
