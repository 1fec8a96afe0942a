//! Storage: one diesel connection type over SQLite (embedded default) and PostgreSQL.
//!
//! The database URL picks the backend by its scheme; anything else is an error, so a
//! typo never silently creates an empty SQLite file. diesel is synchronous: callers
//! run it on the blocking pool through [`Db::run`], never on an actix worker.

pub mod schema;
pub mod text;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection,
};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgresql");

/// Advisory lock key under which PostgreSQL nodes run migrations one at a time ("tafel" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0074_6166_656c;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// The embedded default.
    Sqlite(SqliteConnection),
    /// Several nodes sharing one database.
    Pg(PgConnection),
}

/// The query backend of [`DbConn`] (for boxed queries).
pub type DbBackend = <DbConn as diesel::Connection>::Backend;

diesel::define_sql_function! {
    /// SQL `lower()`, on both backends.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Which engine a [`DatabaseUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A validated database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to libpq as it is.
    Postgres(String),
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no supported backend.
    #[error("database URL {0:?} is not supported: use sqlite://path/to/file.db or postgres://user@host/db")]
    BadUrl(String),
    /// The pool could not hand out a connection.
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Creating the SQLite file's directory failed.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The blocking task was cancelled (the runtime is shutting down).
    #[error("database task cancelled")]
    Cancelled,
}

/// A fault of the storage under the database that an operator must fix: until then
/// nothing can be written, and every node answers 503 naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// The database takes no writes (SQLite: `SQLITE_READONLY`, a file or directory
    /// that is not writable; PostgreSQL: `read_only_sql_transaction`, e.g. a standby).
    ReadOnly,
    /// No space is left (SQLite: `SQLITE_FULL`; PostgreSQL: `disk_full` or an `ENOSPC`
    /// while writing).
    DiskFull,
}

impl StorageFault {
    /// The fault behind a database error, if it is one.
    pub fn of(e: &diesel::result::Error) -> Option<Self> {
        match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ReadOnlyTransaction,
                _,
            ) => Some(StorageFault::ReadOnly),
            diesel::result::Error::DatabaseError(_, info) => Self::of_message(info.message()),
            _ => None,
        }
    }

    /// The fault named in an error's text. diesel hands SQLite's result codes over only
    /// as text, and SQLite's texts for them are fixed (`sqlite3_errstr`); PostgreSQL's
    /// disk-full errors say `No space left on device` (diesel keeps no SQLSTATE for them).
    pub fn of_message(message: &str) -> Option<Self> {
        const READ_ONLY: &[&str] = &[
            "attempt to write a readonly database",
            "in a read-only transaction",
        ];
        const FULL: &[&str] = &["database or disk is full", "No space left on device"];
        if READ_ONLY.iter().any(|m| message.contains(m)) {
            Some(StorageFault::ReadOnly)
        } else if FULL.iter().any(|m| message.contains(m)) {
            Some(StorageFault::DiskFull)
        } else {
            None
        }
    }

    /// What it means, in words for the operator.
    pub fn describe(self) -> &'static str {
        match self {
            StorageFault::ReadOnly => {
                "the database is read-only: nothing can be stored until it is writable again"
            }
            StorageFault::DiskFull => {
                "the disk is full: nothing can be stored until space is freed on the database's disk"
            }
        }
    }
}

impl DatabaseUrl {
    /// Parses a URL; the scheme decides the backend.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.ends_with('/') {
                return Err(DbError::BadUrl(url.to_owned()));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(DbError::BadUrl(url.to_owned()))
    }

    /// The backend this URL uses.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The database file holds secrets (sealed, but also everything else a school keeps):
/// readable by tafel's user only. It is created 0600 (SQLite gives its `-wal` and
/// `-shm` files the same mode) and an existing one is narrowed to that.
fn private_file(path: &std::path::Path) -> Result<(), DbError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| DbError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let sibling = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    for file in [path.to_path_buf(), sibling("-wal"), sibling("-shm")] {
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %file.display(), "database file readable by others: narrowed to 0600");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
        }
    }
    Ok(())
}

/// Sets the per-connection SQLite pragmas (WAL, busy timeout, foreign keys).
#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

thread_local! {
    /// Whether the work done with the connection being returned on this thread failed.
    static LAST_USE_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The pool's connection manager: diesel's, except when a connection is tested.
///
/// Testing every checkout (`SELECT 1`) costs a round trip per request on PostgreSQL.
/// Instead, a connection whose last use in [`Db::run`] failed is tested as it goes back
/// into the pool, and dropped if the server no longer answers on it: after a database
/// restart, each stale connection fails one request and is then replaced, instead of
/// failing every request that gets it. (A SQLite connection is a file handle and does
/// not go stale.)
#[derive(Debug)]
pub struct Manager(ConnectionManager<DbConn>);

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        self.0.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        if self.0.has_broken(conn) {
            return true;
        }
        let failed = LAST_USE_FAILED.with(|f| f.replace(false));
        failed && matches!(conn, DbConn::Pg(_)) && self.0.is_valid(conn).is_err()
    }
}

/// The connection pool, shared by every part of the server.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// Told how long each checkout waited (the server's metrics).
    on_wait: Option<fn(Duration)>,
    /// The SQLite file (its migrations are serialised with a lock file beside it).
    sqlite_path: Option<std::path::PathBuf>,
}

/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<Manager>;

impl Db {
    /// Opens a pool of `size` connections. For SQLite the file's directory is created.
    pub fn connect(url: &DatabaseUrl, size: u32) -> Result<Self, DbError> {
        let conn_str = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                private_file(path)?;
                path.to_string_lossy().into_owned()
            }
            DatabaseUrl::Postgres(url) => url.clone(),
        };
        let manager = Manager(ConnectionManager::<DbConn>::new(conn_str));
        let pool = Pool::builder()
            .max_size(size.max(1))
            // Not tested on every checkout (a `SELECT 1`, on PostgreSQL a round trip per
            // request): a connection is tested when its last use failed (`Manager`).
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(ConnectionSetup))
            .build(manager)?;
        Ok(Db {
            pool,
            backend: url.backend(),
            on_wait: None,
            sqlite_path: match url {
                DatabaseUrl::Sqlite(path) => Some(path.clone()),
                DatabaseUrl::Postgres(_) => None,
            },
        })
    }

    /// Reports how long each checkout from the pool waited to `observe`.
    pub fn observe_waits(mut self, observe: fn(Duration)) -> Self {
        self.on_wait = Some(observe);
        self
    }

    /// Connections open in the pool, and of them idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    fn checkout(
        pool: &Pool<Manager>,
        on_wait: Option<fn(Duration)>,
    ) -> Result<PooledConn, DbError> {
        let started = on_wait.map(|_| std::time::Instant::now());
        let conn = pool.get();
        if let (Some(observe), Some(started)) = (on_wait, started) {
            observe(started.elapsed());
        }
        Ok(conn?)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks a connection out of the pool (blocking).
    pub fn get(&self) -> Result<PooledConn, DbError> {
        Self::checkout(&self.pool, self.on_wait)
    }

    /// Runs `f` with a connection on tokio's blocking pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (pool, on_wait) = (self.pool.clone(), self.on_wait);
        tokio::task::spawn_blocking(move || {
            let mut conn = Self::checkout(&pool, on_wait)?;
            let result = f(&mut conn);
            if result.is_err() {
                LAST_USE_FAILED.with(|failed| failed.set(true));
            }
            drop(conn);
            result
        })
        .await
        .map_err(|_| E::from(DbError::Cancelled))?
    }

    /// Applies pending migrations; returns the names of those applied.
    ///
    /// On PostgreSQL this holds an advisory lock, so two nodes starting together never
    /// migrate at once.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        // Two processes starting at once on one SQLite file would both see the same
        // migrations pending: one at a time, under an exclusive lock on a file beside
        // it (PostgreSQL takes an advisory lock instead).
        let _lock = match &self.sqlite_path {
            Some(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".migrate-lock");
                let lock_path = std::path::PathBuf::from(name);
                let mut options = std::fs::OpenOptions::new();
                options.create(true).truncate(false).write(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options.open(&lock_path).map_err(|source| DbError::Io {
                    path: lock_path.clone(),
                    source,
                })?;
                file.lock().map_err(|source| DbError::Io {
                    path: lock_path,
                    source,
                })?;
                Some(file)
            }
            None => None,
        };
        let mut conn = self.get()?;
        migrate_conn(&mut conn)
    }

    /// `SELECT 1`: is the database reachable?
    pub fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

fn migrate_conn(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let run = |conn: &mut DbConn, migrations: EmbeddedMigrations| {
        conn.run_pending_migrations(migrations)
            .map(|done| done.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            .map_err(|e| DbError::Migration(e.to_string()))
    };
    match conn {
        DbConn::Sqlite(_) => run(conn, SQLITE_MIGRATIONS),
        DbConn::Pg(_) => {
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = run(conn, POSTGRES_MIGRATIONS);
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result
        }
    }
}

/// The SQLite write transactions of this process, one at a time.
///
/// SQLite lets one connection write at a time. A writer that finds the lock taken waits
/// in SQLite's busy handler, which sleeps 1, 2, 5, 10 … 100 ms between tries: under a
/// burst of answers most of the time goes to sleeping, and the last in line waits
/// longest. Queued on this lock instead, the next writer starts the moment the last
/// commits. Other processes on the same file still meet SQLite's own lock (and its busy
/// timeout). A writer that cannot get this lock within [`SQLITE_WRITER_WAIT`] goes on
/// without it and meets SQLite's lock, so no mistake elsewhere can make it wait forever.
static SQLITE_WRITER: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// How long a writer queues for [`SQLITE_WRITER`] (SQLite's own busy timeout).
const SQLITE_WRITER_WAIT: Duration = Duration::from_secs(10);

impl DbConn {
    /// Runs `f` in a write transaction.
    ///
    /// SQLite takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction
    /// that later writes can fail with SQLITE_BUSY without waiting for the busy timeout.
    /// SQLite has one writer at a time; the writers of this process queue for it on a
    /// lock of their own (see [`SQLITE_WRITER`]) instead of in SQLite's busy handler.
    pub fn write_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let _writer = match self {
            DbConn::Sqlite(_) => SQLITE_WRITER.try_lock_for(SQLITE_WRITER_WAIT),
            DbConn::Pg(_) => None,
        };
        match self {
            DbConn::Sqlite(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
            }
            DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
        }
        let result = f(self);
        match (self, &result) {
            (DbConn::Sqlite(c), Ok(_)) => AnsiTransactionManager::commit_transaction(c)?,
            (DbConn::Pg(c), Ok(_)) => AnsiTransactionManager::commit_transaction(c)?,
            (DbConn::Sqlite(c), Err(_)) => AnsiTransactionManager::rollback_transaction(c)?,
            (DbConn::Pg(c), Err(_)) => AnsiTransactionManager::rollback_transaction(c)?,
        }
        result
    }

    /// Runs `f` in a read transaction that sees one snapshot of the database for all of
    /// its statements (SQLite: a deferred transaction, whose snapshot is taken at the
    /// first read; PostgreSQL: `REPEATABLE READ`, since its default gives each statement
    /// a snapshot of its own). `f` must not write.
    pub fn read_snapshot<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN")?,
            DbConn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(
                c,
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )?,
        }
        let result = f(self);
        // Nothing was written: ending the transaction either way only drops the snapshot.
        match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c)?,
            DbConn::Pg(c) => AnsiTransactionManager::rollback_transaction(c)?,
        }
        result
    }

    /// Can the database take a write? Updates the `health_probe` row in a write
    /// transaction and rolls it back, so nothing is kept: a read-only database (or one
    /// whose writes fail) answers with the error.
    pub fn probe_write(&mut self) -> Result<(), diesel::result::Error> {
        /// Ends the transaction without keeping anything.
        enum End {
            RolledBack,
            Failed(diesel::result::Error),
        }
        impl From<diesel::result::Error> for End {
            fn from(e: diesel::result::Error) -> Self {
                End::Failed(e)
            }
        }
        let outcome = self.write_tx(|c| -> Result<(), End> {
            diesel::RunQueryDsl::execute(
                diesel::sql_query("UPDATE health_probe SET probed_at = CURRENT_TIMESTAMP"),
                c,
            )?;
            Err(End::RolledBack)
        });
        match outcome {
            Ok(()) | Err(End::RolledBack) => Ok(()),
            Err(End::Failed(e)) => Err(e),
        }
    }

    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Sqlite(_) => Backend::Sqlite,
            DbConn::Pg(_) => Backend::Postgres,
        }
    }
}

/// Runs a query on the concrete connection inside a [`DbConn`], for the few statements
/// diesel's multi-backend connection cannot build (batch inserts, upserts, RETURNING).
#[macro_export]
macro_rules! with_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConn::Sqlite($c) => $body,
            $crate::DbConn::Pg($c) => $body,
        }
    };
}

/// Current time as stored in the database (UTC, microsecond precision).
pub fn now() -> chrono::NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    // Both backends keep microseconds; truncating here makes a written value compare
    // equal to what is read back.
    t - chrono::Duration::nanoseconds(i64::from(t.and_utc().timestamp_subsec_nanos() % 1000))
}

/// A new random id for a row.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_faults_are_told_from_other_errors() {
        for (message, fault) in [
            (
                "attempt to write a readonly database",
                Some(StorageFault::ReadOnly),
            ),
            (
                "cannot execute UPDATE in a read-only transaction",
                Some(StorageFault::ReadOnly),
            ),
            ("database or disk is full", Some(StorageFault::DiskFull)),
            (
                "could not extend file \"base/16384/2619\": No space left on device",
                Some(StorageFault::DiskFull),
            ),
            ("UNIQUE constraint failed: tenants.slug", None),
            ("database is locked", None),
        ] {
            assert_eq!(StorageFault::of_message(message), fault, "{message}");
        }
    }

    #[test]
    fn url_scheme_picks_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/tafel.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/tafel.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/tafel.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/var/lib/tafel.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        for bad in [
            "sqlite:/data.db",
            "sqlit://x.db",
            "data/tafel.db",
            "postgress://x",
            "sqlite://",
            "mysql://x",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
