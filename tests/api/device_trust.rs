//! Device trust, tried as an attacker and a real fleet would: every command reaches
//! each iPad exactly once under NotNow, no body can crash tafel, an answer and the
//! inventory it carries land together.

use std::collections::{BTreeMap, BTreeSet};

use tafel::sim::device::{Answer, SimDevice};

use crate::helpers::TestApp;

/// An enrolled, active iPad.
pub async fn enrolled(app: &TestApp, n: usize) -> SimDevice {
    let ipad = app.device(n);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    ipad
}

/// Deterministic "20 %": does the device answer NotNow to this command in this round?
fn defers(udid: &str, command: &str, round: usize) -> bool {
    let digest = openssl::sha::sha256(format!("{udid}/{command}/{round}").as_bytes());
    digest[0].is_multiple_of(5)
}

#[actix_web::test]
async fn every_command_reaches_each_ipad_exactly_once_under_not_now() {
    let app = TestApp::spawn().await;
    let mut ipads = Vec::new();
    for n in 0..20 {
        ipads.push(enrolled(&app, 3000 + n).await);
    }
    let udids: Vec<String> = ipads.iter().map(|d| d.udid.to_string()).collect();
    let refs: Vec<&str> = udids.iter().map(String::as_str).collect();
    let mut commands = Vec::new();
    for i in 0..13 {
        let kind = ["DeviceInformation", "ProfileList", "SecurityInfo"][i % 3];
        commands.push(app.enqueue(&refs, kind, None).await);
    }

    // (device, command) → how often it was answered other than NotNow.
    let mut answered: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut sequences_ending_with_older_deferrals = 0;
    let mut not_now_answers = 0;
    let rounds_with_not_now = 4;
    for round in 0..=rounds_with_not_now {
        let last = round == rounds_with_not_now;
        for ipad in &mut ipads {
            let udid = ipad.udid.to_string();
            let mut offered_here = BTreeSet::new();
            let mut deferred_here = BTreeSet::new();
            let mut next = ipad.idle().await.unwrap();
            while let Some(cmd) = next {
                let uuid = cmd.command_uuid.to_string();
                assert!(
                    offered_here.insert(uuid.clone()),
                    "{uuid} offered twice in one sequence"
                );
                if !last && defers(&udid, &uuid, round) {
                    not_now_answers += 1;
                    deferred_here.insert(uuid);
                    next = ipad.answer(&cmd, Answer::NotNow).await.unwrap();
                } else {
                    *answered.entry((udid.clone(), uuid)).or_default() += 1;
                    let answer = ipad.execute(&cmd);
                    next = ipad.answer(&cmd, answer).await.unwrap();
                }
            }
            // The sequence ended: what is still open was deferred in this very sequence.
            let open: BTreeSet<String> = app
                .queue_of(&udid)
                .await
                .into_iter()
                .filter(|e| ["pending", "sent", "not_now"].contains(&e["status"].as_str().unwrap()))
                .map(|e| e["command_uuid"].as_str().unwrap().to_owned())
                .collect();
            if open != deferred_here {
                sequences_ending_with_older_deferrals += 1;
            }
        }
    }
    println!(
        "NotNow: 20 iPads x 13 commands, {rounds_with_not_now} rounds with 20 % NotNow ({not_now_answers} NotNow answers) + 1 without; \
         answered {} (exactly once: {}), sequences ending with older deferrals waiting: {sequences_ending_with_older_deferrals}",
        answered.values().sum::<usize>(),
        answered.values().all(|n| *n == 1)
    );
    assert!(
        not_now_answers > 20,
        "the rounds deferred {not_now_answers}"
    );
    assert_eq!(sequences_ending_with_older_deferrals, 0);
    for udid in &udids {
        for c in &commands {
            assert_eq!(
                answered.get(&(udid.clone(), c.clone())),
                Some(&1),
                "{c} on {udid}"
            );
            assert_eq!(app.status_of(udid, c).await, "acknowledged");
        }
    }
}

/// A profile and an app for the whole school, always.
async fn school_with_wifi_and_keynote(app: &TestApp, slug: &str) -> (String, String) {
    use serde_json::json;
    let (tenant, school_id) = crate::enrollment::school(app, slug).await;
    let (status, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    assert_eq!(status, 201, "{keynote}");
    let (status, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school_id, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang", "school_slug": slug}}))
        .await;
    assert_eq!(status, 201, "{wifi}");
    for (kind, item) in [("app", &keynote), ("profile", &wifi)] {
        let (status, a) = app
            .post("/api/v1/assignments", json!({"item_kind": kind, "item_id": item["id"], "target_kind": "school", "target_id": school_id}))
            .await;
        assert_eq!(status, 201, "{a}");
    }
    (tenant, school_id)
}

const KEYNOTE_ID: i64 = 361285480;

#[actix_web::test]
async fn inventory_answers_during_reconciler_passes_never_bring_an_install_twice() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::assignments::{connect, reconcile_at};

    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school_with_wifi_and_keynote(&app, "race").await;
    let mut ipads = Vec::new();
    for n in 0..40 {
        let mut ipad = enrolled(&app, 3100 + n).await;
        ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
        app.place_device(ipad.udid.as_str(), &tenant, &school_id);
        ipads.push(ipad);
    }
    let r = reconcile_at(&app, chrono::Utc::now()).await;
    assert_eq!(r.installs, 80);
    for ipad in &mut ipads {
        let mut done = connect(ipad).await;
        done.sort();
        assert_eq!(done, ["InstallApplication", "InstallProfile"]);
    }

    // Reconciler passes, one after the other as the service runs them, while every
    // iPad answers inventory questions.
    let stop = Arc::new(AtomicBool::new(false));
    let passes = Arc::new(AtomicUsize::new(0));
    let reconciler = {
        let (state, stop, passes) = (app.state.clone(), stop.clone(), passes.clone());
        tokio::task::spawn_blocking(move || {
            let sign = |b: &[u8]| state.signer.sign(b, &state.ca).map_err(|e| e.to_string());
            let mut installs = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut conn = state.db.get().unwrap();
                let r = tafel::assign::reconcile::run(&mut conn, chrono::Utc::now(), None, &sign)
                    .unwrap();
                installs += r.installs;
                passes.fetch_add(1, Ordering::Relaxed);
            }
            installs
        })
    };
    let udids: Vec<String> = ipads.iter().map(|d| d.udid.to_string()).collect();
    let refs: Vec<&str> = udids.iter().map(String::as_str).collect();
    let mut repeated = 0;
    let rounds = 12;
    for _ in 0..rounds {
        app.enqueue(&refs, "InstalledApplicationList", None).await;
        app.enqueue(&refs, "ProfileList", None).await;
        let done = futures_util::future::join_all(ipads.iter_mut().map(connect)).await;
        repeated += done
            .iter()
            .flatten()
            .filter(|c| c.starts_with("Install") && !c.ends_with("List"))
            .count();
    }
    stop.store(true, Ordering::Relaxed);
    let queued_again = reconciler.await.unwrap();
    for ipad in &mut ipads {
        repeated += connect(ipad).await.len();
    }
    println!(
        "repeated installs: {repeated} ({queued_again} queued) over {rounds} rounds x 40 iPads x 2 inventory answers, {} reconciler passes",
        passes.load(Ordering::Relaxed)
    );
    assert!(
        passes.load(Ordering::Relaxed) >= rounds,
        "the passes ran alongside"
    );
    assert_eq!((repeated, queued_again), (0, 0));
}
