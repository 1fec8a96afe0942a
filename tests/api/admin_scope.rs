//! The admin side under hostile use: catalog items stay with their school or authority,
//! imports act only within the caller's authority, users act only on users below them,
//! and password guessing is throttled without slowing anyone else.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::organisation::{call, user};

/// One authority with two schools, their admins and teachers, a device in each school
/// and a Wi-Fi profile rendered for each.
struct Authority {
    tenant: String,
    schools: [String; 2],
    authority_admin: (String, String),
    school_admins: [(String, String); 2],
    teachers: [(String, String); 2],
    devices: [String; 2],
    wifi: [String; 2],
}

async fn authority(app: &TestApp, slug: &str, first_device: usize) -> Authority {
    let (tenant, s1) = crate::enrollment::school(app, slug).await;
    let (status, s2) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Realschule Süd"}),
        )
        .await;
    assert_eq!(status, 201, "{s2}");
    let s2 = s2["id"].as_str().unwrap().to_owned();
    let authority_admin = user(app, json!({"name": "AA", "email": format!("aa@{slug}.de"), "role": "authority_admin", "tenant_id": tenant})).await;
    let mut school_admins = Vec::new();
    let mut teachers = Vec::new();
    let mut devices = Vec::new();
    let mut wifi = Vec::new();
    for (i, school) in [&s1, &s2].into_iter().enumerate() {
        school_admins.push(user(app, json!({"name": "SA", "email": format!("sa{i}@{slug}.de"), "role": "school_admin", "school_id": school})).await);
        teachers.push(user(app, json!({"name": "T", "email": format!("t{i}@{slug}.de"), "role": "teacher", "school_id": school})).await);
        let d = crate::device_trust::enrolled(app, first_device + i).await;
        app.place_device(d.udid.as_str(), &tenant, school);
        devices.push(d.udid.to_string());
        let (status, p) = app
            .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school, "values": {"ssid": format!("Netz{i}"), "password": format!("geheim-{slug}-{i}-lang")}}))
            .await;
        assert_eq!(status, 201, "{p}");
        wifi.push(p["id"].as_str().unwrap().to_owned());
    }
    Authority {
        tenant,
        schools: [s1, s2],
        authority_admin,
        school_admins: [school_admins[0].clone(), school_admins[1].clone()],
        teachers: [teachers[0].clone(), teachers[1].clone()],
        devices: [devices[0].clone(), devices[1].clone()],
        wifi: [wifi[0].clone(), wifi[1].clone()],
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_schools_profile_stays_with_that_school() {
    let app = TestApp::spawn().await;
    let a = authority(&app, "kat", 5000).await;
    // The second school's admin does not see the first school's Wi-Fi ...
    let (_, list) = call(&app, &a.school_admins[1].1, "GET", "/api/v1/profiles", None).await;
    assert_eq!(ids(&list), [a.wifi[1].clone()]);
    // ... and cannot hand it to their iPads (it does not exist for them).
    let before = app.count("assignments");
    let (status, body) = call(&app, &a.school_admins[1].1, "POST", "/api/v1/assignments", Some(json!({"item_kind": "profile", "item_id": a.wifi[0], "target_kind": "device", "target_id": a.devices[1]}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "no such catalog item");
    // Not even a district admin can give one school's profile to another school.
    let (status, body) = app
        .post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": a.wifi[0], "target_kind": "school", "target_id": a.schools[1]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("another school"),
        "{body}"
    );
    // Nor to the whole authority.
    let (status, _) = app
        .post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": a.wifi[0], "target_kind": "tenant", "target_id": a.tenant}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(before, app.count("assignments"));
    // The authority's admin sees both; each school uses its own.
    let (_, list) = call(&app, &a.authority_admin.1, "GET", "/api/v1/profiles", None).await;
    assert_eq!(ids(&list).len(), 2);
    let (status, body) = call(&app, &a.school_admins[1].1, "POST", "/api/v1/assignments", Some(json!({"item_kind": "profile", "item_id": a.wifi[1], "target_kind": "school", "target_id": a.schools[1]}))).await;
    assert_eq!(status, 201, "{body}");
    // An authority's app reaches every school of it.
    let (_, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": a.tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": "361285480"}))
        .await;
    let (status, body) = call(&app, &a.school_admins[0].1, "POST", "/api/v1/assignments", Some(json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "school", "target_id": a.schools[0]}))).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_web::test]
async fn imports_claim_and_reveal_nothing_outside_the_authority() {
    use diesel::prelude::*;
    use tafel::db::schema::devices;
    let app = TestApp::spawn().await;
    let a = authority(&app, "imp1", 5010).await;
    let b = authority(&app, "imp2", 5020).await;
    // Apple School Manager reported a serial to authority B, without a school yet.
    {
        let mut conn = app.state.db.get().unwrap();
        let at = chrono::Utc::now().naive_utc();
        diesel::insert_into(devices::table)
            .values((
                devices::id.eq("asm-device-b"),
                devices::serial_number.eq("F9ASMB0001"),
                devices::tenant_id.eq(&b.tenant),
                devices::enrollment_status.eq("pending"),
                devices::awaiting_configuration.eq(false),
                devices::created_at.eq(at),
                devices::updated_at.eq(at),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    let import = |token: String, school: String, csv: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url(&format!("/api/v1/schools/{school}/import/devices")))
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            crate::helpers::json_reply(res).await
        }
    };
    // Authority A's school imports the same serial: a device of its own, B's untouched.
    let (status, report) = import(
        a.school_admins[0].1.clone(),
        a.schools[0].clone(),
        "serial\nF9ASMB0001\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(1), Some(0))
    );
    let (status, own) = call(
        &app,
        &b.authority_admin.1,
        "GET",
        "/api/v1/devices/F9ASMB0001",
        None,
    )
    .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["id"], "asm-device-b");
    assert!(own["school_id"].is_null());
    // Within one authority, a school admin learns only that the serial is taken here.
    let (status, body) = import(
        a.school_admins[1].1.clone(),
        a.schools[1].clone(),
        "serial\nF9ASMB0001\n",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["report"]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("elsewhere in this school authority"),
        "{message}"
    );
    assert!(!message.contains(&a.schools[0]), "{message}");
}

#[actix_web::test]
async fn users_act_only_on_users_below_them() {
    let app = TestApp::spawn().await;
    let a = authority(&app, "usr", 5030).await;
    let (second_admin, _) = user(&app, json!({"name": "SA2", "email": "sa2@usr.de", "role": "school_admin", "school_id": a.schools[0]})).await;
    // (role, token, target user id, what is expected of: mint a token, disable)
    let cases = [
        // (Disabling users as it goes: the teachers act before they are disabled.)
        (
            "teacher on a peer",
            &a.teachers[0].1,
            a.teachers[1].0.clone(),
            404,
        ),
        (
            "teacher on their school admin",
            &a.teachers[0].1,
            a.school_admins[0].0.clone(),
            403,
        ),
        (
            "school admin on a peer",
            &a.school_admins[0].1,
            second_admin.clone(),
            403,
        ),
        (
            "school admin on a teacher",
            &a.school_admins[0].1,
            a.teachers[0].0.clone(),
            201,
        ),
        (
            "school admin on another school's teacher",
            &a.school_admins[0].1,
            a.teachers[1].0.clone(),
            404,
        ),
        (
            "school admin on the authority admin",
            &a.school_admins[0].1,
            a.authority_admin.0.clone(),
            404,
        ),
        (
            "authority admin on a school admin",
            &a.authority_admin.1,
            a.school_admins[1].0.clone(),
            201,
        ),
        (
            "district admin on the authority admin",
            &app.admin_token,
            a.authority_admin.0.clone(),
            201,
        ),
    ];
    let mut failures = Vec::new();
    for (what, token, target, want) in &cases {
        let (status, body) = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/users/{target}/tokens"),
            Some(json!({"name": "x"})),
        )
        .await;
        if status != *want {
            failures.push(format!("{what}: token {status} {body}"));
        }
        let want_disable = if *want == 201 { 200 } else { *want };
        let (status, body) = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/users/{target}/disable"),
            None,
        )
        .await;
        if status != want_disable {
            failures.push(format!("{what}: disable {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Peers stay visible.
    let (status, _) = call(
        &app,
        &a.school_admins[0].1,
        "GET",
        &format!("/api/v1/users/{second_admin}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // And nobody creates a peer: a school admin makes teachers, not school admins.
    let (status, _) = call(&app, &a.school_admins[0].1, "POST", "/api/v1/users", Some(json!({"name": "X", "email": "x@usr.de", "role": "school_admin", "school_id": a.schools[0]}))).await;
    assert_eq!(status, 403);
}

async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value, Option<String>) {
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = crate::helpers::json_reply(res).await;
    (status, body, retry)
}

#[actix_web::test]
async fn password_guessing_is_throttled_and_a_flood_of_logins_stalls_no_one() {
    let app = TestApp::spawn().await;
    let (tenant, school) = crate::enrollment::school(&app, "pw").await;
    let _ = tenant;
    let (status, _) = app
        .post("/api/v1/users", json!({"name": "L", "email": "lehrer@pw.de", "role": "teacher", "school_id": school, "password": "richtig-und-lang"}))
        .await;
    assert_eq!(status, 201);
    for _ in 0..5 {
        assert_eq!(login(&app, "lehrer@pw.de", "falsch").await.0, 401);
    }
    assert_eq!(
        login(&app, "lehrer@pw.de", "falsch").await.0,
        401,
        "the 6th failure starts the wait"
    );
    let (status, body, retry) = login(&app, "lehrer@pw.de", "richtig-und-lang").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_requests");
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));

    // Many bogus logins at once for many accounts: the admin API and devices go on.
    let ipad = crate::device_trust::enrolled(&app, 5040).await;
    let flood: Vec<_> = (0..24)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/v1/login");
            tokio::spawn(async move {
                for n in 0..4 {
                    let _ = client
                        .post(&url)
                        .json(&json!({"email": format!("nobody{i}-{n}@pw.de"), "password": "x"}))
                        .send()
                        .await;
                }
            })
        })
        .collect();
    let (status, me) = app.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert!(ipad.idle().await.is_ok());
    let still_flooding = flood.iter().any(|h| !h.is_finished());
    for h in flood {
        h.await.unwrap();
    }
    assert!(
        still_flooding,
        "the admin and the iPad were answered while the flood ran"
    );
}

#[actix_web::test]
async fn unused_challenges_end_and_profile_downloads_are_throttled() {
    let app = TestApp::spawn_with(|s| s.mdm.profile_downloads_per_link_hour = 30).await;
    let (_, secret) = crate::enrollment::enrollment_token(&app, "dl").await;
    let url = app.url(&format!("/enroll/{secret}"));
    let mut limited = None;
    for n in 0..40 {
        let res = app.client.get(&url).send().await.unwrap();
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            limited = Some(n);
            break;
        }
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        limited,
        Some(30),
        "30 downloads of one link an hour, then a wait"
    );
    let issued = app.count("scep_challenges");
    assert_eq!(issued, 30);
    // Nobody used them: a day after they ended they are gone.
    let later = tafel::db::now() + chrono::Duration::days(2);
    let mut conn = app.state.db.get().unwrap();
    let pruned = tafel::enrollment::tokens::prune_challenges(&mut conn, later).unwrap();
    assert_eq!(pruned as i64, issued);
    drop(conn);
    // Guessing links is slowed down per address.
    let mut guessed = None;
    for n in 0..30 {
        let res = app
            .client
            .get(app.url(&format!("/enroll/guess{n:04}")))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            guessed = Some(n);
            break;
        }
        assert_eq!(res.status(), 404);
    }
    assert_eq!(guessed, Some(21));
}

#[actix_web::test]
async fn commands_are_audited_per_school_and_lists_naming_one_id_twice_are_refused() {
    let app = TestApp::spawn().await;
    let a = authority(&app, "aud", 5050).await;
    // An erase wants the number of iPads as confirmation; without it nothing is stored.
    let erase = |confirm: Option<&str>| {
        json!({"udids": [a.devices[0], a.devices[1]], "request_type": "EraseDevice",
               "fields": {"PIN": "123456"}, "confirm": confirm})
    };
    let before = app.count("commands");
    for wrong in [None, Some("1"), Some("zwei")] {
        let (status, reply) = app.post("/api/v1/commands", erase(wrong)).await;
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some("confirm")),
            "{reply}"
        );
        assert!(
            reply["message"].as_str().unwrap().contains("(2)"),
            "{reply}"
        );
    }
    assert_eq!(app.count("commands"), before);
    let (status, reply) = app.post("/api/v1/commands", erase(Some("2"))).await;
    assert_eq!(status, 202, "{reply}");
    let cmd = reply["command_uuid"].as_str().unwrap().to_owned();
    // Each school's admin sees the erase of their own iPad, by name.
    for i in 0..2 {
        let (status, audit) = call(
            &app,
            &a.school_admins[i].1,
            "GET",
            "/api/v1/audit?limit=100",
            None,
        )
        .await;
        assert_eq!(status, 200, "{audit}");
        let entry = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["object_id"] == cmd.as_str())
            .unwrap_or_else(|| panic!("school {i} does not see the erase: {audit}"));
        assert_eq!(entry["summary"]["udids"], json!([a.devices[i]]));
        assert_eq!(entry["summary"]["request_type"], "EraseDevice");
    }
    // A repeated id is the caller's mistake: 400, nothing stored.
    let (_, class) = app
        .post(
            &format!("/api/v1/schools/{}/classes", a.schools[0]),
            json!({"name": "5c", "school_year": "2026/27"}),
        )
        .await;
    let res = app
        .client
        .put(app.url(&format!(
            "/api/v1/classes/{}/teachers",
            class["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.admin_token)
        .json(&json!({"teacher_ids": [a.teachers[0].0, a.teachers[0].0]}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::json_reply(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "teacher_ids");
}

#[actix_web::test]
async fn uploads_take_the_documented_five_mebibytes_and_no_more() {
    let app = TestApp::spawn().await;
    let (_, school) = crate::enrollment::school(&app, "upl").await;
    let post = |body: String| {
        let app = &app;
        let url = app.url(&format!("/api/v1/schools/{school}/import/devices"));
        async move {
            let res = app
                .client
                .post(url)
                .bearer_auth(&app.admin_token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap();
            crate::helpers::json_reply(res).await
        }
    };
    // 300 KiB of devices: above actix's default, within the documented limit.
    let mut csv = String::from("serial,name\n");
    let mut n = 0;
    while csv.len() < 300 * 1024 {
        csv.push_str(&format!(
            "UPL{n:07},iPad {n} der Schule am Ende der langen Straße\n"
        ));
        n += 1;
    }
    let (status, report) = post(csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], n);
    let (status, body) = post("x".repeat(5 * 1024 * 1024 + 1)).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "payload_too_large", "{body}");
}
