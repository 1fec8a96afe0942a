//! A teacher's lesson request, from asking to the apps leaving the iPads again.

use serde_json::{json, Value};
use tafel_sim::device::SimDevice;
use tafel_sim::webhook::WebhookSim;

use crate::assignments::{berlin, connect, reconcile_at};
use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE_ID: i64 = 361285480;

struct School {
    app: TestApp,
    tenant: String,
    hooks: WebhookSim,
    class_id: String,
    teacher: String,
    other_class: String,
    school_admin: String,
    keynote: String,
    geogebra: String,
    ipads: Vec<SimDevice>,
}

pub(crate) async fn user(app: &TestApp, body: Value) -> (String, String) {
    let (status, u) = app.post("/api/v1/users", body).await;
    assert_eq!(status, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    let (_, t) = app
        .post(&format!("/api/v1/users/{id}/tokens"), json!({"name": "t"}))
        .await;
    (id, t["token"].as_str().unwrap().to_owned())
}

pub(crate) async fn as_user(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    app.send(method, path, token, body).await
}

/// A school with class 7b (Frau Meyer, `n` iPads), class 8a (another teacher), a
/// school admin, Keynote on the approved list and GeoGebra in the catalog.
async fn setup(n: usize) -> School {
    let hooks = WebhookSim::start().unwrap();
    let url = hooks.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.webhooks.url = Some(url);
        s.webhooks.retry_delays_secs = vec![1];
    })
    .await;
    let secret = std::fs::read(app.state.settings.certs_dir.join("webhook.secret")).unwrap();
    hooks.set_secret(String::from_utf8(secret).unwrap().trim().as_bytes());
    let (tenant, school_id) = school(&app, "lesson").await;
    let (teacher_id, teacher) = user(&app, json!({"name": "Frau Meyer", "email": "meyer@lesson.de", "role": "teacher", "school_id": school_id})).await;
    let (other_id, _) = user(&app, json!({"name": "Herr Kaya", "email": "kaya@lesson.de", "role": "teacher", "school_id": school_id})).await;
    let (_, school_admin) = user(&app, json!({"name": "SL", "email": "sl@lesson.de", "role": "school_admin", "school_id": school_id})).await;
    let (_, c) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [teacher_id]}),
        )
        .await;
    let (_, o) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "8a", "school_year": "2026/27", "teacher_ids": [other_id]}),
        )
        .await;
    let class_id = c["id"].as_str().unwrap().to_owned();
    let (_, k) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false})).await;
    let (_, g) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "GeoGebra", "bundle_id": "org.geogebra.GeoGebra", "adam_id": "687678494", "licensed": false})).await;
    let keynote = k["id"].as_str().unwrap().to_owned();
    let geogebra = g["id"].as_str().unwrap().to_owned();
    let periods = json!({"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}, "3": {"start": "09:55", "end": "10:40"}});
    let (status, s) = as_user(&app, &school_admin, "PUT", &format!("/api/v1/schools/{school_id}/lesson-settings"),
        Some(json!({"periods": periods, "min_notice_minutes": 30, "max_duration_minutes": 180, "lead_minutes": 60, "approved_app_ids": [keynote]}))).await;
    assert_eq!(status, 200, "{s}");
    let mut ipads = Vec::new();
    let mut udids = Vec::new();
    for i in 0..n {
        let mut d = app.device(1000 + i);
        d.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
        d.store.insert(687678494, "org.geogebra.GeoGebra".into());
        d.authenticate().await.unwrap();
        d.token_update(false).await.unwrap();
        app.place_device(d.udid.as_str(), &tenant, &school_id);
        connect(&mut d).await; // its first inventory
        udids.push(d.udid.to_string());
        ipads.push(d);
    }
    if !udids.is_empty() {
        let (status, _) = app
            .post(
                &format!("/api/v1/classes/{class_id}/devices"),
                json!({"devices": udids}),
            )
            .await;
        assert_eq!(status, 200);
    }
    School {
        app,
        tenant,
        hooks,
        class_id,
        teacher,
        other_class: o["id"].as_str().unwrap().to_owned(),
        school_admin,
        keynote,
        geogebra,
        ipads,
    }
}

#[actix_web::test]
async fn a_pre_approved_app_arrives_before_the_lesson_and_leaves_after_it() {
    let mut s = setup(30).await;
    // Tuesday 2 March 2027, 2nd–3rd period (08:50–10:40 Berlin).
    let (status, r) = as_user(&s.app, &s.teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2027-03-02", "periods": "2-3"}))).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "approved", "Keynote is on the approved list");
    assert_eq!(
        (r["start_time"].as_str(), r["end_time"].as_str()),
        (Some("08:50"), Some("10:40"))
    );
    let id = r["id"].as_str().unwrap().to_owned();

    let (_, ready) = as_user(
        &s.app,
        &s.teacher,
        "GET",
        &format!("/api/v1/lesson-requests/{id}/readiness"),
        None,
    )
    .await;
    assert_eq!(ready["summary"], "0 of 30 ready, 30 waiting");

    // An hour before the lesson the apps are queued; the iPads install them.
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 2, 7, 49))
            .await
            .installs,
        0
    );
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 2, 7, 50))
            .await
            .installs,
        30
    );
    // 28 iPads accept the install and download: installing, not ready.
    for d in &mut s.ipads[..28] {
        d.downloading.insert("com.apple.Keynote".into());
        assert_eq!(connect(d).await, ["InstallApplication"]);
    }
    let readiness = || async {
        as_user(
            &s.app,
            &s.teacher,
            "GET",
            &format!("/api/v1/lesson-requests/{id}/readiness"),
            None,
        )
        .await
        .1
    };
    let ready = readiness().await;
    assert_eq!(ready["summary"], "0 of 30 ready, 28 installing, 2 waiting");
    let count = |ready: &Value, state: &str| {
        ready["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == state)
            .count()
    };
    assert_eq!(
        (count(&ready, "installing"), count(&ready, "pending")),
        (28, 2)
    );
    // Three finish; asked how it goes, they say so.
    let udids: Vec<String> = s.ipads.iter().map(|d| d.udid.to_string()).collect();
    let udids: Vec<&str> = udids.iter().map(String::as_str).collect();
    for d in &mut s.ipads[..3] {
        d.downloading.clear();
    }
    s.app
        .enqueue(&udids[..28], "ManagedApplicationList", None)
        .await;
    for d in &mut s.ipads[..28] {
        assert_eq!(connect(d).await, ["ManagedApplicationList"]);
    }
    let ready = readiness().await;
    assert_eq!(ready["summary"], "3 of 30 ready, 25 installing, 2 waiting");
    assert_eq!(
        (ready["ready"].as_u64(), ready["installing"].as_u64()),
        (Some(3), Some(25))
    );
    for d in &mut s.ipads {
        d.downloading.clear();
    }
    for d in &mut s.ipads[28..] {
        connect(d).await;
    }
    s.app.enqueue(&udids, "ManagedApplicationList", None).await;
    for d in &mut s.ipads {
        connect(d).await;
    }
    assert_eq!(readiness().await["summary"], "30 of 30 ready");

    // Fifteen minutes before the lesson the teacher is told: ready.
    let state = s.app.state.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        tafel::lessons::readiness::notify_due(
            &mut conn,
            berlin(2027, 3, 2, 8, 35),
            chrono::Duration::minutes(15),
            &state.notifier,
            &[],
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(sent, 1);
    s.app.state.notifier.wake();
    let got = s
        .hooks
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    let events: Vec<&str> = got.iter().filter_map(|h| h.event()).collect();
    assert_eq!(
        events,
        [
            "lesson.request.created",
            "lesson.request.approved",
            "lesson.ready"
        ]
    );
    assert!(
        got.iter().all(|h| h.signature_valid == Some(true)),
        "HMAC-signed"
    );
    assert_eq!(got[2].json()["data"]["summary"], "30 of 30 ready");

    // After the lesson the apps are removed again.
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 2, 10, 40))
            .await
            .removals,
        30
    );
    for d in &mut s.ipads {
        assert_eq!(connect(d).await, ["RemoveApplication"]);
        assert!(!d.apps.contains("com.apple.Keynote"));
    }
}

#[actix_web::test]
async fn an_unlisted_app_waits_for_the_school_admin() {
    let mut s = setup(2).await;
    let (status, r) = as_user(&s.app, &s.teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.geogebra], "date": "2027-03-04", "start": "10:00", "end": "11:30", "note": "Funktionen zeichnen"}))).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "pending");
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 4, 9, 30))
            .await
            .installs,
        0,
        "nothing before approval"
    );
    // The teacher cannot approve; the school admin sees it in the queue and approves.
    let (status, _) = as_user(
        &s.app,
        &s.teacher,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, pending) = as_user(
        &s.app,
        &s.school_admin,
        "GET",
        "/api/v1/lesson-requests?status=pending",
        None,
    )
    .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    // The admin reads names, not only ids.
    let listed = &pending["items"][0];
    assert_eq!(listed["teacher_name"], "Frau Meyer", "{listed}");
    assert_eq!(listed["target_name"], "7b", "{listed}");
    assert_eq!(listed["apps"][0]["name"], "GeoGebra", "{listed}");
    assert_eq!(listed["app_ids"][0], s.geogebra.as_str(), "{listed}");
    let (status, body) = as_user(
        &s.app,
        &s.school_admin,
        "GET",
        "/api/v1/lesson-requests?status=waiting",
        None,
    )
    .await;
    assert_eq!((status, &body["field"]), (400, &json!("status")), "{body}");
    let (status, r) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("approved")));
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 4, 9, 30))
            .await
            .installs,
        2
    );
    for d in &mut s.ipads {
        assert_eq!(connect(d).await, ["InstallApplication"]);
        assert!(d.apps.contains("org.geogebra.GeoGebra"));
    }
    let got = s
        .hooks
        .wait_for(2, std::time::Duration::from_secs(10))
        .await;
    let events: Vec<&str> = got.iter().filter_map(|h| h.event()).collect();
    assert_eq!(
        events,
        ["lesson.request.created", "lesson.request.approved"]
    );
    // Every step is in the audit log.
    let (_, audit) = s.app.get(&format!("/api/v1/audit?object_id={id}")).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["approve", "create"]);
}

#[actix_web::test]
async fn a_rejected_request_installs_nothing() {
    let mut s = setup(1).await;
    let (_, r) = as_user(&s.app, &s.teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.geogebra, s.keynote], "date": "2027-03-04", "periods": "1"}))).await;
    assert_eq!(r["status"], "pending", "one unlisted app needs approval");
    let id = r["id"].as_str().unwrap().to_owned();
    let (status, _) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/reject"),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(status, 400, "a reason is required");
    let (status, r) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/reject"),
        Some(json!({"reason": "Bitte Schullizenz abwarten"})),
    )
    .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("rejected")));
    let (status, _) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 409, "decided once");
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 4, 7, 30))
            .await
            .commands,
        0
    );
    assert!(connect(&mut s.ipads[0]).await.is_empty());
    let got = s
        .hooks
        .wait_for(2, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(got[1].event(), Some("lesson.request.rejected"));
    assert_eq!(
        got[1].json()["data"]["reason"],
        "Bitte Schullizenz abwarten"
    );
}

#[actix_web::test]
async fn teachers_stay_within_their_classes_and_requests_follow_the_rules() {
    let s = setup(0).await;
    let post = |body: Value| {
        as_user(
            &s.app,
            &s.teacher,
            "POST",
            "/api/v1/lesson-requests",
            Some(body),
        )
    };
    // Another teacher's class: 403.
    let (status, _) = post(json!({"target_kind": "class", "target_id": s.other_class, "app_ids": [s.keynote], "date": "2027-03-04", "periods": "1"})).await;
    assert_eq!(status, 403);
    // Another school: 404 (the other school's data is invisible).
    let (_, other_school) = school(&s.app, "elsewhere").await;
    let (_, c) = s
        .app
        .post(
            &format!("/api/v1/schools/{other_school}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    let (status, _) = post(json!({"target_kind": "class", "target_id": c["id"], "app_ids": [s.keynote], "date": "2027-03-04", "periods": "1"})).await;
    assert_eq!(status, 404);
    let (status, _) = as_user(
        &s.app,
        &s.teacher,
        "GET",
        &format!("/api/v1/schools/{other_school}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Rules: notice, duration, periods, dates.
    let before = s.app.count("lesson_requests");
    for (body, field) in [
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2020-01-07", "periods": "1"}),
            "start",
        ),
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2027-03-04", "start": "08:00", "end": "13:00"}),
            "end",
        ),
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2027-03-04", "periods": "7"}),
            "periods",
        ),
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "04.03.2027", "periods": "1"}),
            "date",
        ),
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [], "date": "2027-03-04", "periods": "1"}),
            "app_ids",
        ),
        (
            json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2027-03-04", "periods": "1", "repeat_until": "2027-03-01"}),
            "repeat_until",
        ),
    ] {
        let (status, reply) = post(body).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["field"], field, "{reply}");
    }
    assert_eq!(s.app.count("lesson_requests"), before);
    // Weekly requests work and show up in the teacher's list only.
    let (status, r) = post(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.keynote], "date": "2027-03-02", "periods": "2-3", "repeat_until": "2027-06-29", "remove_after": false})).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["after_lesson"], "keep");
    let (_, mine) = as_user(&s.app, &s.teacher, "GET", "/api/v1/lesson-requests", None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_missing_licence_is_said_when_asked_for_and_in_readiness() {
    let s = setup(3).await;
    let (status, pages) = s.app.post("/api/v1/apps", json!({"tenant_id": s.tenant, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726", "licensed": true})).await;
    assert_eq!(status, 201, "{pages}");
    // No content token, so no licence for any iPad: the teacher is told at once.
    let (status, r) = as_user(&s.app, &s.teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [pages["id"], s.keynote], "date": "2027-03-02", "periods": "2-3"}))).await;
    assert_eq!(status, 201, "{r}");
    let shortfalls = r["licence_shortfalls"].as_array().unwrap();
    assert_eq!(shortfalls.len(), 1, "Keynote needs none: {r}");
    assert_eq!(shortfalls[0]["app_id"], pages["id"]);
    assert_eq!(shortfalls[0]["without_licence"], 3);
    assert_eq!(
        shortfalls[0]["message"],
        "Pages: no licence for 3 of 3 iPads (0 free)"
    );
    let id = r["id"].as_str().unwrap().to_owned();
    // The school admin approves it anyway (a licence may be bought in time).
    let (status, approved) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!("/api/v1/lesson-requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["licence_shortfalls"][0]["without_licence"], 3);

    let (_, ready) = as_user(
        &s.app,
        &s.teacher,
        "GET",
        &format!("/api/v1/lesson-requests/{id}/readiness"),
        None,
    )
    .await;
    assert_eq!(
        ready["summary"], "0 of 3 ready, no licence for 3 of 3",
        "{ready}"
    );
    assert_eq!(
        ready["items"][0]["apps"]["app:com.apple.Pages"], "no licence",
        "{ready}"
    );
    assert_eq!(
        ready["items"][0]["apps"]["app:com.apple.Keynote"], "scheduled",
        "{ready}"
    );

    // The device view names the reason, not "scheduled".
    let (_, view) = s
        .app
        .get(&format!("/api/v1/devices/{}/state", s.ipads[0].udid))
        .await;
    let item = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == "app:com.apple.Pages")
        .unwrap_or_else(|| panic!("{view}"))
        .clone();
    assert_eq!(item["state"], "no licence", "{view}");
    assert!(
        item["reason"].as_str().unwrap().contains("no licence"),
        "{view}"
    );
}

#[actix_web::test]
async fn a_deleted_app_leaves_the_approved_list_and_is_not_installed_by_a_later_approval() {
    let s = setup(1).await;
    // Frau Meyer asks for GeoGebra (not on the list: waits for the school admin).
    let (status, r) = as_user(&s.app, &s.teacher, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": s.class_id, "app_ids": [s.geogebra, s.keynote], "date": "2027-03-02", "periods": "2-3"}))).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "pending");
    // The district deletes both apps from the catalog.
    for id in [&s.geogebra, &s.keynote] {
        assert_eq!(s.app.delete(&format!("/api/v1/apps/{id}")).await.0, 200);
    }
    // Keynote is off the school's approved list, which can be saved again as it reads.
    let (_, request) = s
        .app
        .get(&format!(
            "/api/v1/lesson-requests/{}",
            r["id"].as_str().unwrap()
        ))
        .await;
    let school = request["school_id"].as_str().unwrap().to_owned();
    let url = format!("/api/v1/schools/{school}/lesson-settings");
    let (_, settings) = as_user(&s.app, &s.school_admin, "GET", &url, None).await;
    assert_eq!(settings["approved_app_ids"], json!([]), "{settings}");
    let (status, saved) = as_user(&s.app, &s.school_admin, "PUT", &url, Some(settings)).await;
    assert_eq!(status, 200, "{saved}");
    // Approved anyway: nothing deleted is assigned, so nothing reaches the iPad.
    let before = s.app.count("assignments");
    let (status, approved) = as_user(
        &s.app,
        &s.school_admin,
        "POST",
        &format!(
            "/api/v1/lesson-requests/{}/approve",
            r["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(s.app.count("assignments"), before);
    assert_eq!(
        reconcile_at(&s.app, berlin(2027, 3, 2, 8, 0))
            .await
            .installs,
        0
    );
}
