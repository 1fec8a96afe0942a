//! An iPad's life on the protocol: Authenticate → TokenUpdate → commands (with NotNow
//! and errors) → CheckOut, and everything a device must not be able to do.

use plist::Dictionary;
use tafel::protocol::{Command, ConnectReport, Status};
use tafel_sim::device::{error_chain, Answer, SignatureEncoding};

use crate::helpers::TestApp;

#[actix_web::test]
async fn an_ipad_enrolls_receives_commands_and_checks_out() {
    let app = TestApp::spawn().await;
    let mut ipad = app.device(1);
    let udid = ipad.udid.to_string();

    ipad.authenticate().await.unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(dev["enrollment_status"], "authenticated");
    assert_eq!(dev["serial_number"], "DMPTEST00001");
    ipad.token_update(false).await.unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(dev["enrollment_status"], "active");
    // Asked what it is and has at once.
    crate::helpers::answer_first_inventory(&mut ipad).await;

    // Nothing queued: an empty 200.
    assert!(ipad.idle().await.unwrap().is_none());

    let info = app.enqueue(&[&udid], "DeviceInformation", None).await;
    let profiles = app.enqueue(&[&udid], "ProfileList", None).await;
    let apps = app
        .enqueue(&[&udid], "InstalledApplicationList", None)
        .await;

    // Oldest first.
    let first = ipad.idle().await.unwrap().expect("a command");
    assert_eq!(first.command_uuid.as_str(), info);
    assert_eq!(first.request_type, "DeviceInformation");
    assert_eq!(app.status_of(&udid, &info).await, "sent");
    let answer = ipad.execute(&first);
    let second = ipad
        .answer(&first, answer)
        .await
        .unwrap()
        .expect("next command");
    assert_eq!(second.command_uuid.as_str(), profiles);
    assert_eq!(app.status_of(&udid, &info).await, "acknowledged");

    // NotNow: not offered again in this sequence ...
    let third = ipad
        .answer(&second, Answer::NotNow)
        .await
        .unwrap()
        .expect("next command");
    assert_eq!(third.command_uuid.as_str(), apps);
    assert_eq!(app.status_of(&udid, &profiles).await, "not_now");
    let answer = ipad.execute(&third);
    assert!(
        ipad.answer(&third, answer).await.unwrap().is_none(),
        "ProfileList must wait for the next Idle"
    );

    // ... and offered again on the next one.
    let again = ipad
        .idle()
        .await
        .unwrap()
        .expect("the NotNow command again");
    assert_eq!(again.command_uuid.as_str(), profiles);
    let answer = ipad.execute(&again);
    assert!(ipad.answer(&again, answer).await.unwrap().is_none());

    // The stored result is the device's answer.
    let queue = app.queue_of(&udid).await;
    let info_entry = queue.iter().find(|e| e["command_uuid"] == info).unwrap();
    assert_eq!(
        info_entry["result"]["QueryResponses"]["SerialNumber"],
        "DMPTEST00001"
    );
    assert_eq!(info_entry["attempts"], 1);
    let profile_entry = queue
        .iter()
        .find(|e| e["command_uuid"] == profiles)
        .unwrap();
    assert_eq!(profile_entry["status"], "acknowledged");
    assert_eq!(profile_entry["attempts"], 2);

    // CheckOut: inactive, open commands stop.
    let pending = app.enqueue(&[&udid], "SecurityInfo", None).await;
    ipad.check_out().await.unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(dev["enrollment_status"], "inactive");
    assert_eq!(app.status_of(&udid, &pending).await, "cancelled");
    assert!(ipad.idle().await.unwrap().is_none());
}

#[actix_web::test]
async fn errors_are_stored_with_apples_error_chain_and_repeats_are_idempotent() {
    let app = TestApp::spawn().await;
    let ipad = enrolled(&app, 2).await;
    let udid = ipad.udid.to_string();
    let cmd = app
        .enqueue(
            &[&udid],
            "InstallProfile",
            Some(serde_json::json!({"Payload": {"$data": "bm90IGEgcHJvZmlsZQ=="}})),
        )
        .await;
    let delivered = ipad.idle().await.unwrap().unwrap();
    assert_eq!(delivered.command_uuid.as_str(), cmd);
    assert_eq!(
        delivered.fields.get("Payload").and_then(|v| v.as_data()),
        Some(&b"not a profile"[..]),
        "<data> arrives as data"
    );
    let failure = Answer::Error(error_chain(
        4001,
        "MCProfileErrorDomain",
        "The profile could not be read.",
    ));
    assert!(ipad
        .answer(&delivered, failure.clone())
        .await
        .unwrap()
        .is_none());
    // The same answer again changes nothing; a late NotNow does not reopen it.
    assert!(ipad.answer(&delivered, failure).await.unwrap().is_none());
    assert!(ipad
        .answer(&delivered, Answer::NotNow)
        .await
        .unwrap()
        .is_none());
    let entry = app
        .queue_of(&udid)
        .await
        .into_iter()
        .find(|e| e["command_uuid"] == cmd)
        .unwrap();
    assert_eq!(entry["status"], "error");
    assert_eq!(
        entry["error_chain"][0]["error_domain"],
        "MCProfileErrorDomain"
    );
    assert_eq!(entry["error_chain"][0]["error_code"], 4001);
    assert!(ipad.idle().await.unwrap().is_none());
}

#[actix_web::test]
async fn priority_wins_and_a_command_in_flight_survives_a_lost_connection() {
    let app = TestApp::spawn().await;
    let mut ipad = enrolled(&app, 3).await;
    let udid = ipad.udid.to_string();
    let low = app.enqueue(&[&udid], "ProfileList", None).await;
    let (status, urgent) = app
        .post(
            "/api/v1/commands",
            serde_json::json!({"udids": [udid], "request_type": "SecurityInfo", "priority": 10}),
        )
        .await;
    assert_eq!(status, 202);
    let first = ipad.idle().await.unwrap().unwrap();
    assert_eq!(
        first.command_uuid.as_str(),
        urgent["command_uuid"].as_str().unwrap()
    );
    // The device never answers (crash, lost connection): the next Idle gets it again.
    let again = ipad.idle().await.unwrap().unwrap();
    assert_eq!(again.command_uuid, first.command_uuid);
    let answer = ipad.execute(&again);
    let next = ipad.answer(&again, answer).await.unwrap().unwrap();
    assert_eq!(next.command_uuid.as_str(), low);
}

#[actix_web::test]
async fn signatures_in_der_and_indefinite_ber_are_both_accepted() {
    let app = TestApp::spawn().await;
    let mut ipad = app.device(4);
    ipad.encoding = SignatureEncoding::Der;
    ipad.authenticate().await.unwrap();
    ipad.encoding = SignatureEncoding::BerIndefinite;
    ipad.token_update(false).await.unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;
    assert!(ipad.idle().await.unwrap().is_none());
}

#[actix_web::test]
async fn one_path_serves_both_check_in_and_connect() {
    let app = TestApp::spawn_with(|s| {
        s.mdm.checkin_path = "/mdm".into();
        s.mdm.connect_path = "/mdm".into();
    })
    .await;
    let mut ipad = app.device(5);
    ipad.checkin_url = app.url("/mdm");
    ipad.connect_url = app.url("/mdm");
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    let udid = ipad.udid.to_string();
    let cmd = app.enqueue(&[&udid], "DeviceInformation", None).await;
    assert_eq!(
        ipad.idle().await.unwrap().unwrap().command_uuid.as_str(),
        cmd
    );
}

#[actix_web::test]
async fn bootstrap_tokens_are_stored_per_device_and_the_user_channel_is_declined() {
    let app = TestApp::spawn().await;
    let ipad = enrolled(&app, 6).await;
    let ids = tafel::protocol::EnrollmentIds::device(ipad.udid.clone());
    let set =
        tafel::protocol::CheckinMessage::SetBootstrapToken(tafel::protocol::SetBootstrapToken {
            enrollment: ids.clone(),
            bootstrap_token: Some(b"secret-bootstrap".to_vec()),
            awaiting_configuration: false,
        });
    let reply = ipad
        .send_raw(&ipad.checkin_url, None, set.to_xml())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let get =
        tafel::protocol::CheckinMessage::GetBootstrapToken(tafel::protocol::GetBootstrapToken {
            enrollment: ids.clone(),
            awaiting_configuration: false,
        });
    let reply = ipad
        .send_raw(&ipad.checkin_url, None, get.to_xml())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let parsed = tafel::protocol::GetBootstrapTokenResponse::parse(&reply.body).unwrap();
    assert_eq!(
        parsed.bootstrap_token.as_deref(),
        Some(&b"secret-bootstrap"[..])
    );

    let mut user = ids;
    user.user_id = Some("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF".into());
    user.user_short_name = Some("pupil@school.example".into());
    let msg = tafel::protocol::CheckinMessage::TokenUpdate(tafel::protocol::TokenUpdate {
        enrollment: user,
        topic: Some(ipad.topic.clone()),
        token: ipad.push_token(),
        push_magic: tafel::protocol::PushMagic::new("m"),
        unlock_token: None,
        awaiting_configuration: false,
        not_on_console: false,
    });
    let reply = ipad
        .send_raw(&ipad.checkin_url, None, msg.to_xml())
        .await
        .unwrap();
    assert_eq!(reply.status, 410);
}

use crate::device_trust::enrolled;

/// Everything stored, counted, to prove a rejected request stored nothing.
fn snapshot(app: &TestApp) -> Vec<i64> {
    ["devices", "commands", "command_queue", "audit_log"]
        .iter()
        .map(|t| app.count(t))
        .collect()
}

#[actix_web::test]
async fn a_certificate_from_a_foreign_ca_is_refused() {
    let app = TestApp::spawn().await;
    let mut ipad = app.device(10);
    let foreign = tafel::pki::CertificateAuthority::generate("tafel Root CA", 30).unwrap();
    let public =
        openssl::pkey::PKey::public_key_from_der(&ipad.key.public_key_to_der().unwrap()).unwrap();
    ipad.cert = foreign
        .issue_client_cert(&public, ipad.cert.subject_name(), 30)
        .unwrap();
    let before = snapshot(&app);
    let err = ipad.authenticate().await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("CA"), "{err}");
    assert_eq!(before, snapshot(&app));
}

#[actix_web::test]
async fn a_device_cannot_speak_for_another_or_answer_its_commands() {
    let app = TestApp::spawn().await;
    let victim = enrolled(&app, 11).await;
    let attacker = enrolled(&app, 12).await;
    let victim_udid = victim.udid.to_string();
    let cmd = app
        .enqueue(&[&victim_udid], "DeviceInformation", None)
        .await;

    // The attacker signs (validly, with its own certificate) an Idle in the victim's name.
    let before = snapshot(&app);
    let reply = attacker
        .send_raw(
            &attacker.connect_url,
            None,
            ConnectReport::idle(victim.udid.clone()).to_xml(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(
        app.status_of(&victim_udid, &cmd).await,
        "pending",
        "nothing delivered"
    );

    // Nor can it re-Authenticate as the victim.
    let mut impostor = app.device(11);
    impostor.cert = attacker.cert.clone();
    impostor.key = attacker.key.clone();
    let err = impostor.authenticate().await.unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");

    // Nor answer the victim's command in its own name.
    let fake = Command::parse(&tafel::protocol::Command::security_info().to_xml()).unwrap();
    let forged = fake.with_uuid(tafel::protocol::CommandUuid::parse(&cmd).unwrap());
    let reply = attacker
        .send_raw(
            &attacker.connect_url,
            None,
            ConnectReport::answer(
                attacker.udid.clone(),
                Status::Acknowledged,
                Some(forged.command_uuid.clone()),
                Dictionary::new(),
            )
            .to_xml(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(before, snapshot(&app));
    assert_eq!(app.status_of(&victim_udid, &cmd).await, "pending");
    // The victim still gets it.
    assert_eq!(
        victim.idle().await.unwrap().unwrap().command_uuid.as_str(),
        cmd
    );
}

#[actix_web::test]
async fn tampered_bodies_expired_certificates_and_missing_signatures_are_refused() {
    let app = TestApp::spawn().await;
    let ipad = enrolled(&app, 13).await;
    let body = ConnectReport::idle(ipad.udid.clone()).to_xml();
    let sig = ipad.sign(&body).unwrap();
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|b| *b == b'I').unwrap();
    tampered[pos] = b'J';
    let res = app
        .client
        .put(&ipad.connect_url)
        .header("Mdm-Signature", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .put(&ipad.connect_url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("no device identity"));
    let res = app
        .client
        .put(&ipad.connect_url)
        .header("Mdm-Signature", "!!!not base64")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // An expired certificate, although from our CA.
    let mut old = app.device(14);
    let public =
        openssl::pkey::PKey::public_key_from_der(&old.key.public_key_to_der().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    old.cert = app
        .state
        .ca
        .issue_client_cert_between(
            &public,
            old.cert.subject_name(),
            now - 90 * 86400,
            now - 86400,
        )
        .unwrap();
    let before = snapshot(&app);
    let err = old.authenticate().await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("expired"), "{err}");
    assert_eq!(before, snapshot(&app));
}

#[actix_web::test]
async fn malformed_and_oversize_bodies_are_400_and_413_and_store_nothing() {
    let app = TestApp::spawn_with(|s| s.mdm.max_checkin_body = 4096).await;
    let ipad = app.device(20);
    let before = snapshot(&app);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not a plist", b"<plist><dict><key>Status".to_vec(), 400),
        ("empty", Vec::new(), 400),
        (
            "unknown MessageType",
            plist_body(&[("MessageType", "Bogus"), ("UDID", "X")]),
            400,
        ),
        ("no UDID", plist_body(&[("Status", "Idle")]), 400),
        (
            "answer without CommandUUID",
            plist_body(&[("Status", "Acknowledged"), ("UDID", "X")]),
            400,
        ),
        (
            "unknown Status",
            plist_body(&[("Status", "Maybe"), ("UDID", "X")]),
            400,
        ),
    ];
    for (what, body, expected) in cases {
        let reply = ipad.send_raw(&ipad.checkin_url, None, body).await.unwrap();
        assert_eq!(
            reply.status,
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(!reply.body.is_empty(), "{what}: a reason is given");
    }
    let mut big = ipad.authenticate_message();
    if let tafel::protocol::CheckinMessage::Authenticate(a) = &mut big {
        a.device_name = Some("x".repeat(8000));
    }
    let reply = ipad
        .send_raw(&ipad.checkin_url, None, big.to_xml())
        .await
        .unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(before, snapshot(&app));
}

fn plist_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut d = Dictionary::new();
    for (k, v) in pairs {
        d.insert((*k).into(), plist::Value::String((*v).into()));
    }
    let mut out = Vec::new();
    plist::Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
    out
}

#[actix_web::test]
async fn bad_enqueue_requests_store_nothing() {
    let app = TestApp::spawn().await;
    let ipad = enrolled(&app, 30).await;
    let udid = ipad.udid.to_string();
    let before = snapshot(&app);
    for (body, field) in [
        (
            serde_json::json!({"udids": [udid, "NOPE"], "request_type": "ProfileList"}),
            "udids",
        ),
        (
            serde_json::json!({"udids": [], "request_type": "ProfileList"}),
            "udids",
        ),
        (
            serde_json::json!({"udids": [udid], "request_type": "Bad Type!"}),
            "request_type",
        ),
        (
            serde_json::json!({"udids": [udid], "request_type": "InstallProfile", "fields": {"Payload": {"$data": "%%%"}}}),
            "fields",
        ),
        (
            serde_json::json!({"udids": [udid], "request_type": "ProfileList", "expires_in": -5}),
            "expires_in",
        ),
    ] {
        let (status, json) = app.post("/api/v1/commands", body).await;
        assert_eq!(status, 400, "{json}");
        assert_eq!(json["field"], field, "{json}");
    }
    assert_eq!(before, snapshot(&app));
}

#[actix_web::test]
async fn admins_cancel_open_commands_and_expired_ones_are_not_delivered() {
    let app = TestApp::spawn().await;
    let mut ipad = enrolled(&app, 40).await;
    let udid = ipad.udid.to_string();
    let a = app.enqueue(&[&udid], "ProfileList", None).await;
    let b = app.enqueue(&[&udid], "SecurityInfo", None).await;
    let (status, json) = app
        .post(
            &format!("/api/v1/devices/{udid}/commands/cancel"),
            serde_json::json!({"command_uuids": [a]}),
        )
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["cancelled"], 1);
    assert_eq!(app.status_of(&udid, &a).await, "cancelled");
    let next = ipad.idle().await.unwrap().unwrap();
    assert_eq!(next.command_uuid.as_str(), b);

    // Expiry: a command that expires before delivery is never sent.
    let (_, json) = app
        .post(
            "/api/v1/commands",
            serde_json::json!({"udids": [udid], "request_type": "ProfileList", "expires_in": 1}),
        )
        .await;
    let expiring = json["command_uuid"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let answer = ipad.execute(&next);
    assert!(ipad.answer(&next, answer).await.unwrap().is_none());
    assert_eq!(app.status_of(&udid, &expiring).await, "expired");
}

#[actix_web::test]
async fn one_command_fans_out_to_many_devices_in_one_request() {
    let app = TestApp::spawn().await;
    let mut udids = Vec::new();
    let mut devices = Vec::new();
    for n in 50..55 {
        let d = enrolled(&app, n).await;
        udids.push(d.udid.to_string());
        devices.push(d);
    }
    let refs: Vec<&str> = udids.iter().map(String::as_str).collect();
    let (commands, queue) = (app.count("commands"), app.count("command_queue"));
    let cmd = app.enqueue(&refs, "DeviceInformation", None).await;
    assert_eq!(app.count("commands"), commands + 1, "one command");
    assert_eq!(
        app.count("command_queue"),
        queue + 5,
        "one queue row per device"
    );
    for d in &devices {
        assert_eq!(d.idle().await.unwrap().unwrap().command_uuid.as_str(), cmd);
    }
}
