//! Device licences from Apps and Books against a local server that speaks the API:
//! a licence before every install, a shortage blocks the right devices and never
//! over-assigns, release after the grace period, resync repairs drift.

use chrono::{Duration, Utc};
use serde_json::json;
use tafel_sim::vpp::{token_file, VppSim};

use crate::assignments::{berlin, connect};
use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE: i64 = 361285480;

async fn pass(app: &TestApp, at: chrono::DateTime<Utc>) -> tafel::assign::reconcile::Report {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let sign = |p: &tafel::catalog::Profile| state.deliver_profile(p);
        tafel::assign::reconcile::run_with(&mut conn, at, None, &sign, state.licences.grace())
            .unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn licences_come_before_installs_run_short_in_lesson_order_and_are_released_after_the_grace_period(
) {
    let file = token_file("Stadt Norderstedt", Utc::now() + Duration::days(300));
    let sim = VppSim::start(&file).unwrap();
    sim.add_asset(&KEYNOTE.to_string(), 2);
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.vpp.base_url = url;
        s.vpp.grace_hours = 24;
    })
    .await;
    let (tenant, school_id) = school(&app, "lic").await;
    let (status, t) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": file}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert!(t.get("token_sealed").is_none());
    let (status, synced) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200, "{synced}");

    // Two classes: 7b's lesson is on Tuesday, 8a's on Wednesday; three iPads, two licences.
    let mut ipads = Vec::new();
    let mut classes = Vec::new();
    for (name, n) in [("7b", 1), ("8a", 2)] {
        let (_, c) = app
            .post(
                &format!("/api/v1/schools/{school_id}/classes"),
                json!({"name": name, "school_year": "2026/27"}),
            )
            .await;
        let cid = c["id"].as_str().unwrap().to_owned();
        let mut udids = Vec::new();
        for i in 0..n {
            let mut d = app.device(1100 + ipads.len() + i);
            d.store.insert(KEYNOTE, "com.apple.Keynote".into());
            d.authenticate().await.unwrap();
            d.token_update(false).await.unwrap();
            crate::helpers::answer_first_inventory(&mut d).await;
            app.place_device(d.udid.as_str(), &tenant, &school_id);
            udids.push(d.udid.to_string());
            ipads.push(d);
        }
        app.post(
            &format!("/api/v1/classes/{cid}/devices"),
            json!({"devices": udids}),
        )
        .await;
        classes.push(cid);
    }
    let (_, keynote) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE.to_string()})).await;
    assert_eq!(
        keynote["licensed"], true,
        "App Store apps need a licence by default"
    );
    let schedule = |day: &str| json!({"kind": "windows", "weekly": [{"weekday": day, "start": "08:00", "end": "09:30"}], "valid_from": "2027-03-01", "after": "remove"});
    let (s1, a1) = app.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": classes[1], "schedule": schedule("wed")})).await;
    let (s2, a2) = app.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": classes[0], "schedule": schedule("tue")})).await;
    assert_eq!((s1, s2), (201, 201), "{a1} {a2}");

    // Tuesday 07:00: only 7b needs Keynote; no install before the licence.
    let r = pass(&app, berlin(2027, 3, 2, 7, 0)).await;
    assert_eq!(r.installs, 0);
    assert_eq!(r.needed_licences.len(), 1);
    let (licensed, calls) = app
        .state
        .licences
        .after_pass(&r, berlin(2027, 3, 2, 7, 0))
        .await
        .unwrap();
    assert_eq!(licensed.len(), 1);
    assert!(calls >= 2, "associate and event status");
    assert_eq!(sim.assignments().len(), 1);
    let r = pass(&app, berlin(2027, 3, 2, 7, 1)).await;
    assert_eq!(r.installs, 1);
    let first = &mut ipads[0];
    let done = connect(first).await;
    assert_eq!(done, ["InstallApplication"]);
    let queue = app.queue_of(first.udid.as_str()).await;
    let install = queue
        .iter()
        .find(|e| e["request_type"] == "InstallApplication")
        .unwrap();
    assert_eq!(install["status"], "acknowledged");
    // Installed as a device-assigned licence: Options.PurchaseMethod = 1 (no Apple Account).
    {
        use diesel::prelude::*;
        use tafel::db::schema::commands;
        let mut conn = app.state.db.get().unwrap();
        let body: Vec<u8> = commands::table
            .filter(commands::request_type.eq("InstallApplication"))
            .select(commands::body)
            .first(&mut *conn)
            .unwrap();
        let cmd = tafel::protocol::Command::parse(&body).unwrap();
        let options = cmd
            .fields
            .get("Options")
            .and_then(|o| o.as_dictionary())
            .unwrap();
        assert_eq!(
            options
                .get("PurchaseMethod")
                .and_then(|p| p.as_signed_integer()),
            Some(1)
        );
        assert_eq!(
            cmd.fields
                .get("iTunesStoreID")
                .and_then(|p| p.as_signed_integer()),
            Some(KEYNOTE)
        );
    }

    // Tuesday after the association: Wednesday's lesson for 8a needs 2, 1 is free —
    // the warning comes before the lesson runs short.
    {
        let mut conn = app.state.db.get().unwrap();
        let short = tafel::licences::upcoming_shortfalls(
            &mut conn,
            None,
            berlin(2027, 3, 2, 8, 0),
            Duration::days(7),
        )
        .unwrap();
        assert_eq!(short.len(), 1, "{short:?}");
        assert_eq!((short[0].needed, short[0].available), (2, 1));
        assert_eq!(short[0].assignment_id, a1["id"].as_str().unwrap());
    }

    // Wednesday 07:00: 8a's two iPads need it, one licence is left: one is blocked, never over-assigned.
    let r = pass(&app, berlin(2027, 3, 3, 7, 0)).await;
    assert_eq!(r.needed_licences.len(), 2);
    let (licensed, _) = app
        .state
        .licences
        .after_pass(&r, berlin(2027, 3, 3, 7, 0))
        .await
        .unwrap();
    assert_eq!(licensed.len(), 1);
    assert_eq!(sim.assignments().len(), 2);
    assert_eq!(
        sim.counts(&KEYNOTE.to_string()),
        Some((2, 2)),
        "(assigned, total): never more than owned"
    );
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["blocked"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["blocked"][0]["reason"], "no licence");
    assert_eq!(view["items"][0]["missing"], 1);
    // The service desk's report names the iPad and the app; the school's admin sees it,
    // another authority's admin neither here nor in the licence view.
    let (_, school_admin) = crate::lessons::user(
        &app,
        json!({"name": "SA", "email": "sa@lic.de", "role": "school_admin", "school_id": school_id}),
    )
    .await;
    let (status, waiting) = app
        .send(
            reqwest::Method::GET,
            "/api/v1/reports/missing-licences",
            &school_admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(waiting["items"].as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(
        waiting["items"][0]["device"]["id"],
        view["blocked"][0]["device_id"]
    );
    assert_eq!(waiting["items"][0]["adam_id"], KEYNOTE.to_string());
    assert_eq!(waiting["items"][0]["reason"], "no licence");
    let (other, _) = school(&app, "lic-other").await;
    let (_, stranger) = crate::lessons::user(&app, json!({"name": "AA", "email": "aa@lic-other.de", "role": "authority_admin", "tenant_id": other})).await;
    let (_, theirs) = app
        .send(
            reqwest::Method::GET,
            "/api/v1/reports/missing-licences",
            &stranger,
            None,
        )
        .await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0, "{theirs}");
    let (_, their_view) = app
        .send(reqwest::Method::GET, "/api/v1/licences", &stranger, None)
        .await;
    assert_eq!(
        their_view["blocked"].as_array().unwrap().len(),
        0,
        "{their_view}"
    );

    // Wednesday's full pass marked 7b's licence (no 7b lesson within 24 h); its grace
    // period ends Thursday 07:00, so Thursday noon it is released. 8a's licence is
    // marked at Thursday noon and kept for its grace period.
    let thursday = berlin(2027, 3, 4, 12, 0);
    let r = pass(&app, thursday).await;
    app.state.licences.after_pass(&r, thursday).await.unwrap();
    assert_eq!(
        sim.assignments().len(),
        1,
        "7b's licence released after its grace period"
    );
    let r = pass(&app, thursday + Duration::hours(23)).await;
    app.state
        .licences
        .after_pass(&r, thursday + Duration::hours(23))
        .await
        .unwrap();
    assert_eq!(
        sim.assignments().len(),
        1,
        "8a's licence is still in its grace period"
    );
    let friday = thursday + Duration::hours(25);
    let r = pass(&app, friday).await;
    app.state.licences.after_pass(&r, friday).await.unwrap();
    assert!(sim.assignments().is_empty(), "{:?}", sim.assignments());
    assert_eq!(sim.counts(&KEYNOTE.to_string()), Some((0, 2)));
}

#[actix_web::test]
async fn a_resync_repairs_drift_and_bad_tokens_stop_only_themselves() {
    let file = token_file("Amt Trave-Land", Utc::now() + Duration::days(300));
    let sim = VppSim::start(&file).unwrap();
    sim.add_asset(&KEYNOTE.to_string(), 5);
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.vpp.base_url = url;
    })
    .await;
    let (tenant, _) = school(&app, "drift").await;
    let (status, _) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": file}),
        )
        .await;
    assert_eq!(status, 201);
    // Apple answers 429 with Retry-After once: the sync still completes.
    sim.fail_next(1, 429, Some(1));
    let (status, body) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["api_calls"].as_u64().unwrap() >= 4, "{body}");
    assert_eq!(app.count("vpp_assets"), 1);
    // A licence we believe in but Apple does not have: Apple is right.
    {
        use diesel::prelude::*;
        use tafel::db::schema::{vpp_licences, vpp_tokens};
        let mut conn = app.state.db.get().unwrap();
        let token_id: String = vpp_tokens::table
            .select(vpp_tokens::id)
            .first(&mut *conn)
            .unwrap();
        diesel::insert_into(vpp_licences::table)
            .values((
                vpp_licences::token_id.eq(token_id),
                vpp_licences::adam_id.eq(KEYNOTE.to_string()),
                vpp_licences::serial_number.eq("GHOST0001"),
                vpp_licences::updated_at.eq(tafel::db::now()),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    assert_eq!(app.count("vpp_licences"), 1);
    app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(app.count("vpp_licences"), 0, "drift repaired");
    // The token expires: it is marked, and nothing panics or loops.
    sim.expire_token();
    let (status, _) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200);
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/vpp-tokens"))
        .await;
    assert_eq!(tokens["items"][0]["status"], "failed", "{tokens}");
    assert!(tokens["items"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("expired"));
}
