//! The `webhook_deliveries` table: insert an event (inside the caller's transaction),
//! claim due deliveries, record attempts, defer, prune and list.
//!
//! A claim moves the rows' `next_attempt_at` past the time their sending may take (a
//! lease), so no other pass or node takes them meanwhile, and a node that dies while
//! sending leaves them to be retried when the lease ends. On PostgreSQL the claim
//! selects with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once take different rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::InvalidEvent;
use crate::db::schema::webhook_deliveries;
use crate::db::{now, DbConn};

crate::text_enum! {
    /// A webhook delivery's state, as stored.
    pub enum DeliveryStatus("delivery status") {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// A 2xx answer came back.
        Delivered = "delivered",
        /// Given up after the last attempt.
        Failed = "failed",
    }
}

/// One event for the webhook, and how its delivery went.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    /// Id (a UUIDv5 of the event and what it is about), also the body's `id` and
    /// `X-Tafel-Delivery`.
    pub id: String,
    /// Event name, e.g. `lesson.created`.
    pub event: String,
    /// Where it was (last) sent.
    pub url: String,
    /// The JSON body, exactly as sent.
    pub payload: String,
    /// The authority the event concerns.
    pub tenant_id: Option<String>,
    /// The school the event concerns.
    pub school_id: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// Not sent before this time.
    #[serde(with = "crate::time::utc")]
    pub next_attempt_at: NaiveDateTime,
    /// Its state.
    pub status: DeliveryStatus,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    #[serde(with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    /// When a 2xx answer came back.
    #[serde(with = "crate::time::utc_opt")]
    pub delivered_at: Option<NaiveDateTime>,
}

/// A claimed delivery: what sending it needs.
#[derive(Debug, Clone, Queryable, QueryableByName)]
#[diesel(table_name = webhook_deliveries)]
pub struct Claimed {
    /// Id.
    pub id: String,
    /// Event name.
    pub event: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// The body receivers get (field order as documented).
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    event: &'a str,
    created_at: String,
    data: serde_json::Value,
}

/// Refuses an event name that is not 1–100 letters, digits, `.`, `_` or `-` (it
/// travels in an HTTP header).
pub fn check_event(event: &str) -> QueryResult<()> {
    let ok = (1..=100).contains(&event.len())
        && event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(diesel::result::Error::QueryBuilderError(Box::new(
            InvalidEvent(event.to_owned()),
        )))
    }
}

/// The delivery id of `event` about `about`: a UUIDv5 of both, so that the same event
/// produced twice (by two nodes, or by a retried job) has one id.
pub fn event_id(event: &str, about: &str) -> String {
    // The namespace of tafel's event ids (a UUIDv5 of its URL in the URL namespace).
    let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:tafel:webhook-event");
    uuid::Uuid::new_v5(&namespace, format!("{event}\n{about}").as_bytes()).to_string()
}

/// Stores an event for `url`, due at once, unless the same event about the same thing
/// (the same [`event_id`]) is stored already. Run it inside the transaction of the change
/// it reports. Returns the delivery id.
pub fn insert(
    conn: &mut DbConn,
    url: &str,
    event: &str,
    about: &str,
    tenant_id: Option<&str>,
    school_id: Option<&str>,
    data: serde_json::Value,
) -> QueryResult<String> {
    check_event(event)?;
    let id = event_id(event, about);
    let at = now();
    let payload = serde_json::to_string(&Envelope {
        id: &id,
        event,
        created_at: at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        data,
    })
    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let row = diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(&id),
            webhook_deliveries::event.eq(event),
            webhook_deliveries::url.eq(url),
            webhook_deliveries::payload.eq(&payload),
            webhook_deliveries::tenant_id.eq(tenant_id),
            webhook_deliveries::school_id.eq(school_id),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(at),
            webhook_deliveries::status.eq(DeliveryStatus::Pending),
            webhook_deliveries::created_at.eq(at),
        ))
        // A repeat of a stored event (another node produced it too) is dropped here.
        .on_conflict_do_nothing();
    crate::with_backend!(conn, |c| row.execute(c))?;
    Ok(id)
}

/// Claims up to `limit` due deliveries, oldest first, and leases them until
/// `at + lease`. Runs its own write transaction.
pub fn claim_due(
    conn: &mut DbConn,
    at: NaiveDateTime,
    limit: i64,
    lease: chrono::Duration,
) -> QueryResult<Vec<Claimed>> {
    conn.write_tx(|conn| {
        let claimed: Vec<Claimed> = match &mut *conn {
            // diesel's DSL has no SKIP LOCKED for the multi-backend connection.
            DbConn::Pg(pg) => diesel::sql_query(
                "SELECT id, event, payload, attempts FROM webhook_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind::<diesel::sql_types::Timestamp, _>(at)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(pg)?,
            // SQLite: `BEGIN IMMEDIATE` already keeps every other writer out.
            DbConn::Sqlite(_) => webhook_deliveries::table
                .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
                .filter(webhook_deliveries::next_attempt_at.le(at))
                .order((webhook_deliveries::created_at, webhook_deliveries::id))
                .limit(limit)
                .select((
                    webhook_deliveries::id,
                    webhook_deliveries::event,
                    webhook_deliveries::payload,
                    webhook_deliveries::attempts,
                ))
                .load(conn)?,
        };
        if !claimed.is_empty() {
            let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
                .set(webhook_deliveries::next_attempt_at.eq(at + lease))
                .execute(conn)?;
        }
        Ok(claimed)
    })
}

/// The result of one attempt, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// 2xx.
    Delivered,
    /// Failed; try again at this time.
    Retry(NaiveDateTime),
    /// Failed for the last time.
    Failed,
}

/// Records an attempt at delivery `id` made to `url`.
pub fn record(
    conn: &mut DbConn,
    id: &str,
    url: &str,
    http_status: Option<u16>,
    error: Option<&str>,
    result: &Recorded,
) -> QueryResult<()> {
    let at = now();
    let (state, next, delivered_at) = match result {
        Recorded::Delivered => (DeliveryStatus::Delivered, at, Some(at)),
        Recorded::Retry(next) => (DeliveryStatus::Pending, *next, None),
        Recorded::Failed => (DeliveryStatus::Failed, at, None),
    };
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::url.eq(url),
            webhook_deliveries::status.eq(state),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::last_status.eq(http_status.map(i32::from)),
            webhook_deliveries::last_error.eq(error),
            webhook_deliveries::delivered_at.eq(delivered_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Puts off pending deliveries until `until` (the receiver is failing): the claimed but
/// unsent `ids`, and every other delivery already due at `at`. Attempts are not
/// counted: these were not tried.
pub fn defer(
    conn: &mut DbConn,
    ids: &[String],
    at: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<usize> {
    conn.write_tx(|conn| {
        let pending = webhook_deliveries::status.eq(DeliveryStatus::Pending);
        let mut n = 0;
        if !ids.is_empty() {
            n += diesel::update(
                webhook_deliveries::table
                    .filter(pending)
                    .filter(webhook_deliveries::id.eq_any(ids)),
            )
            .set(webhook_deliveries::next_attempt_at.eq(until))
            .execute(conn)?;
        }
        n += diesel::update(
            webhook_deliveries::table
                .filter(pending)
                .filter(webhook_deliveries::next_attempt_at.le(at)),
        )
        .set(webhook_deliveries::next_attempt_at.eq(until))
        .execute(conn)?;
        Ok(n)
    })
}

/// When the next pending delivery is due (leased ones included).
pub fn next_due(conn: &mut DbConn) -> QueryResult<Option<NaiveDateTime>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
        .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
        .first(conn)
}

/// Deletes delivered and failed deliveries created before `before`.
pub fn prune(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending))
            .filter(webhook_deliveries::created_at.lt(before)),
    )
    .execute(conn)
}

/// The newest `limit` deliveries, newest first.
pub fn deliveries(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<Delivery>> {
    webhook_deliveries::table
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)
}

/// One delivery by id.
pub fn delivery(conn: &mut DbConn, id: &str) -> QueryResult<Option<Delivery>> {
    webhook_deliveries::table
        .find(id)
        .select(Delivery::as_select())
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DatabaseUrl, Db};

    fn db(dir: &tempfile::TempDir) -> Db {
        let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("t.db")), 2).unwrap();
        db.migrate().unwrap();
        db
    }

    #[test]
    fn events_are_claimed_oldest_first_and_leased() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        for n in 0..3 {
            insert(
                &mut conn,
                "http://x/",
                "t.e",
                &n.to_string(),
                None,
                None,
                serde_json::json!({"n": n}),
            )
            .unwrap();
        }
        let t = now();
        let lease = chrono::Duration::seconds(60);
        let first = claim_due(&mut conn, t, 2, lease).unwrap();
        let got: Vec<i64> = first
            .iter()
            .map(|c| {
                serde_json::from_str::<serde_json::Value>(&c.payload).unwrap()["data"]["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, vec![0, 1]);
        // Leased rows are not due again; the third is.
        let second = claim_due(&mut conn, t, 10, lease).unwrap();
        assert_eq!(second.len(), 1);
        assert!(claim_due(&mut conn, t, 10, lease).unwrap().is_empty());
        assert_eq!(next_due(&mut conn).unwrap(), Some(t + lease));
        // After the lease (a crashed sender) they come back, unchanged.
        assert_eq!(claim_due(&mut conn, t + lease, 10, lease).unwrap().len(), 3);
    }

    #[test]
    fn attempts_are_recorded_and_old_finished_rows_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        let a = insert(
            &mut conn,
            "http://x/",
            "t.a",
            "1",
            Some("ten"),
            None,
            serde_json::json!({}),
        )
        .unwrap();
        let b = insert(
            &mut conn,
            "http://x/",
            "t.b",
            "1",
            None,
            None,
            serde_json::json!({}),
        )
        .unwrap();
        let later = now() + chrono::Duration::seconds(30);
        record(
            &mut conn,
            &a,
            "http://y/",
            Some(500),
            Some("HTTP 500"),
            &Recorded::Retry(later),
        )
        .unwrap();
        record(
            &mut conn,
            &b,
            "http://y/",
            Some(204),
            None,
            &Recorded::Delivered,
        )
        .unwrap();
        let row = delivery(&mut conn, &a).unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.last_status, row.url.as_str()),
            (DeliveryStatus::Pending, 1, Some(500), "http://y/")
        );
        assert_eq!(row.next_attempt_at, later);
        assert_eq!(row.tenant_id.as_deref(), Some("ten"));
        let row = delivery(&mut conn, &b).unwrap().unwrap();
        assert_eq!(row.status, DeliveryStatus::Delivered);
        assert!(row.delivered_at.is_some());
        assert_eq!(
            prune(&mut conn, now() + chrono::Duration::seconds(1)).unwrap(),
            1
        );
        assert_eq!(deliveries(&mut conn, 10).unwrap().len(), 1);
    }

    #[test]
    fn the_same_event_about_the_same_thing_is_stored_once_under_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        let about = "request-1 2027-03-02T07:50:00+00:00";
        let a = insert(
            &mut conn,
            "http://x/",
            "lesson.ready",
            about,
            None,
            None,
            serde_json::json!({"node": "a"}),
        )
        .unwrap();
        let b = insert(
            &mut conn,
            "http://x/",
            "lesson.ready",
            about,
            None,
            None,
            serde_json::json!({"node": "b"}),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, event_id("lesson.ready", about));
        let other = insert(
            &mut conn,
            "http://x/",
            "lesson.ready",
            "request-1 another lesson",
            None,
            None,
            serde_json::json!({}),
        )
        .unwrap();
        assert_ne!(a, other);
        let rows = deliveries(&mut conn, 10).unwrap();
        assert_eq!(rows.len(), 2);
        let first = delivery(&mut conn, &a).unwrap().unwrap();
        assert!(
            first.payload.contains(r#""node":"a""#),
            "the first one stays"
        );
    }

    #[test]
    fn bad_event_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        for bad in ["", "a b", "ä", "x\r\nInjected: 1"] {
            assert!(
                insert(
                    &mut conn,
                    "http://x/",
                    bad,
                    "1",
                    None,
                    None,
                    serde_json::json!({})
                )
                .is_err(),
                "{bad:?}"
            );
        }
        assert!(deliveries(&mut conn, 10).unwrap().is_empty());
    }
}
