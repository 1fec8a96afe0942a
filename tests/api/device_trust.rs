//! Device trust, tried as an attacker and a real fleet would: every command reaches
//! each iPad exactly once under NotNow, no body can crash tafel, an answer and the
//! inventory it carries land together.

use std::collections::{BTreeMap, BTreeSet};

use tafel_sim::device::{Answer, SimDevice};

use crate::helpers::TestApp;

/// An enrolled, active iPad that has answered its first inventory.
pub async fn enrolled(app: &TestApp, n: usize) -> SimDevice {
    let mut ipad = app.device(n);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;
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
pub(crate) async fn school_with_wifi_and_keynote(app: &TestApp, slug: &str) -> (String, String) {
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
            let sign = |p: &tafel::catalog::Profile| state.deliver_profile(p);
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

/// A school and a link token of it in a new or given authority; returns
/// (authority, school, token secret, token id).
async fn school_with_link(
    app: &TestApp,
    tenant: Option<&str>,
    slug: &str,
    body: serde_json::Value,
) -> (String, String, String, String) {
    let (tenant, school) = match tenant {
        Some(t) => {
            let (status, s) = app
                .post(
                    &format!("/api/v1/tenants/{t}/schools"),
                    serde_json::json!({"name": format!("Schule {slug}")}),
                )
                .await;
            assert_eq!(status, 201, "{s}");
            (t.to_owned(), s["id"].as_str().unwrap().to_owned())
        }
        None => crate::enrollment::school(app, slug).await,
    };
    let t = crate::enrollment::token(app, &school, body).await;
    (
        tenant,
        school,
        t["token"].as_str().unwrap().to_owned(),
        t["id"].as_str().unwrap().to_owned(),
    )
}

/// Enrolls over HTTP as a real iPad does: profile → SCEP → Authenticate → TokenUpdate.
async fn enroll_through(
    app: &TestApp,
    secret: &str,
    udid: &str,
    serial: &str,
) -> Result<SimDevice, tafel_sim::device::SimError> {
    tafel_sim::enroll::enroll(
        &app.client,
        &app.url(&format!("/enroll/{secret}")),
        tafel::protocol::Udid::parse(udid).unwrap(),
        serial.to_owned(),
        None,
    )
    .await
}

async fn import_serial(app: &TestApp, school: &str, serial: &str) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/schools/{school}/import/devices")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(format!("serial,name\n{serial},iPad {serial}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The device row of a serial, as the district admin sees it.
async fn by_serial(app: &TestApp, serial: &str) -> Vec<serde_json::Value> {
    let (status, page) = app
        .get(&format!("/api/v1/devices?q={}", serial.to_lowercase()))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The enrollment failed with HTTP `status` and a reason containing `why`.
fn refused(result: Result<SimDevice, tafel_sim::device::SimError>, status: u16, why: &str) {
    match result {
        Ok(_) => panic!("enrolled, but should be refused: {why}"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains(&status.to_string()) && e.contains(why), "{e}");
        }
    }
}

#[actix_web::test]
async fn an_enrollment_link_and_a_serial_number_take_over_nothing() {
    let app = TestApp::spawn().await;
    let (a, a1, a1_link, _) = school_with_link(&app, None, "ta", serde_json::json!({})).await;
    let (_, a2, a2_link, _) = school_with_link(&app, Some(&a), "ta2", serde_json::json!({})).await;
    let (_, b1, b1_link, _) = school_with_link(&app, None, "tb", serde_json::json!({})).await;
    import_serial(&app, &a1, "VICTIM0001").await;

    // School A2's link with the serial on the box of A1's iPad: refused, nothing stored.
    let before = (app.count("devices"), app.count("audit_log"));
    refused(
        enroll_through(&app, &a2_link, "00008103-0000000000AA0001", "VICTIM0001").await,
        403,
        "registered to another school",
    );
    assert_eq!(before.0, app.count("devices"));
    // Another authority's link: the attacker gets a device of their own; A1's row stays.
    let own = enroll_through(&app, &b1_link, "00008103-0000000000BB0001", "VICTIM0001")
        .await
        .unwrap();
    let rows = by_serial(&app, "VICTIM0001").await;
    assert_eq!(rows.len(), 2);
    let victim_row = rows.iter().find(|r| r["school_id"] == a1.as_str()).unwrap();
    assert_eq!(victim_row["enrollment_status"], "pending");
    assert!(victim_row["udid"].is_null());
    let attackers = rows.iter().find(|r| r["school_id"] == b1.as_str()).unwrap();
    assert_eq!(attackers["udid"], own.udid.as_str());

    // The real iPad enrolls through its own school and takes its row.
    let real = enroll_through(&app, &a1_link, "00008103-0000000000AA0002", "VICTIM0001")
        .await
        .unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", real.udid)).await;
    assert_eq!(dev["id"], victim_row["id"]);
    assert_eq!(dev["school_id"], a1.as_str());

    // Its UDID through the other authority's link: refused; the real iPad keeps working.
    refused(
        enroll_through(&app, &b1_link, real.udid.as_str(), "VICTIM0001").await,
        403,
        "another school authority",
    );
    assert!(real.idle().await.is_ok());

    // Checked out, then its UDID comes back through school A2's link: it binds again
    // there, leaving A1 (and with it A1's profiles), and the old identity is dead.
    real.check_out().await.unwrap();
    let again = enroll_through(&app, &a2_link, real.udid.as_str(), "VICTIM0001")
        .await
        .unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", again.udid)).await;
    assert_eq!(dev["school_id"], a2.as_str());
    assert_eq!(dev["enrollment_status"], "active");
    let old = real.idle().await.unwrap_err().to_string();
    assert!(old.contains("403"), "{old}");
}

#[actix_web::test]
async fn enrollment_token_limits_count_devices_and_certificates_speak_for_one_udid() {
    let app = TestApp::spawn().await;
    let (_, school, secret, token_id) =
        school_with_link(&app, None, "lim", serde_json::json!({"max_uses": 1})).await;
    let first = enroll_through(&app, &secret, "00008103-0000000000CC0001", "LIM0001")
        .await
        .unwrap();
    // The same certificate with four invented UDIDs: refused, nothing stored.
    for n in 2..6 {
        let mut clone = app.device(0);
        clone.udid = tafel::protocol::Udid::parse(&format!("00008103-0000000000CC000{n}")).unwrap();
        clone.set_identity(first.cert.clone(), first.key.clone());
        clone.checkin_url = first.checkin_url.clone();
        let before = app.count("devices");
        let err = clone.authenticate().await.unwrap_err().to_string();
        assert!(
            err.contains("403") && err.contains("another device"),
            "{err}"
        );
        assert_eq!(before, app.count("devices"));
    }
    // The token is used up: one device.
    let (_, tokens) = app
        .get(&format!("/api/v1/schools/{school}/enrollment-tokens"))
        .await;
    assert_eq!(tokens["items"][0]["uses"], 1);
    refused(
        enroll_through(&app, &secret, "00008103-0000000000CC0009", "LIM0009").await,
        404,
        "used up",
    );

    // A profile fetched before a revocation: its certificate enrolls no one afterwards,
    // while the device already enrolled through the token keeps working.
    let (_, _, open_secret, open_id) =
        school_with_link(&app, None, "rev", serde_json::json!({})).await;
    let enrolled_before =
        enroll_through(&app, &open_secret, "00008103-0000000000DD0001", "REV0001")
            .await
            .unwrap();
    let info = app.profile_info(&open_secret).await;
    let key = tafel_sim::enroll::new_key().unwrap();
    let cert = tafel_sim::enroll::scep_enroll(&app.client, &info, &key)
        .await
        .unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/enrollment-tokens/{open_id}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let mut late = app.device(0);
    late.udid = tafel::protocol::Udid::parse("00008103-0000000000DD0002").unwrap();
    late.set_identity(cert, key);
    late.checkin_url = info.check_in_url.clone();
    let err = late.authenticate().await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("revoked"), "{err}");
    assert!(enrolled_before.idle().await.is_ok());
    let _ = token_id;
}

/// A class of a new school with a link that enrolls into it; returns (authority,
/// school, class, link secret).
async fn class_with_link(app: &TestApp, slug: &str) -> (String, String, String, String) {
    let (tenant, school) = crate::enrollment::school(app, slug).await;
    let (status, class) = app
        .post(
            &format!("/api/v1/schools/{school}/classes"),
            serde_json::json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let class = class["id"].as_str().unwrap().to_owned();
    let t = crate::enrollment::token(app, &school, serde_json::json!({"class_id": class})).await;
    (
        tenant,
        school,
        class,
        t["token"].as_str().unwrap().to_owned(),
    )
}

async fn class_devices(app: &TestApp, class: &str) -> i64 {
    let (status, c) = app.get(&format!("/api/v1/classes/{class}")).await;
    assert_eq!(status, 200, "{c}");
    c["devices"].as_i64().unwrap()
}

async fn audit_actions(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    let (_, audit) = app
        .get(&format!("/api/v1/audit?action={action}&limit=100"))
        .await;
    audit["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn an_erased_ipad_comes_back_through_its_school_and_an_erase_leaves_the_counts() {
    use crate::assignments::connect;
    let app = TestApp::spawn().await;
    let (tenant, _, class, link) = class_with_link(&app, "erase").await;
    let udid = "00008103-0000000000EE0001";
    let first = enroll_through(&app, &link, udid, "ERASE0001")
        .await
        .unwrap();
    assert_eq!(class_devices(&app, &class).await, 1);
    let waiting = app.enqueue(&[udid], "ProfileList", None).await;

    // A pupil erases the iPad on the iPad itself (no CheckOut reaches tafel); it enrolls
    // again through a fresh profile of its own class: bound to the new identity, the old
    // one is dead, the old queue closed, the inventory asked for again.
    let mut again = enroll_through(&app, &link, udid, "ERASE0001")
        .await
        .unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(dev["enrollment_status"], "active");
    assert_eq!(app.status_of(udid, &waiting).await, "cancelled");
    assert!(first.idle().await.unwrap_err().to_string().contains("403"));
    let rebinds = audit_actions(&app, "rebind").await;
    assert_eq!(rebinds.len(), 1, "{rebinds:?}");
    assert_eq!(rebinds[0]["summary"]["why"], "re-enrolled");
    crate::helpers::answer_first_inventory(&mut again).await;
    assert_eq!(class_devices(&app, &class).await, 1);

    // An admin erases it: once the iPad acknowledged, it is erased, out of the class's
    // count, and what was still queued is closed.
    // It confirms with the iPad's serial number (another serial: refused, nothing stored).
    let erase = |serial: &str| {
        serde_json::json!({"udids": [udid], "request_type": "EraseDevice",
                           "fields": {"PIN": "123456"}, "confirm": serial})
    };
    let (status, reply) = app.post("/api/v1/commands", erase("ERASE0002")).await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("confirm")),
        "{reply}"
    );
    assert!(
        reply["message"].as_str().unwrap().contains("ERASE0001"),
        "{reply}"
    );
    let (status, reply) = app.post("/api/v1/commands", erase("erase0001")).await;
    assert_eq!(status, 202, "{reply}");
    let erase = reply["command_uuid"].as_str().unwrap().to_owned();
    let later = app.enqueue(&[udid], "DeviceInformation", None).await;
    let cmd = again.idle().await.unwrap().expect("the erase");
    assert_eq!(cmd.command_uuid.as_str(), erase);
    let answer = again.execute(&cmd);
    assert!(again.answer(&cmd, answer).await.unwrap().is_none());
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(dev["enrollment_status"], "erased");
    assert_eq!(app.status_of(udid, &later).await, "cancelled");
    assert_eq!(class_devices(&app, &class).await, 0);
    assert_eq!(audit_actions(&app, "erased").await.len(), 1);

    // It comes back through its class's link, into its class.
    let mut back = enroll_through(&app, &link, udid, "ERASE0001")
        .await
        .unwrap();
    assert_eq!(class_devices(&app, &class).await, 1);
    connect(&mut back).await;

    // The authority wants a release before a known iPad enrolls again.
    let res = app
        .client
        .put(app.url(&format!("/api/v1/tenants/{tenant}/enrollment-policy")))
        .bearer_auth(&app.admin_token)
        .json(&serde_json::json!({"reenroll_requires_release": true}))
        .send()
        .await
        .unwrap();
    let (status, policy) = crate::helpers::json_reply(res).await;
    assert_eq!(status, 200, "{policy}");
    assert_eq!(policy["reenroll_requires_release"], true);
    let before = app.count("audit_log");
    refused(
        enroll_through(&app, &link, udid, "ERASE0001").await,
        403,
        "release",
    );
    assert_eq!(before, app.count("audit_log"), "a refusal stores nothing");
    assert!(back.idle().await.is_ok(), "the enrolled iPad is untouched");
    let (status, released) = app
        .post(
            &format!("/api/v1/devices/{udid}/release"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["enrollment_status"], "retired");
    assert!(back.idle().await.unwrap_err().to_string().contains("403"));
    enroll_through(&app, &link, udid, "ERASE0001")
        .await
        .unwrap();
    let rebinds = audit_actions(&app, "rebind").await;
    assert!(
        rebinds.iter().any(|e| e["summary"]["why"] == "released"),
        "{rebinds:?}"
    );
}

/// An Authenticate with the device's certificate in a proxy header and no signature.
async fn authenticate_through_proxy_header(app: &TestApp, ipad: &SimDevice) -> u16 {
    let pem = String::from_utf8(ipad.cert.to_pem().unwrap()).unwrap();
    let encoded: String = pem
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    app.client
        .put(app.url("/mdm/checkin"))
        .header("X-Client-Cert", encoded)
        .header("Content-Type", "application/x-apple-aspen-mdm-checkin")
        .body(ipad.authenticate_message().to_xml())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn the_proxy_certificate_header_counts_only_from_the_proxy() {
    let proxy_elsewhere = TestApp::spawn_with(|s| {
        s.mdm.trusted_proxy_cert_header = Some("X-Client-Cert".into());
        s.mdm.trusted_proxies = vec!["192.0.2.10/32".to_owned().try_into().unwrap()];
    })
    .await;
    let ipad = proxy_elsewhere.device(4000);
    let before = proxy_elsewhere.count("devices");
    assert_eq!(
        authenticate_through_proxy_header(&proxy_elsewhere, &ipad).await,
        403
    );
    assert_eq!(before, proxy_elsewhere.count("devices"));

    let proxy_here = TestApp::spawn_with(|s| {
        s.mdm.trusted_proxy_cert_header = Some("X-Client-Cert".into());
        s.mdm.trusted_proxies = vec!["127.0.0.0/8".to_owned().try_into().unwrap()];
    })
    .await;
    let ipad = proxy_here.device(4001);
    assert_eq!(
        authenticate_through_proxy_header(&proxy_here, &ipad).await,
        200
    );
}

/// A certificate tafel has checked once is kept (its key and validity) so the next
/// message costs one signature check: what that shortcut accepts is still only what the
/// full check accepts — the bound iPad's own messages, with bodies its key signed.
#[actix_web::test]
async fn a_kept_certificate_speaks_only_for_its_own_ipad_and_its_own_bodies() {
    use tafel::protocol::ConnectReport;

    let app = TestApp::spawn().await;
    let a = enrolled(&app, 3100).await;
    let b = enrolled(&app, 3101).await;
    assert!(
        app.state.known.len() >= 2,
        "both certificates were checked in full once and kept"
    );
    // Kept: A's Idle is answered (nothing queued).
    assert_eq!(a.idle().await.unwrap(), None);

    // A signs a report in B's name: the signature is good, the binding is not.
    let forged = ConnectReport::idle(b.udid.clone()).to_xml();
    let reply = a.send_raw(&a.connect_url, None, forged).await.unwrap();
    assert_eq!(
        reply.status,
        403,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    // A's signature over one body, sent with another: refused.
    let signed = ConnectReport::idle(a.udid.clone()).to_xml();
    let mut other = signed.clone();
    let at = other.len() - 20;
    other.insert(at, b' ');
    let res = reqwest::Client::new()
        .put(&a.connect_url)
        .header("Mdm-Signature", a.sign(&signed).unwrap())
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // B's queued command still reaches B, and only B.
    let udid = b.udid.to_string();
    app.enqueue(&[udid.as_str()], "ProfileList", None).await;
    assert_eq!(a.idle().await.unwrap(), None);
    let got = b.idle().await.unwrap().expect("B's command");
    assert_eq!(got.request_type, "ProfileList");
}
