//! Webhook notifications: an event is stored with the change that causes it and
//! reaches the receiver signed; failures are retried, then given up; a change that is
//! rolled back sends nothing; events leave in the order they happened, and wait out a
//! restart.

use std::time::Duration;

use serde_json::{json, Value};
use tafel::db::DbError;
use tafel::notify::store::{self, DeliveryStatus};
use tafel::notify::Delivery;
use tafel::startup::Application;
use tafel::state::AppState;
use tafel_sim::webhook::{ReceivedWebhook, WebhookSim};

use crate::helpers::TestApp;

const WAIT: Duration = Duration::from_secs(15);

/// A receiver, and a server whose webhook points at it with quick retries.
async fn world(tweak: impl FnOnce(&mut tafel::config::WebhookSettings)) -> (TestApp, WebhookSim) {
    let sim = WebhookSim::start().unwrap();
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.webhooks.url = Some(url);
        s.webhooks.retry_delays_secs = vec![1];
        s.webhooks.max_attempts = 3;
        tweak(&mut s.webhooks);
    })
    .await;
    sim.set_secret(&secret_of(&app.state));
    (app, sim)
}

/// The generated secret, as the receiver's operator copies it from the server.
fn secret_of(state: &AppState) -> Vec<u8> {
    let path = state.settings.certs_dir.join("webhook.secret");
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .as_bytes()
        .to_vec()
}

/// Stores `events` in one write transaction, as product code does with its change,
/// and wakes the sender after the commit.
async fn commit(state: &AppState, events: &[(&str, Value)]) {
    let notifier = state.notifier.clone();
    let events: Vec<(String, Value)> = events
        .iter()
        .map(|(e, d)| ((*e).to_owned(), d.clone()))
        .collect();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| -> Result<(), DbError> {
                for (event, data) in events {
                    // Each event here is a change of its own.
                    let about = uuid::Uuid::new_v4().to_string();
                    notifier.enqueue(
                        conn,
                        &event,
                        &about,
                        Some("tenant-1"),
                        Some("school-1"),
                        data,
                    )?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    state.notifier.wake();
}

fn deliveries(state: &AppState) -> Vec<Delivery> {
    let mut conn = state.db.get().unwrap();
    let mut rows = store::deliveries(&mut conn, 100).unwrap();
    rows.reverse();
    rows
}

fn events(received: &[ReceivedWebhook]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.event().unwrap_or("").to_owned())
        .collect()
}

/// Waits until every delivery row is delivered.
async fn wait_for_all_delivered(app_state: &AppState) -> Vec<Delivery> {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let rows = deliveries(app_state);
        if !rows.is_empty() && rows.iter().all(|r| r.status == DeliveryStatus::Delivered) {
            return rows;
        }
        assert!(
            std::time::Instant::now() < end,
            "not all delivered: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the single delivery row reaches `state`.
async fn wait_for_status(app_state: &AppState, wanted: DeliveryStatus) -> Delivery {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let rows = deliveries(app_state);
        if rows.len() == 1 && rows[0].status == wanted {
            return rows[0].clone();
        }
        assert!(std::time::Instant::now() < end, "never {wanted}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_committed_event_reaches_the_receiver_signed() {
    let (app, sim) = world(|_| {}).await;
    let secret = app.state.settings.certs_dir.join("webhook.secret");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the generated secret is private");
    }

    let before = chrono::Utc::now().timestamp();
    commit(
        &app.state,
        &[(
            "lesson.created",
            json!({"lesson_id": "L1", "class": "7b", "apps": ["Keynote"]}),
        )],
    )
    .await;
    let got = sim.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let hook = &got[0];
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(hook.header("content-type"), Some("application/json"));
    assert_eq!(hook.event(), Some("lesson.created"));
    assert_eq!(hook.signature_valid, Some(true), "{:?}", hook.headers);
    let body = hook.json();
    assert_eq!(hook.delivery(), body["id"].as_str());
    assert_eq!(body["event"], "lesson.created");
    assert_eq!(body["data"]["class"], "7b");
    assert_eq!(body["data"]["apps"][0], "Keynote");
    assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());
    let ts: i64 = hook.header("x-tafel-timestamp").unwrap().parse().unwrap();
    assert!((before..=before + 10).contains(&ts), "{ts} vs {before}");
    // A receiver verifies with the documented scheme, and a tampered body fails.
    let sig = hook.header("x-tafel-signature").unwrap();
    assert!(
        sig.starts_with("sha256=")
            && sig[7..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    let key = secret_of(&app.state);
    let ts = hook.header("x-tafel-timestamp").unwrap();
    assert!(tafel::notify::verify_signature(&key, ts, &hook.body, sig));
    assert!(!tafel::notify::verify_signature(
        &key,
        ts,
        b"{\"data\":{}}",
        sig
    ));

    let row = wait_for_status(&app.state, DeliveryStatus::Delivered).await;
    assert_eq!(row.id, body["id"]);
    assert_eq!((row.attempts, row.last_status), (1, Some(200)));
    assert_eq!(row.tenant_id.as_deref(), Some("tenant-1"));
    assert_eq!(row.school_id.as_deref(), Some("school-1"));
    assert_eq!(row.url, sim.url);
    assert!(row.delivered_at.is_some());
}

#[actix_web::test]
async fn a_failed_delivery_is_retried_after_the_delay() {
    let (app, sim) = world(|_| {}).await;
    sim.fail_next(1, 500);
    commit(
        &app.state,
        &[("lesson.approved", json!({"lesson_id": "L1"}))],
    )
    .await;
    let got = sim.wait_for(2, WAIT).await;
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 200]
    );
    assert_eq!(
        got[0].delivery(),
        got[1].delivery(),
        "a retry is the same delivery"
    );
    assert_eq!(got[0].body, got[1].body, "with the same body");
    assert!(got.iter().all(|r| r.signature_valid == Some(true)));
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= chrono::Duration::milliseconds(900),
        "retried after {gap}"
    );
    let row = wait_for_status(&app.state, DeliveryStatus::Delivered).await;
    assert_eq!((row.attempts, row.last_status), (2, Some(200)));
}

#[actix_web::test]
async fn retry_after_is_honoured() {
    let (app, sim) = world(|w| w.retry_delays_secs = vec![0]).await;
    sim.fail_next_with_retry_after(1, 429, 2);
    commit(&app.state, &[("lesson.ready", json!({"lesson_id": "L1"}))]).await;
    let got = sim.wait_for(2, WAIT).await;
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= chrono::Duration::milliseconds(1900),
        "retried after {gap}"
    );
    wait_for_status(&app.state, DeliveryStatus::Delivered).await;
}

#[actix_web::test]
async fn a_delivery_is_given_up_after_max_attempts() {
    let (app, sim) = world(|w| w.retry_delays_secs = vec![0]).await;
    sim.fail_next(10, 503);
    commit(
        &app.state,
        &[("lesson.rejected", json!({"lesson_id": "L1"}))],
    )
    .await;
    let row = wait_for_status(&app.state, DeliveryStatus::Failed).await;
    assert_eq!((row.attempts, row.last_status), (3, Some(503)));
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("503"),
        "{:?}",
        row.last_error
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.received().len(), 3, "nothing after giving up");
}

#[actix_web::test]
async fn a_rolled_back_change_sends_nothing() {
    let (app, sim) = world(|_| {}).await;
    let notifier = app.state.notifier.clone();
    let result = app
        .state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| -> Result<(), DbError> {
                notifier.enqueue(
                    conn,
                    "lesson.created",
                    "L1",
                    None,
                    None,
                    json!({"lesson_id": "L1"}),
                )?;
                // The change itself fails after the event was stored.
                Err(DbError::Query(diesel::result::Error::RollbackTransaction))
            })
        })
        .await;
    assert!(result.is_err());
    app.state.notifier.wake();
    assert_eq!(app.count("webhook_deliveries"), 0);

    // A later change goes out alone: the sender ran and had nothing else to send.
    commit(
        &app.state,
        &[("lesson.approved", json!({"lesson_id": "L2"}))],
    )
    .await;
    let got = sim.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events(&sim.received()), vec!["lesson.approved"], "{got:?}");
    assert_eq!(app.count("webhook_deliveries"), 1);
}

#[actix_web::test]
async fn deliveries_leave_in_the_order_they_happened() {
    let (app, sim) = world(|_| {}).await;
    let first: Vec<(String, Value)> = (1..=5)
        .map(|n| (format!("lesson.e{n}"), json!({"n": n})))
        .collect();
    let first: Vec<(&str, Value)> = first.iter().map(|(e, d)| (e.as_str(), d.clone())).collect();
    commit(&app.state, &first).await;
    commit(
        &app.state,
        &[
            ("lesson.e6", json!({"n": 6})),
            ("lesson.e7", json!({"n": 7})),
        ],
    )
    .await;
    let got = sim.wait_for(7, WAIT).await;
    let names: Vec<String> = (1..=7).map(|n| format!("lesson.e{n}")).collect();
    assert_eq!(events(&got), names);
    // Delivery ids say what an event is about (so repeats can be dropped); the order of
    // creation is `created_at`'s.
    let times: Vec<String> = got
        .iter()
        .map(|r| r.json()["created_at"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted, "sent in the order of creation");
}

#[actix_web::test]
async fn when_the_receiver_is_down_later_events_wait_and_keep_their_order() {
    let (app, sim) = world(|_| {}).await;
    sim.fail_next(1, 503);
    commit(
        &app.state,
        &[
            ("lesson.created", json!({})),
            ("lesson.approved", json!({})),
            ("lesson.ready", json!({})),
        ],
    )
    .await;
    let got = sim.wait_for(4, WAIT).await;
    assert_eq!(
        events(&got),
        vec![
            "lesson.created",
            "lesson.created",
            "lesson.approved",
            "lesson.ready"
        ]
    );
    assert_eq!(got[0].status, 503);
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= chrono::Duration::milliseconds(900),
        "one request per retry delay: {gap}"
    );
    // The receiver has seen the last request; its row is recorded right after.
    let rows = wait_for_all_delivered(&app.state).await;
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    assert_eq!(attempts, vec![2, 1, 1], "waiting is not an attempt");
}

#[actix_web::test]
async fn without_a_url_nothing_is_stored() {
    let app = TestApp::spawn().await;
    assert!(!app.state.notifier.is_enabled());
    commit(&app.state, &[("lesson.created", json!({}))]).await;
    assert_eq!(app.count("webhook_deliveries"), 0);
    // Event names are still checked, so a bad one fails in tests without a webhook.
    let notifier = app.state.notifier.clone();
    let bad = app
        .state
        .db
        .run(move |conn| {
            notifier
                .enqueue(conn, "lesson created!", "x", None, None, json!({}))
                .map_err(DbError::from)
        })
        .await;
    assert!(bad.is_err());
    assert!(!app.state.settings.certs_dir.join("webhook.secret").exists());
}

/// Drops a test's PostgreSQL schema at the end.
struct DropSchema(Option<(String, String)>);

impl Drop for DropSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Some((base, name)) = &self.0 {
            if let Ok(mut c) = diesel::PgConnection::establish(base) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }
}

#[actix_web::test]
async fn a_pending_delivery_waits_out_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut settings, pg) = crate::helpers::test_settings(dir.path());
    let _schema = DropSchema(pg);
    // First run: the receiver is unreachable, so the event stays pending.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/hook", l.local_addr().unwrap().port())
    };
    settings.webhooks.url = Some(dead);
    settings.webhooks.retry_delays_secs = vec![3600];
    let first = Application::build_on(
        settings.clone(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await
    .unwrap();
    let (_, state1) = first.spawn();
    commit(&state1, &[("lesson.created", json!({"lesson_id": "L1"}))]).await;
    let end = std::time::Instant::now() + WAIT;
    let row = loop {
        let rows = deliveries(&state1);
        if rows.len() == 1 && rows[0].attempts == 1 {
            break rows[0].clone();
        }
        assert!(std::time::Instant::now() < end, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.status, DeliveryStatus::Pending);
    assert_eq!(row.last_status, None);
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("connect"),
        "{:?}",
        row.last_error
    );

    // The operator fixes the URL and restarts; an hour later the retry is due. The first
    // instance ends its sending as a stopped process does (otherwise it could claim the
    // due row for the dead URL before the second instance does).
    state1.notifier.stop().await;
    let sim = WebhookSim::start().unwrap();
    settings.webhooks.url = Some(sim.url.clone());
    {
        use diesel::prelude::*;
        use tafel::db::schema::webhook_deliveries as w;
        let mut conn = state1.db.get().unwrap();
        diesel::update(w::table)
            .set(w::next_attempt_at.eq(tafel::db::now()))
            .execute(&mut *conn)
            .unwrap();
    }
    let second = Application::build_on(
        settings,
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await
    .unwrap();
    let (_, state2) = second.spawn();
    sim.set_secret(&secret_of(&state2));
    let got = sim.wait_for(1, WAIT).await;
    assert_eq!(events(&got), vec!["lesson.created"]);
    assert_eq!(got[0].delivery(), Some(row.id.as_str()));
    assert_eq!(
        got[0].signature_valid,
        Some(true),
        "the secret file was kept"
    );
    let row = wait_for_status(&state2, DeliveryStatus::Delivered).await;
    assert_eq!((row.attempts, row.url.as_str()), (2, sim.url.as_str()));
}

#[actix_web::test]
async fn two_nodes_on_one_database_send_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut settings, pg) = crate::helpers::test_settings(dir.path());
    let _schema = DropSchema(pg);
    let sim = WebhookSim::start().unwrap();
    settings.webhooks.url = Some(sim.url.clone());
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let app = Application::build_on(
            settings.clone(),
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        )
        .await
        .unwrap();
        nodes.push(app.spawn().1);
    }
    let batch: Vec<(String, Value)> = (0..30)
        .map(|n| (format!("lesson.e{n}"), json!({"n": n})))
        .collect();
    let batch: Vec<(&str, Value)> = batch.iter().map(|(e, d)| (e.as_str(), d.clone())).collect();
    commit(&nodes[0], &batch[..15]).await;
    nodes[1].notifier.wake();
    commit(&nodes[1], &batch[15..]).await;
    nodes[0].notifier.wake();
    let got = sim.wait_for(30, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = sim
        .received()
        .iter()
        .map(|r| r.delivery().unwrap().to_owned())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((got.len(), ids.len(), sim.received().len()), (30, 30, 30));
}
