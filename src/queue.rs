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

crate::text_enum! {
    /// A queue row's state, as stored.
    pub enum QueueState("queue state") {
        /// Waiting for the device.
        Pending = "pending",
        /// Handed to the device, no answer yet.
        Sent = "sent",
        /// The device answered NotNow in its current sequence; pending again at its next Idle.
        NotNow = "not_now",
        /// Done.
        Acknowledged = "acknowledged",
        /// The device reported an error.
        Error = "error",
        /// The device could not parse the command.
        CommandFormatError = "command_format_error",
        /// Withdrawn before delivery (admin cancel or device check-out).
        Cancelled = "cancelled",
        /// Not delivered before the command's expiry.
        Expired = "expired",
    }
}

impl QueueState {
    /// States in which the device may still receive the command.
    pub const OPEN: [QueueState; 3] = [QueueState::Pending, QueueState::Sent, QueueState::NotNow];
    /// States of a command the device answered with an error.
    pub const FAILED: [QueueState; 2] = [QueueState::Error, QueueState::CommandFormatError];

    /// The device may still receive the command.
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// The device answered with an error.
    pub fn is_failure(self) -> bool {
        Self::FAILED.contains(&self)
    }
}

crate::text_enum! {
    /// Why a command was queued, as stored in `commands.action`.
    pub enum Action("command action") {
        /// Installs an app or profile.
        Install = "install",
        /// Removes an app or profile.
        Remove = "remove",
        /// Asks for inventory.
        Inventory = "inventory",
        /// Ends Setup Assistant (DeviceConfigured).
        Configure = "configure",
        /// Renews the device identity.
        Renew = "renew",
    }
}

/// What a command acts on, as stored in `commands.item_key`: `app:<bundle id>`,
/// `profile:<identifier>` or one of the device-wide keys (`device:configured`, …).
/// Kept with its text, so it is stored and compared without building it again.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct ItemKey {
    text: String,
    kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyKind {
    App,
    Profile,
    Device(DeviceItem),
}

const APP_PREFIX: &str = "app:";
const PROFILE_PREFIX: &str = "profile:";
const DEVICE_PREFIX: &str = "device:";

/// An [`ItemKey`] taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// An app by bundle id.
    App(&'a str),
    /// A profile by its PayloadIdentifier.
    Profile(&'a str),
    /// Something about the device as a whole.
    Device(DeviceItem),
}

crate::text_enum! {
    /// The device-wide item keys (after `device:`).
    pub enum DeviceItem("device item") {
        /// The DeviceConfigured that ends Setup Assistant.
        Configured = "configured",
        /// The ManagedApplicationList that follows installs.
        AppStatus = "app-status",
        /// The identity renewal.
        IdentityRenewal = "identity-renewal",
    }
}

impl ItemKey {
    /// `app:<bundle id>`.
    pub fn app(bundle_id: &str) -> Self {
        Self {
            text: format!("{APP_PREFIX}{bundle_id}"),
            kind: KeyKind::App,
        }
    }

    /// `profile:<identifier>`.
    pub fn profile(identifier: &str) -> Self {
        Self {
            text: format!("{PROFILE_PREFIX}{identifier}"),
            kind: KeyKind::Profile,
        }
    }

    /// `device:<item>`.
    pub fn device(item: DeviceItem) -> Self {
        Self {
            text: format!("{DEVICE_PREFIX}{item}"),
            kind: KeyKind::Device(item),
        }
    }

    /// What the key names.
    pub fn item(&self) -> Item<'_> {
        match self.kind {
            KeyKind::App => Item::App(self.text.strip_prefix(APP_PREFIX).unwrap_or_default()),
            KeyKind::Profile => {
                Item::Profile(self.text.strip_prefix(PROFILE_PREFIX).unwrap_or_default())
            }
            KeyKind::Device(d) => Item::Device(d),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl crate::db::text::TextValue for ItemKey {
    const KIND: &'static str = "item key";
    fn as_text(&self) -> &str {
        &self.text
    }
    fn parse_text(s: &str) -> Result<Self, crate::db::text::UnknownText> {
        let kind = if s.strip_prefix(APP_PREFIX).is_some_and(|b| !b.is_empty()) {
            Some(KeyKind::App)
        } else if s
            .strip_prefix(PROFILE_PREFIX)
            .is_some_and(|i| !i.is_empty())
        {
            Some(KeyKind::Profile)
        } else {
            s.strip_prefix(DEVICE_PREFIX)
                .and_then(|d| d.parse().ok())
                .map(KeyKind::Device)
        };
        kind.map(|kind| Self {
            text: s.to_owned(),
            kind,
        })
        .ok_or_else(|| crate::db::text::UnknownText {
            kind: Self::KIND,
            value: s.to_owned(),
        })
    }
}

crate::text_sql!(ItemKey);

impl utoipa::PartialSchema for ItemKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(app|profile|device):.+$"))
            .examples(["app:com.apple.Keynote"])
            .description(Some(
                "What a command acts on: `app:<bundle id>`, `profile:<identifier>` or `device:<configured|app-status|identity-renewal>`",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ItemKey {}

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
    /// What it acts on.
    pub item_key: Option<ItemKey>,
    /// Why it was queued.
    pub action: Option<Action>,
    /// The version of the item it installs (a profile's PayloadUUID).
    pub item_version: Option<String>,
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
    /// A body that carries a device's secret could not be sealed.
    #[error("sealing a command body: {0}")]
    Sealing(String),
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
    insert(conn, command, command.to_xml(), device_ids, opts)
}

/// A command that carries one device's secret (ClearPasscode's unlock token), for that
/// device only, its body sealed to it (opened at delivery by
/// [`crate::secrets::command_body`]); inside the caller's transaction.
pub fn enqueue_sealed_in_tx(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    command: &Command,
    device_id: &str,
    opts: &EnqueueOptions,
) -> Result<usize, QueueError> {
    use crate::secrets::{binding, places};
    let sealed = secrets
        .seal_for(&binding(places::COMMAND_BODY, device_id), &command.to_xml())
        .map_err(|e| QueueError::Sealing(e.to_string()))?;
    insert(conn, command, sealed, &[device_id.to_owned()], opts)
}

fn insert(
    conn: &mut DbConn,
    command: &Command,
    body: Vec<u8>,
    device_ids: &[String],
    opts: &EnqueueOptions,
) -> Result<usize, QueueError> {
    let at = now();
    diesel::insert_into(commands::table)
        .values((
            commands::command_uuid.eq(command.command_uuid.as_str()),
            commands::request_type.eq(&command.request_type),
            commands::body.eq(body),
            commands::priority.eq(opts.priority),
            commands::source.eq(&opts.source),
            commands::created_by.eq(&opts.created_by),
            commands::created_at.eq(at),
            commands::expires_at.eq(opts.expires_at),
            commands::assignment_id.eq(&opts.assignment_id),
            commands::item_key.eq(&opts.item_key),
            commands::action.eq(&opts.action),
            commands::item_version.eq(&opts.item_version),
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
                    command_queue::status.eq(QueueState::Pending),
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

/// The body of the device's next command, marked `Sent`; `None` when nothing is due.
///
/// On `Idle` (`after_answer` false) the commands deferred by `NotNow` are offered again;
/// an Idle that finds nothing open is one indexed read and writes nothing, and one that
/// finds something claims it in a write transaction of its own. After an answer, call
/// it inside the transaction that records the answer: the answer and the next claim
/// are one commit. The statements here run on every connect; each has a fixed SQL text
/// (no `IN` lists), so it is prepared once per connection and reused.
pub fn next_command(
    conn: &mut DbConn,
    device_id: &str,
    after_answer: bool,
) -> Result<Option<Vec<u8>>, QueueError> {
    if after_answer {
        return claim_next(conn, device_id);
    }
    let open: Option<QueueState> = command_queue::table
        .filter(command_queue::device_id.eq(device_id))
        .filter(
            command_queue::status
                .eq(QueueState::Pending)
                .or(command_queue::status.eq(QueueState::Sent))
                .or(command_queue::status.eq(QueueState::NotNow)),
        )
        .select(command_queue::status)
        .first(conn)
        .optional()?;
    next_after_idle(conn, device_id, open.is_some())
}

/// [`next_command`] on `Idle` when the caller has read whether anything is open for
/// the device (`open`; the connect path reads it with the device,
/// [`crate::enrollment::find_with_open`]): nothing open, nothing to do.
pub fn next_after_idle(
    conn: &mut DbConn,
    device_id: &str,
    open: bool,
) -> Result<Option<Vec<u8>>, QueueError> {
    if !open {
        return Ok(None);
    }
    conn.write_tx(|conn| {
        let deferred: i64 = command_queue::table
            .filter(command_queue::device_id.eq(device_id))
            .filter(command_queue::status.eq(QueueState::NotNow))
            .count()
            .get_result(conn)?;
        if deferred > 0 {
            diesel::update(
                command_queue::table
                    .filter(command_queue::device_id.eq(device_id))
                    .filter(command_queue::status.eq(QueueState::NotNow)),
            )
            .set((
                command_queue::status.eq(QueueState::Pending),
                command_queue::updated_at.eq(now()),
            ))
            .execute(conn)?;
        }
        claim_next(conn, device_id)
    })
}

/// Claims the first `Pending` or `Sent` command (what was deferred in this sequence
/// waits for the next Idle); expired ones on the way are marked so.
fn claim_next(conn: &mut DbConn, device_id: &str) -> Result<Option<Vec<u8>>, QueueError> {
    let offered = || {
        command_queue::status
            .eq(QueueState::Pending)
            .or(command_queue::status.eq(QueueState::Sent))
    };
    loop {
        let at = now();
        let next: Option<(String, Vec<u8>, Option<chrono::NaiveDateTime>)> = command_queue::table
            .inner_join(commands::table)
            .filter(command_queue::device_id.eq(device_id))
            .filter(offered())
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
            .filter(offered());
        if expires_at.is_some_and(|e| e <= at) {
            diesel::update(row)
                .set((
                    command_queue::status.eq(QueueState::Expired),
                    command_queue::updated_at.eq(at),
                ))
                .execute(conn)?;
            continue;
        }
        let claimed = diesel::update(row)
            .set((
                command_queue::status.eq(QueueState::Sent),
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
const FINISHED: [QueueState; 3] = [
    QueueState::Acknowledged,
    QueueState::Error,
    QueueState::CommandFormatError,
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
    // Not finished (spelled out: a fixed SQL text is prepared once and reused).
    let [a, b, c] = FINISHED;
    let open_row = command_queue::table
        .find((device_id, uuid.as_str()))
        .filter(
            command_queue::status
                .ne(a)
                .and(command_queue::status.ne(b))
                .and(command_queue::status.ne(c)),
        );
    let updated = match report.status {
        Status::Idle => return Ok(()),
        Status::NotNow => diesel::update(open_row)
            .set((
                command_queue::status.eq(QueueState::NotNow),
                command_queue::updated_at.eq(at),
            ))
            .execute(conn)?,
        done => {
            let new_state = match done {
                Status::Acknowledged => QueueState::Acknowledged,
                Status::CommandFormatError => QueueState::CommandFormatError,
                _ => QueueState::Error,
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
        .filter(command_queue::status.eq_any([QueueState::Pending, QueueState::NotNow]));
    let set = (
        command_queue::status.eq(QueueState::Cancelled),
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
    pub status: QueueState,
    /// Priority (higher first).
    pub priority: i32,
    /// Deliveries so far.
    pub attempts: i32,
    /// Queued at.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last delivered at.
    #[serde(with = "crate::time::utc_opt")]
    pub sent_at: Option<chrono::NaiveDateTime>,
    /// Answered at.
    #[serde(with = "crate::time::utc_opt")]
    pub answered_at: Option<chrono::NaiveDateTime>,
    /// Expires at.
    #[serde(with = "crate::time::utc_opt")]
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
    status: Option<QueueState>,
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
        q = q.filter(command_queue::status.eq(s));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::text::TextValue;

    #[test]
    fn item_keys_keep_the_stored_words_and_refuse_others() {
        let app = ItemKey::app("com.apple.Keynote");
        assert_eq!(app.as_str(), "app:com.apple.Keynote");
        assert_eq!(app.item(), Item::App("com.apple.Keynote"));
        let profile = ItemKey::profile("de.schule.wlan");
        assert_eq!(profile.item(), Item::Profile("de.schule.wlan"));
        for key in [
            app,
            profile,
            ItemKey::device(DeviceItem::Configured),
            ItemKey::device(DeviceItem::AppStatus),
            ItemKey::device(DeviceItem::IdentityRenewal),
        ] {
            assert_eq!(ItemKey::parse_text(key.as_str()), Ok(key.clone()));
        }
        let renewal: ItemKey = "device:identity-renewal".parse().unwrap();
        assert_eq!(renewal.item(), Item::Device(DeviceItem::IdentityRenewal));
        for bad in [
            "app:",
            "profile:",
            "device:reboot",
            "printer:x",
            "Keynote",
            "",
        ] {
            let err = ItemKey::parse_text(bad).unwrap_err();
            assert_eq!(err.value, bad);
        }
    }

    #[test]
    fn open_and_failed_states_are_the_ones_the_queue_delivers_and_reports() {
        let open: Vec<_> = QueueState::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(
            open,
            [&QueueState::Pending, &QueueState::Sent, &QueueState::NotNow]
        );
        let failed: Vec<_> = QueueState::ALL.iter().filter(|s| s.is_failure()).collect();
        assert_eq!(
            failed,
            [&QueueState::Error, &QueueState::CommandFormatError]
        );
        assert_eq!(QueueState::NotNow.as_str(), "not_now");
        assert_eq!(Action::Inventory.to_string(), "inventory");
    }
}
