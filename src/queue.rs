//! The command queue: a command is stored once and fanned out to one queue row per
//! device; devices take the oldest pending command (priority first) and answer it.
//!
//! Delivery rule: a connect *sequence* starts with `Status=Idle`. Within it, a command
//! the device answered `NotNow` *in this sequence* is not offered again; every other
//! open command is: `pending`, `sent` before without an answer (e.g. after a crash),
//! and commands deferred in an earlier sequence. The Idle turns what earlier sequences
//! deferred back into `pending`, so inside the sequence `not_now` means "deferred
//! here": a deferred command is never lost, never loops within a sequence, and comes
//! back with the very next sequence rather than one command per Idle.

use diesel::prelude::*;

use crate::db::schema::{command_queue, commands, devices};
use crate::db::{now, DbConn};
use crate::protocol::{Command, ConnectReport, Status};

/// Queue row states, as stored.
pub mod state {
    /// Waiting for the device.
    pub const PENDING: &str = "pending";
    /// Handed to the device, no answer yet.
    pub const SENT: &str = "sent";
    /// The device answered NotNow in its current sequence; pending again at its next Idle.
    pub const NOT_NOW: &str = "not_now";
    /// Done.
    pub const ACKNOWLEDGED: &str = "acknowledged";
    /// The device reported an error.
    pub const ERROR: &str = "error";
    /// The device could not parse the command.
    pub const COMMAND_FORMAT_ERROR: &str = "command_format_error";
    /// Withdrawn before delivery (admin cancel or device check-out).
    pub const CANCELLED: &str = "cancelled";
    /// Not delivered before the command's expiry.
    pub const EXPIRED: &str = "expired";

    /// States in which the device may still receive the command.
    pub const OPEN: [&str; 3] = [PENDING, SENT, NOT_NOW];
}

/// Rows inserted per statement (stays well below SQLite's bound-variable limit).
const INSERT_CHUNK: usize = 1000;

/// How to enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Higher first.
    pub priority: i32,
    /// Not delivered after this time.
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// Who or what enqueued: `api`, `reconciler`, `inventory`, …
    pub source: String,
    /// The user id, when a person enqueued.
    pub created_by: Option<String>,
    /// The assignment that asked for it (reconciler).
    pub assignment_id: Option<String>,
    /// What it acts on: `app:<bundle id>` or `profile:<identifier>`.
    pub item_key: Option<String>,
    /// `install`, `remove` or `inventory`.
    pub action: Option<String>,
}

/// Errors of queue operations.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The device answered a command that is not queued for it.
    #[error("command {0} is not queued for this device")]
    NotYours(String),
    /// No connection to work with.
    #[error(transparent)]
    Unavailable(#[from] crate::db::DbError),
}

/// Stores `command` once and queues it for every device id, in one transaction.
pub fn enqueue(
    conn: &mut DbConn,
    command: &Command,
    device_ids: &[String],
    opts: &EnqueueOptions,
) -> Result<usize, QueueError> {
    conn.write_tx(|conn| enqueue_in_tx(conn, command, device_ids, opts))
}

/// As [`enqueue`], inside a transaction the caller holds.
pub fn enqueue_in_tx(
    conn: &mut DbConn,
    command: &Command,
    device_ids: &[String],
    opts: &EnqueueOptions,
) -> Result<usize, QueueError> {
    let at = now();
    diesel::insert_into(commands::table)
        .values((
            commands::command_uuid.eq(command.command_uuid.as_str()),
            commands::request_type.eq(&command.request_type),
            commands::body.eq(command.to_xml()),
            commands::priority.eq(opts.priority),
            commands::source.eq(&opts.source),
            commands::created_by.eq(&opts.created_by),
            commands::created_at.eq(at),
            commands::expires_at.eq(opts.expires_at),
            commands::assignment_id.eq(&opts.assignment_id),
            commands::item_key.eq(&opts.item_key),
            commands::action.eq(&opts.action),
        ))
        .execute(conn)?;
    let mut queued = 0;
    for chunk in device_ids.chunks(INSERT_CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|device_id| {
                (
                    command_queue::device_id.eq(device_id),
                    command_queue::command_uuid.eq(command.command_uuid.as_str()),
                    command_queue::status.eq(state::PENDING),
                    command_queue::priority.eq(opts.priority),
                    command_queue::created_at.eq(at),
                    command_queue::updated_at.eq(at),
                )
            })
            .collect();
        let insert = diesel::insert_into(command_queue::table).values(rows);
        queued += crate::with_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(queued)
}

/// Picks the next command for a device and marks it sent. `after_answer` is true when
/// the device has just answered a command in this connect sequence; false on its Idle,
/// which starts a new sequence.
///
/// Needs no transaction: the row is claimed with a conditional update, and a lost race
/// (two connects of one device at once) just picks again.
pub fn next_command(
    conn: &mut DbConn,
    device_id: &str,
    after_answer: bool,
) -> Result<Option<Vec<u8>>, QueueError> {
    if !after_answer {
        // Written only when an earlier sequence deferred something, so an Idle that
        // finds nothing to do stays read-only.
        let deferred: i64 = command_queue::table
            .filter(command_queue::device_id.eq(device_id))
            .filter(command_queue::status.eq(state::NOT_NOW))
            .count()
            .get_result(conn)?;
        if deferred > 0 {
            diesel::update(
                command_queue::table
                    .filter(command_queue::device_id.eq(device_id))
                    .filter(command_queue::status.eq(state::NOT_NOW)),
            )
            .set((
                command_queue::status.eq(state::PENDING),
                command_queue::updated_at.eq(now()),
            ))
            .execute(conn)?;
        }
    }
    // Deferred in this sequence: not offered again until the next Idle.
    let candidates: &[&str] = &[state::PENDING, state::SENT];
    loop {
        let at = now();
        let next: Option<(String, Vec<u8>, Option<chrono::NaiveDateTime>)> = command_queue::table
            .inner_join(commands::table)
            .filter(command_queue::device_id.eq(device_id))
            .filter(command_queue::status.eq_any(candidates))
            .order((
                command_queue::priority.desc(),
                command_queue::created_at.asc(),
                command_queue::command_uuid.asc(),
            ))
            .select((commands::command_uuid, commands::body, commands::expires_at))
            .first(conn)
            .optional()?;
        let Some((uuid, body, expires_at)) = next else {
            return Ok(None);
        };
        let row = command_queue::table
            .find((device_id, &uuid))
            .filter(command_queue::status.eq_any(candidates));
        if expires_at.is_some_and(|e| e <= at) {
            diesel::update(row)
                .set((
                    command_queue::status.eq(state::EXPIRED),
                    command_queue::updated_at.eq(at),
                ))
                .execute(conn)?;
            continue;
        }
        let claimed = diesel::update(row)
            .set((
                command_queue::status.eq(state::SENT),
                command_queue::sent_at.eq(at),
                command_queue::updated_at.eq(at),
                command_queue::attempts.eq(command_queue::attempts + 1),
            ))
            .execute(conn)?;
        if claimed == 1 {
            return Ok(Some(body));
        }
    }
}

/// States in which an answer is final.
const FINISHED: [&str; 3] = [
    state::ACKNOWLEDGED,
    state::ERROR,
    state::COMMAND_FORMAT_ERROR,
];

/// Stores a device's answer to one of its commands. Repeating an answer changes nothing,
/// and an answered command is never reopened by a late `NotNow`.
pub fn record_answer(
    conn: &mut DbConn,
    device_id: &str,
    report: &ConnectReport,
    raw: &[u8],
) -> Result<(), QueueError> {
    let Some(uuid) = report.command_uuid.as_ref() else {
        return Ok(());
    };
    let at = now();
    let open_row = command_queue::table
        .find((device_id, uuid.as_str()))
        .filter(command_queue::status.ne_all(FINISHED));
    let updated = match report.status {
        Status::Idle => return Ok(()),
        Status::NotNow => diesel::update(open_row)
            .set((
                command_queue::status.eq(state::NOT_NOW),
                command_queue::updated_at.eq(at),
            ))
            .execute(conn)?,
        done => {
            let new_state = match done {
                Status::Acknowledged => state::ACKNOWLEDGED,
                Status::CommandFormatError => state::COMMAND_FORMAT_ERROR,
                _ => state::ERROR,
            };
            let chain = (!report.error_chain.is_empty())
                .then(|| serde_json::to_string(&report.error_chain))
                .transpose()
                .unwrap_or_default();
            diesel::update(open_row)
                .set((
                    command_queue::status.eq(new_state),
                    command_queue::answered_at.eq(at),
                    command_queue::updated_at.eq(at),
                    command_queue::result.eq(raw),
                    command_queue::error_chain.eq(chain),
                ))
                .execute(conn)?
        }
    };
    if updated == 0 {
        let exists: i64 = command_queue::table
            .find((device_id, uuid.as_str()))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            return Err(QueueError::NotYours(uuid.to_string()));
        }
    }
    Ok(())
}

/// Cancels a device's open commands (all, or those named). Returns how many.
pub fn cancel(
    conn: &mut DbConn,
    device_id: &str,
    only: Option<&[String]>,
) -> Result<usize, QueueError> {
    let at = now();
    let base = command_queue::table
        .filter(command_queue::device_id.eq(device_id))
        .filter(command_queue::status.eq_any([state::PENDING, state::NOT_NOW]));
    let set = (
        command_queue::status.eq(state::CANCELLED),
        command_queue::updated_at.eq(at),
    );
    let n = match only {
        Some(uuids) => diesel::update(base.filter(command_queue::command_uuid.eq_any(uuids)))
            .set(set)
            .execute(conn)?,
        None => diesel::update(base).set(set).execute(conn)?,
    };
    Ok(n)
}

/// One queue entry as shown to admins.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    /// The command.
    pub command_uuid: String,
    /// Its RequestType.
    pub request_type: String,
    /// Queue state.
    pub status: String,
    /// Priority (higher first).
    pub priority: i32,
    /// Deliveries so far.
    pub attempts: i32,
    /// Queued at.
    pub created_at: chrono::NaiveDateTime,
    /// Last delivered at.
    pub sent_at: Option<chrono::NaiveDateTime>,
    /// Answered at.
    pub answered_at: Option<chrono::NaiveDateTime>,
    /// Expires at.
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// The device's raw answer (XML plist).
    #[serde(skip)]
    pub result: Option<Vec<u8>>,
    /// Apple's ErrorChain, JSON.
    #[serde(skip)]
    pub error_chain: Option<String>,
}

/// A device's queue, newest first, optionally filtered by state; `before` pages.
pub fn list(
    conn: &mut DbConn,
    device_id: &str,
    status: Option<&str>,
    before: Option<(chrono::NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<QueueEntry>> {
    let mut q = command_queue::table
        .inner_join(commands::table)
        .filter(command_queue::device_id.eq(device_id))
        .select((
            commands::command_uuid,
            commands::request_type,
            command_queue::status,
            command_queue::priority,
            command_queue::attempts,
            command_queue::created_at,
            command_queue::sent_at,
            command_queue::answered_at,
            commands::expires_at,
            command_queue::result,
            command_queue::error_chain,
        ))
        .order((
            command_queue::created_at.desc(),
            commands::command_uuid.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(command_queue::status.eq(s.to_owned()));
    }
    if let Some((t, id)) = before {
        q = q.filter(
            command_queue::created_at.lt(t).or(command_queue::created_at
                .eq(t)
                .and(commands::command_uuid.lt(id))),
        );
    }
    q.load(conn)
}

/// Device ids for UDIDs; returns `(found, unknown udids)`.
pub fn resolve_udids(
    conn: &mut DbConn,
    udids: &[String],
) -> QueryResult<(Vec<String>, Vec<String>)> {
    let mut found = Vec::with_capacity(udids.len());
    let mut known = std::collections::HashSet::new();
    for chunk in udids.chunks(INSERT_CHUNK) {
        let rows: Vec<(String, Option<String>)> = devices::table
            .filter(devices::udid.eq_any(chunk))
            .select((devices::id, devices::udid))
            .load(conn)?;
        for (id, udid) in rows {
            if let Some(u) = udid {
                if known.insert(u) {
                    found.push(id);
                }
            }
        }
    }
    let unknown = udids
        .iter()
        .filter(|u| !known.contains(*u))
        .cloned()
        .collect();
    Ok((found, unknown))
}
