//! Apps and Books as Apple really answers (issue 22, findings 10–12), against the local
//! server that speaks the API: a renewed token replaces its location's record, Apple's
//! "not enough licences" refreshes the counts and is not asked again for nothing, a
//! licence Apple takes back is associated again, Apple's service config sets the batch
//! sizes, the waiting list survives partial passes, and every message is in words.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tafel_sim::device::SimDevice;
use tafel_sim::vpp::{token_file, VppSim};

use crate::assignments::{berlin, connect};
use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE: i64 = 361285480;
const KEYNOTE_TEXT: &str = "361285480";

/// One reconcile pass at `at`, over every device or only `only`.
async fn pass(
    app: &TestApp,
    at: DateTime<Utc>,
    only: Option<Vec<String>>,
) -> tafel::assign::reconcile::Report {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let sign = |p: &tafel::catalog::Profile| state.deliver_profile(p);
        tafel::assign::reconcile::run_with(
            &mut conn,
            at,
            only.as_deref(),
            &sign,
            state.licences.grace(),
        )
        .unwrap()
    })
    .await
    .unwrap()
}

/// A pass and the licence step after it; the devices that got licences.
async fn pass_and_licences(
    app: &TestApp,
    at: DateTime<Utc>,
    only: Option<Vec<String>>,
) -> (tafel::assign::reconcile::Report, Vec<String>) {
    let r = pass(app, at, only).await;
    let (licensed, _) = app.state.licences.after_pass(&r, at).await.unwrap();
    (r, licensed)
}

/// A school authority with the simulator's token uploaded and synced.
async fn authority_with_token(
    sim_total: i64,
    prefix: &str,
) -> (VppSim, TestApp, String, String, String) {
    let file = token_file("Kreis Segeberg", Utc::now() + Duration::days(300));
    let sim = VppSim::start(&file).unwrap();
    sim.add_asset(&KEYNOTE.to_string(), sim_total);
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.vpp.base_url = url;
    })
    .await;
    let (tenant, school_id) = school(&app, prefix).await;
    let (status, t) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": file}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let (status, synced) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200, "{synced}");
    (sim, app, tenant, school_id, file)
}

/// A class of `n` enrolled iPads (serials known) and Keynote assigned to it, always.
async fn class_with_keynote(
    app: &TestApp,
    tenant: &str,
    school_id: &str,
    name: &str,
    first: usize,
    n: usize,
) -> Vec<SimDevice> {
    let (_, c) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": name, "school_year": "2026/27"}),
        )
        .await;
    let class_id = c["id"].as_str().unwrap().to_owned();
    let mut ipads = Vec::new();
    for i in 0..n {
        let mut d = app.device(first + i);
        d.store.insert(KEYNOTE, "com.apple.Keynote".into());
        d.authenticate().await.unwrap();
        d.token_update(false).await.unwrap();
        crate::helpers::answer_first_inventory(&mut d).await;
        app.place_device(d.udid.as_str(), tenant, school_id);
        ipads.push(d);
    }
    let udids: Vec<String> = ipads.iter().map(|d| d.udid.to_string()).collect();
    app.post(
        &format!("/api/v1/classes/{class_id}/devices"),
        json!({"devices": udids}),
    )
    .await;
    let (_, apps) = app.get("/api/v1/apps").await;
    let keynote = match apps["items"].as_array().and_then(|items| {
        items
            .iter()
            .find(|a| a["adam_id"].as_str() == Some(KEYNOTE_TEXT))
    }) {
        Some(found) => found["id"].clone(),
        None => {
            let (status, made) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE.to_string()})).await;
            assert_eq!(status, 201, "{made}");
            made["id"].clone()
        }
    };
    let (status, a) = app
        .post(
            "/api/v1/assignments",
            json!({"item_kind": "app", "item_id": keynote, "target_kind": "class", "target_id": class_id}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    ipads
}

fn device_id_of(app: &TestApp, d: &SimDevice) -> String {
    use diesel::prelude::*;
    use tafel::db::schema::devices;
    let mut conn = app.state.db.get().unwrap();
    devices::table
        .filter(devices::udid.eq(d.udid.as_str()))
        .select(devices::id)
        .first(&mut *conn)
        .unwrap()
}

/// No internal formatting in what people read.
fn in_words(text: &str) {
    for leak in ["Some(", "None", "NotAccessible", "retry after"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[actix_web::test]
async fn a_renewed_token_replaces_its_locations_record_and_another_authority_is_refused() {
    let (sim, app, tenant, _, _) = authority_with_token(5, "renew").await;
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/vpp-tokens"))
        .await;
    let first = tokens["items"][0].clone();

    // A year on, the content manager downloads the location's new token (Apple revokes
    // the old one) and uploads it: the record is replaced, not doubled.
    let renewed = token_file("Kreis Segeberg", Utc::now() + Duration::days(600));
    sim.renew_token(&renewed);
    let (status, t) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": renewed}),
        )
        .await;
    assert_eq!(status, 200, "a renewal: {t}");
    assert_eq!(t["id"], first["id"], "{t}");
    assert_ne!(t["expires_at"], first["expires_at"]);
    assert_eq!(t["status"], "active");
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/vpp-tokens"))
        .await;
    assert_eq!(tokens["items"].as_array().unwrap().len(), 1, "{tokens}");
    assert_eq!(tokens["items"][0]["expires_at"], t["expires_at"]);
    // Renewed twice more: still one location, each app listed once, and syncs work
    // with the newest token.
    let mut latest = String::new();
    for days in [700, 800] {
        let again = token_file("Kreis Segeberg", Utc::now() + Duration::days(days));
        sim.renew_token(&again);
        latest = again.clone();
        let (status, body) = app
            .post(
                &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
                json!({"token_file": again}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(app.count("vpp_tokens"), 1);
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["items"].as_array().unwrap().len(), 1, "{view}");
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/vpp-tokens"))
        .await;
    assert_eq!(tokens["items"][0]["status"], "active", "{tokens}");
    // The audit log keeps the history: old expiry → new expiry, three times.
    let (_, audit) = app.get("/api/v1/audit?action=renew").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    let history = audit.to_string();
    assert!(
        history.contains(&first["expires_at"].as_str().unwrap()[..10]),
        "the first expiry is in the history: {audit}"
    );

    // The same location uploaded for another authority: refused with the reason.
    let (other, _) = school(&app, "renew-other").await;
    let (status, refused) = app
        .post(
            &format!("/api/v1/tenants/{other}/vpp-tokens"),
            json!({"token_file": latest}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("another school authority"), "{message}");
    in_words(message);
    assert_eq!(app.count("vpp_tokens"), 1);

    // A second location (another uId) is a record of its own.
    let second = token_file("Kreis Segeberg", Utc::now() + Duration::days(320));
    sim.renew_token(&second);
    sim.set_location("2049025000999999", "Gymnasium Nord");
    let (status, body) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": second}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.count("vpp_tokens"), 2);
}

#[actix_web::test]
async fn a_location_stored_twice_before_tafel_knew_locations_is_one_again_after_a_sync() {
    let (sim, app, tenant, _, _) = authority_with_token(5, "twins").await;
    // The token as stored before tafel asked for its location's uId.
    {
        use diesel::prelude::*;
        use tafel::db::schema::vpp_tokens;
        let mut conn = app.state.db.get().unwrap();
        diesel::update(vpp_tokens::table)
            .set(vpp_tokens::u_id.eq(None::<String>))
            .execute(&mut *conn)
            .unwrap();
    }
    // Its renewal came as a second record then.
    let renewed = token_file("Kreis Segeberg", Utc::now() + Duration::days(600));
    sim.renew_token(&renewed);
    let (status, t) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/vpp-tokens"),
            json!({"token_file": renewed}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(app.count("vpp_tokens"), 2);
    // One sync: Apple refuses the old token (revoked), the new one names the location,
    // and the old record goes, with an audit entry.
    let (status, _) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200);
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/vpp-tokens"))
        .await;
    let items = tokens["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{tokens}");
    assert_eq!(items[0]["id"], t["id"]);
    assert_eq!(items[0]["status"], "active");
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["items"].as_array().unwrap().len(), 1, "{view}");
    let (_, audit) = app.get("/api/v1/audit?action=merge").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[actix_web::test]
async fn after_not_enough_licences_the_counts_are_read_again_and_the_same_call_is_not_repeated() {
    let (sim, app, tenant, school_id, _) = authority_with_token(2, "short").await;
    let keynote = KEYNOTE.to_string();
    // Two licences, but another MDM on the location uses both: tafel still believes
    // two are free.
    assert!(sim.assign_elsewhere(&keynote, "ELSEWHERE1"));
    assert!(sim.assign_elsewhere(&keynote, "ELSEWHERE2"));
    let ipads = class_with_keynote(&app, &tenant, &school_id, "5a", 2200, 1).await;
    let at = berlin(2027, 3, 2, 7, 0);

    let (r, licensed) = pass_and_licences(&app, at, None).await;
    assert_eq!(r.needed_licences.len(), 1);
    assert!(licensed.is_empty());
    assert_eq!(sim.requests("/mdm/v2/assets/associate"), 1);
    // "available" is right at once, not after the next full sync.
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["items"][0]["available"], 0, "{view}");
    assert_eq!(view["items"][0]["assigned"], 2, "{view}");
    assert_eq!(view["blocked"].as_array().unwrap().len(), 1, "{view}");
    let reason = view["blocked"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Apple has none free"), "{reason}");
    in_words(reason);

    // The next passes do not send the same failing association again.
    for minutes in [1, 2, 3] {
        pass_and_licences(&app, at + Duration::minutes(minutes), None).await;
    }
    assert_eq!(sim.requests("/mdm/v2/assets/associate"), 1);
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["blocked"].as_array().unwrap().len(), 1, "{view}");

    // More are bought; a sync shows it; now the iPad gets one.
    sim.add_asset(&keynote, 3);
    let (status, _) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200);
    let (_, licensed) = pass_and_licences(&app, at + Duration::minutes(10), None).await;
    assert_eq!(licensed, [device_id_of(&app, &ipads[0])]);
    assert_eq!(sim.requests("/mdm/v2/assets/associate"), 2);
    let (_, view) = app.get("/api/v1/licences").await;
    assert!(view["blocked"].as_array().unwrap().is_empty(), "{view}");
}

#[actix_web::test]
async fn a_licence_apple_takes_back_is_associated_again_while_the_app_is_wanted() {
    let (sim, app, tenant, school_id, _) = authority_with_token(5, "revoked").await;
    let keynote = KEYNOTE.to_string();
    let mut ipads = class_with_keynote(&app, &tenant, &school_id, "6b", 2300, 1).await;
    let at = berlin(2027, 3, 2, 7, 0);
    let (_, licensed) = pass_and_licences(&app, at, None).await;
    assert_eq!(licensed.len(), 1);
    let r = pass(&app, at + Duration::minutes(1), None).await;
    assert_eq!(r.installs, 1);
    assert_eq!(connect(&mut ipads[0]).await, ["InstallApplication"]);

    // Apple takes the licence back (another MDM on the location, a content manager);
    // the sync learns it. Keynote is still wanted on the iPad: it needs its licence.
    let serial = ipads[0].serial.clone();
    assert!(sim.revoke_licence(&keynote, &serial));
    let (status, _) = app.post("/api/v1/licences/sync", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(app.count("vpp_licences"), 0);
    let (r, licensed) = pass_and_licences(&app, at + Duration::minutes(5), None).await;
    assert_eq!(r.needed_licences.len(), 1, "needed again");
    assert_eq!(r.installs, 0, "the app is there already: no second install");
    assert_eq!(licensed.len(), 1);
    assert_eq!(sim.assignments(), [(keynote.clone(), serial.clone())]);
    assert_eq!(app.count("vpp_licences"), 1);

    // Taken back while none is free: the iPad is listed as waiting (needed 1, missing 1).
    sim.add_asset(&keynote, 1);
    assert!(sim.revoke_licence(&keynote, &serial));
    assert!(sim.assign_elsewhere(&keynote, "ELSEWHERE1"));
    app.post("/api/v1/licences/sync", json!({})).await;
    pass_and_licences(&app, at + Duration::minutes(10), None).await;
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["items"][0]["needed"], 1, "{view}");
    assert_eq!(view["items"][0]["missing"], 1, "{view}");
}

#[actix_web::test]
async fn apples_service_config_sets_the_batch_sizes_and_is_read_again() {
    let (sim, app, tenant, school_id, _) = authority_with_token(10, "limits").await;
    let keynote = KEYNOTE.to_string();
    // Apple lowers the serial numbers per request to 2 (the limits are dynamic).
    sim.set_limits(25, 2);
    let ipads = class_with_keynote(&app, &tenant, &school_id, "7c", 2400, 5).await;
    let at = berlin(2027, 3, 2, 7, 0);
    let config_reads = sim.requests("/mdm/v2/service/config");
    let (_, licensed) = pass_and_licences(&app, at, None).await;
    assert_eq!(licensed.len(), 5, "every iPad got its licence");
    assert!(sim.requests("/mdm/v2/service/config") > config_reads);
    let batches: Vec<usize> = sim
        .request_log()
        .iter()
        .filter(|r| r.path == "/mdm/v2/assets/associate")
        .map(|r| {
            r.body.as_ref().unwrap()["serialNumbers"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(batches, [2, 2, 1], "within Apple's limit of 2");

    // Apple raises it to 3; a day later tafel reads the config again and follows it.
    sim.set_limits(25, 3);
    for d in &ipads[..3] {
        assert!(sim.revoke_licence(&keynote, &d.serial));
    }
    app.post("/api/v1/licences/sync", json!({})).await;
    let (_, licensed) = pass_and_licences(&app, at + Duration::days(1), None).await;
    assert_eq!(licensed.len(), 3);
    let batches: Vec<usize> = sim
        .request_log()
        .iter()
        .filter(|r| r.path == "/mdm/v2/assets/associate")
        .map(|r| {
            r.body.as_ref().unwrap()["serialNumbers"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(batches, [2, 2, 1, 3]);
}

#[actix_web::test]
async fn the_waiting_list_keeps_the_ipads_a_partial_pass_did_not_look_at() {
    let (_sim, app, tenant, school_id, _) = authority_with_token(1, "waiting").await;
    let first = class_with_keynote(&app, &tenant, &school_id, "8a", 2500, 2).await;
    let at = berlin(2027, 3, 2, 7, 0);
    // Two iPads, one licence: one waits.
    let (_, licensed) = pass_and_licences(&app, at, None).await;
    assert_eq!(licensed.len(), 1);
    let waiting: Vec<String> = first
        .iter()
        .map(|d| device_id_of(&app, d))
        .filter(|id| !licensed.contains(id))
        .collect();
    assert_eq!(waiting.len(), 1);

    // Another class's iPad joins; a pass over only that iPad finds it waiting too.
    let later = class_with_keynote(&app, &tenant, &school_id, "8b", 2600, 1).await;
    let newcomer = device_id_of(&app, &later[0]);
    pass_and_licences(
        &app,
        at + Duration::minutes(1),
        Some(vec![newcomer.clone()]),
    )
    .await;
    let (_, view) = app.get("/api/v1/licences").await;
    let mut blocked: Vec<String> = view["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["device_id"].as_str().unwrap().to_owned())
        .collect();
    blocked.sort();
    let mut want = vec![waiting[0].clone(), newcomer.clone()];
    want.sort();
    assert_eq!(blocked, want, "both wait: {view}");
    assert_eq!(view["items"][0]["needed"], 2, "{view}");
    for b in view["blocked"].as_array().unwrap() {
        in_words(b["reason"].as_str().unwrap());
    }
    // A full pass knows every iPad: the same two.
    pass_and_licences(&app, at + Duration::minutes(2), None).await;
    let (_, view) = app.get("/api/v1/licences").await;
    assert_eq!(view["blocked"].as_array().unwrap().len(), 2, "{view}");
}
