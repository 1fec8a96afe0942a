//! `tafel backup` and `tafel restore`.
//!
//! A backup is one directory (mode 0700) holding everything a restore needs:
//!
//! | entry | what |
//! |---|---|
//! | `tafel.db` | SQLite: a consistent copy of the database, taken while the server serves |
//! | `tafel.pgdump` | PostgreSQL: `pg_dump --format=custom` of the database |
//! | `certs/` | every file of the certificate directory: the CA, `secrets.key` (without it the database's sealed secrets are lost), `webhook.secret`, … (0600) |
//!
//! SQLite is copied with `VACUUM INTO`: it reads inside one read transaction, so the
//! copy is the database as of one moment while other connections keep writing (WAL
//! mode lets writers go on beside a reader), it needs no raw handle to the C library
//! (the online backup API would, through `unsafe`), and the copy is compacted and
//! complete in one file (no `-wal` beside it).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use diesel::prelude::*;

use crate::config::Settings;
use crate::db::{DatabaseUrl, DbConn};

/// The SQLite copy inside a backup.
pub const SQLITE_FILE: &str = "tafel.db";
/// The PostgreSQL dump inside a backup.
pub const PG_DUMP_FILE: &str = "tafel.pgdump";
/// The certificate directory's copy inside a backup.
pub const CERTS_DIR: &str = "certs";

/// Rows in the main tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Devices.
    pub devices: i64,
    /// Commands.
    pub commands: i64,
    /// Device identity certificates.
    pub certificates: i64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} devices, {} commands, {} device certificates",
            self.devices, self.commands, self.certificates
        )
    }
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    /// The database copy (or dump).
    pub database: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Rows in the copy (PostgreSQL: in the database, as the dump began).
    pub counts: Counts,
    /// The certificate files copied (names only).
    pub cert_files: Vec<String>,
}

/// What a restore wrote.
#[derive(Debug)]
pub struct RestoreReport {
    /// Where the database went.
    pub database: String,
    /// Rows restored.
    pub counts: Counts,
    /// Sealed secrets that opened with the restored `secrets.key`.
    pub secrets_checked: usize,
    /// The certificate files restored (names only).
    pub cert_files: Vec<String>,
}

/// Counts the main tables.
pub fn counts(conn: &mut DbConn) -> QueryResult<Counts> {
    use crate::db::schema::{commands, device_certificates, devices};
    Ok(Counts {
        devices: devices::table.count().get_result(conn)?,
        commands: commands::table.count().get_result(conn)?,
        certificates: device_certificates::table.count().get_result(conn)?,
    })
}

/// Backs up the database and the certificate directory into the new directory `out`.
/// An existing `out` is replaced only with `force`, and only when it is a backup.
pub fn backup(settings: &Settings, out: &Path, force: bool) -> anyhow::Result<BackupReport> {
    if out.exists() {
        if !force {
            bail!(
                "{} exists: choose a new name, or pass --force to replace it",
                out.display()
            );
        }
        if !is_backup(out) {
            bail!(
                "{} exists and is not a tafel backup: not replacing it",
                out.display()
            );
        }
    }
    let url = settings.database()?;
    let certs = &settings.certs_dir;
    if !certs.join("secrets.key").is_file() {
        bail!(
            "{} has no secrets.key: back up on the server whose certs/ belong to this database (certs_dir)",
            certs.display()
        );
    }
    // Written beside `out` first: a failed backup leaves no half backup under its name.
    let partial = sibling(out, ".partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    private_dir(&partial)?;
    let result = (|| {
        let (name, counts) = match &url {
            DatabaseUrl::Sqlite(path) => {
                (SQLITE_FILE, sqlite_copy(path, &partial.join(SQLITE_FILE))?)
            }
            DatabaseUrl::Postgres(pg) => (PG_DUMP_FILE, pg_dump(pg, &partial.join(PG_DUMP_FILE))?),
        };
        let cert_files = copy_files(certs, &partial.join(CERTS_DIR))?;
        Ok::<_, anyhow::Error>((name, counts, cert_files))
    })();
    let (name, counts, cert_files) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    let database = out.join(name);
    let bytes = fs::metadata(&database)?.len();
    Ok(BackupReport {
        database,
        bytes,
        counts,
        cert_files,
    })
}

/// Restores the backup directory `from` into the configured database and certificate
/// directory. Both must be empty unless `force`.
pub fn restore(settings: &Settings, from: &Path, force: bool) -> anyhow::Result<RestoreReport> {
    if !from.is_dir() {
        bail!(
            "{} is not a backup: tafel backup writes a directory with {SQLITE_FILE} (or {PG_DUMP_FILE}) and {CERTS_DIR}/",
            from.display()
        );
    }
    let backup_certs = from.join(CERTS_DIR);
    let key_file = backup_certs.join("secrets.key");
    if !key_file.is_file() {
        bail!(
            "{} has no {CERTS_DIR}/secrets.key: without it the secrets sealed in the database cannot be opened",
            from.display()
        );
    }
    let secrets = crate::secrets::SecretBox::load(&key_file)
        .with_context(|| format!("cannot load {}", key_file.display()))?;
    let certs = &settings.certs_dir;
    if has_files(certs) && !force {
        bail!(
            "{} is not empty: restore into a fresh directory, or pass --force to overwrite its certificates and keys",
            certs.display()
        );
    }
    let url = settings.database()?;
    let (database, counts, secrets_checked) = match &url {
        DatabaseUrl::Sqlite(target) => {
            let copy = from.join(SQLITE_FILE);
            if !copy.is_file() {
                bail!(
                    "{} holds no SQLite backup ({SQLITE_FILE}); a PostgreSQL backup ({PG_DUMP_FILE}) restores into a postgres:// database_url",
                    from.display()
                );
            }
            if fs::metadata(target).map(|m| m.len() > 0).unwrap_or(false) && !force {
                bail!(
                    "the database {} exists: restore into a fresh directory, or pass --force to replace it (stop tafel first)",
                    target.display()
                );
            }
            let mut conn = open_sqlite(&copy)?;
            let (counts, checked) = verify(&mut conn, &secrets, &copy.display().to_string())?;
            drop(conn);
            sqlite_install(&copy, target)?;
            (target.display().to_string(), counts, checked)
        }
        DatabaseUrl::Postgres(pg) => {
            let dump = from.join(PG_DUMP_FILE);
            if !dump.is_file() {
                bail!(
                    "{} holds no PostgreSQL dump ({PG_DUMP_FILE}); a SQLite backup ({SQLITE_FILE}) restores into a sqlite:// database_url",
                    from.display()
                );
            }
            let mut conn = diesel::PgConnection::establish(pg)
                .map(DbConn::Pg)
                .context("cannot connect to the database")?;
            if is_tafel(&mut conn)? && !force {
                bail!("the database already holds tafel's tables: restore into an empty database (createdb), or pass --force to replace them (stop tafel first)");
            }
            pg_restore(pg, &dump, force)?;
            let (counts, checked) = verify(&mut conn, &secrets, "the restored database")?;
            (String::from("the PostgreSQL database"), counts, checked)
        }
    };
    private_dir_all(certs)?;
    let cert_files = copy_files(&backup_certs, certs)?;
    Ok(RestoreReport {
        database,
        counts,
        secrets_checked,
        cert_files,
    })
}

/// The database is tafel's (diesel's migrations table), and `secrets` opens what it holds.
fn verify(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    what: &str,
) -> anyhow::Result<(Counts, usize)> {
    if !is_tafel(conn)? {
        bail!("{what} is not a tafel database (it has no migrations table)");
    }
    let counts = counts(conn).with_context(|| format!("cannot read {what}"))?;
    let checked = crate::secrets::check_key(conn, secrets)?;
    Ok((counts, checked))
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The migrations table exists.
fn is_tafel(conn: &mut DbConn) -> anyhow::Result<bool> {
    let sql = match conn {
        DbConn::Sqlite(_) => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '__diesel_schema_migrations'",
        DbConn::Pg(_) => "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '__diesel_schema_migrations'",
    };
    let n = diesel::sql_query(sql)
        .get_result::<N>(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(_, info) => {
                anyhow::anyhow!("not a tafel database: {}", info.message())
            }
            e => e.into(),
        })?
        .n;
    Ok(n > 0)
}

fn open_sqlite(path: &Path) -> anyhow::Result<DbConn> {
    let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
        .map(DbConn::Sqlite)
        .with_context(|| format!("cannot open {}", path.display()))?;
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 10000")
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(conn)
}

/// `VACUUM INTO` a new 0600 file; the copy's rows.
fn sqlite_copy(db: &Path, copy: &Path) -> anyhow::Result<Counts> {
    if !db.is_file() {
        bail!("there is no database at {}", db.display());
    }
    // VACUUM INTO writes into an empty file it finds: created here, private.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(copy)
        .with_context(|| format!("cannot create {}", copy.display()))?;
    let mut conn = open_sqlite(db)?;
    let target = copy.to_string_lossy().replace('\'', "''");
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        &format!("VACUUM INTO '{target}'"),
    )
    .with_context(|| format!("cannot copy {}", db.display()))?;
    drop(conn);
    let mut conn = open_sqlite(copy)?;
    if !is_tafel(&mut conn)? {
        bail!("{} is not a tafel database", db.display());
    }
    Ok(counts(&mut conn)?)
}

/// Puts the checked copy in place of `target` (and its `-wal`/`-shm`), 0600.
fn sqlite_install(copy: &Path, target: &Path) -> anyhow::Result<()> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temp = sibling(target, ".restoring");
    let _ = fs::remove_file(&temp);
    copy_private(copy, &temp)?;
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(sibling(target, suffix));
    }
    fs::rename(&temp, target).with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

fn pg_dump(url: &str, out: &Path) -> anyhow::Result<Counts> {
    let mut conn = diesel::PgConnection::establish(url)
        .map(DbConn::Pg)
        .context("cannot connect to the database")?;
    if !is_tafel(&mut conn)? {
        bail!("the database holds no tafel tables");
    }
    let counts = counts(&mut conn)?;
    let status = Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(out)
        .arg(url)
        .status()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run pg_dump ({e}): install the PostgreSQL client tools, or back up by hand: pg_dump --format=custom --file tafel.pgdump \"$TAFEL_DATABASE_URL\", and copy certs/ beside it (README: backup and restore)"
            )
        })?;
    if !status.success() {
        bail!("pg_dump failed ({status}); its message is above");
    }
    fs::set_permissions(out, fs::Permissions::from_mode(0o600))?;
    Ok(counts)
}

fn pg_restore(url: &str, dump: &Path, force: bool) -> anyhow::Result<()> {
    let mut cmd = Command::new("pg_restore");
    cmd.args(["--no-owner", "--exit-on-error", "--single-transaction"]);
    if force {
        cmd.args(["--clean", "--if-exists"]);
    }
    let status = cmd.arg("--dbname").arg(url).arg(dump).status().map_err(|e| {
        anyhow::anyhow!(
            "cannot run pg_restore ({e}): install the PostgreSQL client tools, or restore by hand: pg_restore --no-owner --dbname \"$TAFEL_DATABASE_URL\" tafel.pgdump (README: backup and restore)"
        )
    })?;
    if !status.success() {
        bail!("pg_restore failed ({status}); its message is above");
    }
    Ok(())
}

/// Copies every regular file of `from` into `to` (created 0700), each 0600; their names.
fn copy_files(from: &Path, to: &Path) -> anyhow::Result<Vec<String>> {
    private_dir_all(to)?;
    let mut names = Vec::new();
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let target = to.join(&name);
        let temp = sibling(&target, ".restoring");
        let _ = fs::remove_file(&temp);
        copy_private(&entry.path(), &temp)?;
        fs::rename(&temp, &target).with_context(|| format!("cannot write {}", target.display()))?;
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Copies `from` to the new file `to`, mode 0600, synced.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut src =
        fs::File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    std::io::copy(&mut src, &mut dst)
        .and_then(|_| dst.sync_all())
        .with_context(|| format!("cannot write {}", to.display()))?;
    Ok(())
}

fn private_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn private_dir_all(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn has_files(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// A directory `tafel backup` wrote (or an empty one).
fn is_backup(path: &Path) -> bool {
    path.is_dir()
        && (path.join(SQLITE_FILE).is_file()
            || path.join(PG_DUMP_FILE).is_file()
            || !has_files(path))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
