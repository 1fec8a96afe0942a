//! Several nodes on one database (issue #20): each periodic job runs once per tick
//! across the nodes, each event is stored once with one delivery id, the nodes sign
//! webhooks with one secret, and a node without the first node's files refuses to start.
//!
//! The two-node figures: `cargo test -p tafel --test api nodes -- --nocapture` (and with
//! `TAFEL_TEST_POSTGRES_URL` set, on PostgreSQL) prints them.

use diesel::prelude::*;
use serde_json::json;
use tafel::db::schema::{
    command_queue, commands, device_inventory, devices, lesson_requests, webhook_deliveries,
};
use tafel_sim::webhook::WebhookSim;

use crate::assignments::{berlin, connect};
use crate::enrollment::school;
use crate::helpers::{copy_dir, TestApp};
use crate::lessons::{as_user, user};

const KEYNOTE_ID: i64 = 361285480;
const IPADS: usize = 10;
const INVENTORY: [&str; 4] = [
    "DeviceInformation",
    "InstalledApplicationList",
    "ProfileList",
    "SecurityInfo",
];

fn secret_file(app: &TestApp) -> Vec<u8> {
    std::fs::read(app.state.settings.certs_dir.join("webhook.secret")).unwrap()
}

/// One housekeeping tick of `app` (what its hourly timer runs).
async fn housekeeping(app: &TestApp) -> tafel::assign::service::Housekeeping {
    tafel::assign::service::housekeeping(
        &app.state.db,
        &app.state.push,
        chrono::Duration::hours(app.state.settings.inventory.refresh_hours),
        chrono::Duration::days(app.state.settings.inventory.retention_days),
    )
    .await
}

/// One tick of `app`'s lesson watcher, as if it were `at`.
async fn notice_tick(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> Option<usize> {
    tafel::lessons::readiness::notice_tick(
        &app.state.db,
        &app.state.notifier,
        &app.state.licences,
        at,
        app.state.settings.webhooks_lesson_notice_minutes(),
    )
    .await
}

#[actix_web::test]
async fn two_nodes_started_at_once_run_each_job_once_per_tick_and_sign_with_one_secret() {
    let hooks = WebhookSim::start().unwrap();
    let url = hooks.url.clone();
    let nodes = TestApp::spawn_nodes(2, |s| {
        // The test runs the jobs' ticks itself, on both nodes at once.
        s.reconcile.automatic = false;
        s.webhooks.url = Some(url.clone());
        s.webhooks.retry_delays_secs = vec![1];
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);

    // The operator gives the receiver node A's secret; node A stops sending, so every
    // webhook below is signed by node B.
    assert_eq!(secret_file(a), secret_file(b), "one secret for both nodes");
    hooks.set_secret(String::from_utf8(secret_file(a)).unwrap().trim().as_bytes());
    a.state.notifier.stop().await;

    // Class 7b with ten iPads that enrolled through node A and answered their first
    // inventory; Keynote needs no approval.
    let (tenant, school_id) = school(a, "nodes").await;
    let (teacher_id, teacher) = user(a, json!({"name": "Frau Meyer", "email": "meyer@nodes.de", "role": "teacher", "school_id": school_id})).await;
    let (status, class) = a
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [teacher_id]}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let class_id = class["id"].as_str().unwrap().to_owned();
    let (_, keynote) = a.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false})).await;
    let periods = json!({"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}, "3": {"start": "09:55", "end": "10:40"}});
    let (status, s) = a
        .put(
            &format!("/api/v1/schools/{school_id}/lesson-settings"),
            json!({"periods": periods, "min_notice_minutes": 30, "max_duration_minutes": 180, "lead_minutes": 60, "approved_app_ids": [keynote["id"]]}),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let mut ipads = Vec::new();
    for i in 0..IPADS {
        let mut d = a.device(4000 + i);
        d.authenticate().await.unwrap();
        d.token_update(false).await.unwrap();
        a.place_device(d.udid.as_str(), &tenant, &school_id);
        connect(&mut d).await;
        ipads.push(d);
    }
    let udids: Vec<String> = ipads.iter().map(|d| d.udid.to_string()).collect();
    let (status, _) = a
        .post(
            &format!("/api/v1/classes/{class_id}/devices"),
            json!({"devices": udids}),
        )
        .await;
    assert_eq!(status, 200);

    // A day passes: every inventory is stale. Both nodes' hourly housekeeping fires at
    // once; one of them asks the iPads, and a tick of the other a moment later finds
    // the hour's run done.
    {
        let mut conn = a.state.db.get().unwrap();
        diesel::update(device_inventory::table)
            .set(device_inventory::updated_at.eq(tafel::db::now() - chrono::Duration::days(2)))
            .execute(&mut *conn)
            .unwrap();
    }
    let (ha, hb) = tokio::join!(housekeeping(a), housekeeping(b));
    let refreshes: Vec<usize> = [&ha, &hb]
        .iter()
        .filter_map(|h| h.refreshed.as_ref().map(Vec::len))
        .collect();
    assert_eq!(refreshes, [IPADS], "one node refreshed, the other did not");
    assert_eq!(
        [ha.pruned, hb.pruned].iter().filter(|p| **p).count(),
        1,
        "one node pruned"
    );
    let later = housekeeping(b).await;
    assert!(later.refreshed.is_none() && !later.pruned, "{later:?}");
    let inventory_per_device: Vec<i64> = {
        let mut conn = a.state.db.get().unwrap();
        let mut counts = Vec::new();
        for udid in &udids {
            let device = devices::table
                .filter(devices::udid.eq(udid))
                .select(devices::id);
            counts.push(
                command_queue::table
                    .inner_join(commands::table)
                    .filter(command_queue::device_id.eq_any(device))
                    .filter(commands::action.eq(tafel::queue::Action::Inventory))
                    .filter(command_queue::status.eq_any(tafel::queue::QueueState::OPEN))
                    .count()
                    .get_result::<i64>(&mut *conn)
                    .unwrap(),
            );
        }
        counts
    };
    assert_eq!(inventory_per_device, vec![4; IPADS]);
    for d in &mut ipads {
        let mut got = connect(d).await;
        got.sort();
        assert_eq!(got, INVENTORY, "each inventory command once");
    }

    // Frau Meyer asks for Keynote on Tuesday, 2nd–3rd period. Fifteen minutes before the
    // lesson both nodes' watchers look at once: one notice; the next tick of either
    // sends nothing.
    let (status, r) = as_user(a, &teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": class_id, "app_ids": [keynote["id"]], "date": "2027-03-02", "periods": "2-3"}))).await;
    assert_eq!(status, 201, "{r}");
    let request_id = r["id"].as_str().unwrap().to_owned();
    let at = berlin(2027, 3, 2, 8, 35);
    let (na, nb) = tokio::join!(notice_tick(a, at), notice_tick(b, at));
    let mut ticks = [na, nb];
    ticks.sort();
    assert_eq!(ticks, [None, Some(1)], "one node sent the notice");
    assert_eq!(notice_tick(b, at).await, None, "once per minute");

    // A node that looked before the other marked the lesson notified produces the same
    // notice again: it has the same delivery id and is not stored twice.
    let notices = |app: &TestApp| {
        let mut conn = app.state.db.get().unwrap();
        webhook_deliveries::table
            .filter(webhook_deliveries::event.eq_any(["lesson.ready", "lesson.not_ready"]))
            .select(webhook_deliveries::id)
            .load::<String>(&mut *conn)
            .unwrap()
    };
    let first = notices(b);
    assert_eq!(first.len(), 1);
    {
        let state = b.state.clone();
        let again = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            diesel::update(lesson_requests::table)
                .set(lesson_requests::notified_start.eq(None::<chrono::NaiveDateTime>))
                .execute(&mut *conn)
                .unwrap();
            tafel::lessons::readiness::notify_due(
                &mut conn,
                at,
                chrono::Duration::minutes(15),
                &state.notifier,
                &[],
            )
            .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(again, 1, "produced again");
    }
    assert_eq!(notices(b), first, "stored once, one delivery id");

    // Node B delivers everything, signed with the secret the receiver has from node A.
    // Its sender would find events another node stored at its next idle poll (30 s);
    // woken, it looks now.
    b.state.notifier.wake();
    let got = hooks.wait_for(3, std::time::Duration::from_secs(20)).await;
    let events: Vec<&str> = got.iter().filter_map(|h| h.event()).collect();
    assert_eq!(
        events,
        [
            "lesson.request.created",
            "lesson.request.approved",
            "lesson.not_ready"
        ]
    );
    assert!(
        got.iter().all(|h| h.signature_valid == Some(true)),
        "node B signs with node A's secret"
    );
    assert_eq!(got[2].json()["data"]["request_id"], request_id.as_str());

    let backend = format!("{:?}", a.state.db.backend());
    eprintln!(
        "two nodes on {backend}: inventory refreshes {} (of 2 ticks at once, then 1 more), inventory commands per iPad {:?}, readiness notices for the lesson {} (of 2 ticks at once, then 1 more, then 1 repeat)",
        refreshes.len(),
        inventory_per_device,
        first.len()
    );
}

#[actix_web::test]
async fn a_node_without_the_first_nodes_files_refuses_to_start_and_names_them() {
    let nodes = TestApp::spawn_nodes(1, |_| {}).await;
    let first = &nodes[0];
    let start = |certs: std::path::PathBuf| {
        let mut settings = (*first.state.settings).clone();
        settings.certs_dir = certs;
        async move {
            tafel::startup::Application::build_on(
                settings,
                std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            )
            .await
        }
    };

    // A new node whose certificates were copied but whose secrets.key was made anew.
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("other-key");
    copy_dir(&first.state.settings.certs_dir, &certs);
    std::fs::remove_file(certs.join("secrets.key")).unwrap();
    tafel::secrets::SecretBox::create_if_missing(&certs.join("secrets.key")).unwrap();
    let err = start(certs.clone())
        .await
        .err()
        .expect("refused: another secrets.key");
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!(
            "{} does not open the secrets stored in the database",
            certs.join("secrets.key").display()
        )) && message.contains("Copy secrets.key from a node that runs"),
        "{message}"
    );

    // A new node that made its own CA (only secrets.key was copied).
    let certs = dir.path().join("other-ca");
    tafel::pki::store::init(&certs, &first.state.settings.hosts, false).unwrap();
    std::fs::remove_file(certs.join("secrets.key")).unwrap();
    std::fs::copy(
        first.state.settings.certs_dir.join("secrets.key"),
        certs.join("secrets.key"),
    )
    .unwrap();
    let err = start(certs.clone())
        .await
        .err()
        .expect("refused: another CA");
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!(
            "{} is not the root CA this database's devices trust",
            certs.join("root.pem").display()
        )) && message.contains("copy root.pem, ca.pem, ca.key"),
        "{message}"
    );

    // With the first node's files it starts.
    let certs = dir.path().join("copied");
    copy_dir(&first.state.settings.certs_dir, &certs);
    assert!(start(certs).await.is_ok());

    // A new root on purpose (`tafel init --force` forgets the recorded one): it starts.
    let mut conn = first.state.db.get().unwrap();
    assert!(tafel::cluster::forget_root_ca(&mut conn).unwrap());
    drop(conn);
    assert!(start(dir.path().join("other-ca")).await.is_ok());
}
