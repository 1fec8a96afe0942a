//! Organisation: users and roles, classes and carts, imports, the device list, the
//! audit log, and the authorisation matrix (every role × endpoint × own/foreign).

use crate::enrollment::school;
use crate::helpers::TestApp;
use serde_json::{json, Value};

/// One authority with a school, a class with a teacher, a cart, an enrolled device in
/// both, and users of every role with their tokens.
struct Side {
    tenant: String,
    school: String,
    class: String,
    group: String,
    udid: String,
    authority_admin: String,
    school_admin: String,
    teacher: String,
    teacher_id: String,
    /// The school's Wi-Fi profile.
    wifi: String,
}

pub async fn user(app: &TestApp, body: Value) -> (String, String) {
    let (status, u) = app.post("/api/v1/users", body).await;
    assert_eq!(status, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    let (status, t) = app
        .post(
            &format!("/api/v1/users/{id}/tokens"),
            json!({"name": "test"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    (id, t["token"].as_str().unwrap().to_owned())
}

async fn side(app: &TestApp, slug: &str, device_n: usize) -> Side {
    let (tenant, school) = school(app, slug).await;
    let (_, authority_admin) = user(app, json!({"name": "AA", "email": format!("aa@{slug}.de"), "role": "authority_admin", "tenant_id": tenant})).await;
    let (_, school_admin) = user(app, json!({"name": "SA", "email": format!("sa@{slug}.de"), "role": "school_admin", "school_id": school})).await;
    let (teacher_id, teacher) = user(app, json!({"name": "Frau Meyer", "email": format!("meyer@{slug}.de"), "role": "teacher", "school_id": school})).await;
    let (status, class) = app
        .post(
            &format!("/api/v1/schools/{school}/classes"),
            json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [teacher_id]}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let (status, group) = app
        .post(
            &format!("/api/v1/schools/{school}/groups"),
            json!({"name": "Koffer 1"}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let d = app.device(device_n);
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    app.place_device(d.udid.as_str(), &tenant, &school);
    let udid = d.udid.to_string();
    let class = class["id"].as_str().unwrap().to_owned();
    let group = group["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post(
            &format!("/api/v1/classes/{class}/devices"),
            json!({"devices": [udid]})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/groups/{group}/devices"),
            json!({"devices": [udid]})
        )
        .await
        .0,
        200
    );
    let (status, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school, "values": {"ssid": format!("Netz {slug}"), "password": format!("geheim-{slug}-lang")}}))
        .await;
    assert_eq!(status, 201, "{wifi}");
    Side {
        tenant,
        school,
        class,
        group,
        udid,
        authority_admin,
        school_admin,
        teacher,
        teacher_id,
        wifi: wifi["id"].as_str().unwrap().to_owned(),
    }
}

pub async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app.client.post(app.url(path)),
        "PUT" => app.client.put(app.url(path)),
        other => panic!("{other}"),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::helpers::json_reply(req.send().await.unwrap()).await
}

/// What a request may answer: allowed (anything but 401/403/404), 403 or 404.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Forbidden,
    NotFound,
}

fn verdict(status: u16) -> Expect {
    match status {
        403 => Expect::Forbidden,
        404 => Expect::NotFound,
        401 => panic!("unexpected 401"),
        _ => Expect::Ok,
    }
}

#[actix_web::test]
async fn every_role_sees_exactly_its_part() {
    let app = TestApp::spawn().await;
    let a = side(&app, "aaa", 700).await;
    let b = side(&app, "bbb", 701).await;
    let bogus_cert = json!({"certificate_pem": "not a certificate", "private_key_pem": "x"});
    // (name, method, path for side x, body) — `{}` placeholders filled per side.
    type Endpoint = (
        &'static str,
        &'static str,
        fn(&Side) -> String,
        fn(&Side) -> Option<Value>,
    );
    let endpoints: Vec<Endpoint> = vec![
        (
            "get tenant",
            "GET",
            |s| format!("/api/v1/tenants/{}", s.tenant),
            |_| None,
        ),
        (
            "create school",
            "POST",
            |s| format!("/api/v1/tenants/{}/schools", s.tenant),
            |_| Some(json!({"name": "Neue Schule"})),
        ),
        (
            "get school",
            "GET",
            |s| format!("/api/v1/schools/{}", s.school),
            |_| None,
        ),
        (
            "create token",
            "POST",
            |s| format!("/api/v1/schools/{}/enrollment-tokens", s.school),
            |_| Some(json!({})),
        ),
        (
            "list classes",
            "GET",
            |s| format!("/api/v1/schools/{}/classes", s.school),
            |_| None,
        ),
        (
            "create class",
            "POST",
            |s| format!("/api/v1/schools/{}/classes", s.school),
            |_| Some(json!({"name": "9a", "school_year": "2026/27"})),
        ),
        (
            "get class",
            "GET",
            |s| format!("/api/v1/classes/{}", s.class),
            |_| None,
        ),
        (
            "add to class",
            "POST",
            |s| format!("/api/v1/classes/{}/devices", s.class),
            |s| Some(json!({"devices": [s.udid]})),
        ),
        (
            "get cart",
            "GET",
            |s| format!("/api/v1/groups/{}", s.group),
            |_| None,
        ),
        (
            "get device",
            "GET",
            |s| format!("/api/v1/devices/{}", s.udid),
            |_| None,
        ),
        (
            "device queue",
            "GET",
            |s| format!("/api/v1/devices/{}/commands", s.udid),
            |_| None,
        ),
        (
            "send command",
            "POST",
            |_| "/api/v1/commands".into(),
            |s| Some(json!({"udids": [s.udid], "request_type": "ProfileList"})),
        ),
        (
            "create teacher",
            "POST",
            |_| "/api/v1/users".into(),
            |s| {
                Some(
                    json!({"name": "T", "email": format!("t{}@x.de", s.school), "role": "teacher", "school_id": s.school}),
                )
            },
        ),
        (
            "get teacher",
            "GET",
            |s| format!("/api/v1/users/{}", s.teacher_id),
            |_| None,
        ),
        (
            "import devices",
            "POST",
            |s| format!("/api/v1/schools/{}/import/devices", s.school),
            |_| None,
        ),
        (
            "assign the school's profile",
            "POST",
            |_| "/api/v1/assignments".into(),
            |s| {
                Some(
                    json!({"item_kind": "profile", "item_id": s.wifi, "target_kind": "class", "target_id": s.class}),
                )
            },
        ),
    ];
    let push_path = |s: &Side| format!("/api/v1/tenants/{}/push-certificate", s.tenant);
    use Expect::*;
    // Rows: role → expected for own (A) and foreign (B), in endpoint order.
    type Row<'a> = (&'a str, &'a str, Vec<(Expect, Expect)>);
    let expectations: Vec<Row> = vec![
        (
            "district admin",
            app.admin_token.as_str(),
            vec![(Ok, Ok); 16],
        ),
        ("authority admin", a.authority_admin.as_str(), {
            let mut v = vec![(Ok, NotFound); 16];
            v[11] = (Ok, Ok); // foreign UDIDs are "unknown devices": 400, stored nothing
            v
        }),
        (
            "school admin",
            a.school_admin.as_str(),
            vec![
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, Ok), // foreign UDIDs are "unknown devices": 400, stored nothing
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
            ],
        ),
        (
            "teacher",
            a.teacher.as_str(),
            vec![
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Ok, NotFound),
                (Forbidden, Forbidden),
                (Forbidden, Forbidden),
                (Ok, NotFound),
                (Forbidden, NotFound),
                (Forbidden, Forbidden), // teachers ask through lesson requests
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (role, token, expected) in &expectations {
        for (i, (name, method, path, body)) in endpoints.iter().enumerate() {
            for (side, want) in [(&a, expected[i].0), (&b, expected[i].1)] {
                let (status, reply) = call(&app, token, method, &path(side), body(side)).await;
                let got = verdict(status);
                if got != want {
                    failures.push(format!(
                        "{role} {name} {}: want {want:?}, got {status} {reply}",
                        if std::ptr::eq(side, &a) {
                            "own"
                        } else {
                            "foreign"
                        }
                    ));
                }
            }
        }
        // Push certificates are an authority matter.
        let want_own = if matches!(*role, "district admin" | "authority admin") {
            Ok
        } else {
            Forbidden
        };
        let (status, _) = call(&app, token, "PUT", &push_path(&a), Some(bogus_cert.clone())).await;
        if verdict(status) != want_own {
            failures.push(format!("{role} push certificate own: got {status}"));
        }
        let want_foreign = if *role == "district admin" {
            Ok
        } else {
            NotFound
        };
        let (status, _) = call(&app, token, "PUT", &push_path(&b), Some(bogus_cert.clone())).await;
        if verdict(status) != want_foreign {
            failures.push(format!("{role} push certificate foreign: got {status}"));
        }
        // Creating authorities is the district's.
        let (status, _) = call(
            &app,
            token,
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "X", "slug": format!("x{}", role.len())})),
        )
        .await;
        let want = if *role == "district admin" {
            Ok
        } else {
            Forbidden
        };
        if verdict(status) != want {
            failures.push(format!("{role} create tenant: got {status}"));
        }
        // The audit log is for admins.
        let (status, _) = call(&app, token, "GET", "/api/v1/audit", None).await;
        let want = if *role == "teacher" { Forbidden } else { Ok };
        if verdict(status) != want {
            failures.push(format!("{role} audit: got {status}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[actix_web::test]
async fn lists_show_only_what_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let a = side(&app, "lista", 710).await;
    let b = side(&app, "listb", 711).await;
    // A second device of school A that is in no class of the teacher and no cart.
    let other = app.device(712);
    other.authenticate().await.unwrap();
    other.token_update(false).await.unwrap();
    app.place_device(other.udid.as_str(), &a.tenant, &a.school);

    let udids = |v: &Value| -> Vec<String> {
        let mut u: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["udid"].as_str().unwrap().to_owned())
            .collect();
        u.sort();
        u
    };
    let (_, all) = app.get("/api/v1/devices").await;
    assert_eq!(udids(&all).len(), 3);
    let (_, mine) = call(&app, &a.authority_admin, "GET", "/api/v1/devices", None).await;
    assert_eq!(udids(&mine).len(), 2);
    let (_, teacher) = call(&app, &a.teacher, "GET", "/api/v1/devices", None).await;
    assert_eq!(udids(&teacher), vec![a.udid.clone()]);
    let (status, _) = call(
        &app,
        &a.teacher,
        "GET",
        &format!("/api/v1/devices/{}", other.udid),
        None,
    )
    .await;
    assert_eq!(status, 404, "not in the teacher's classes");
    let (_, tenants) = call(&app, &a.school_admin, "GET", "/api/v1/tenants", None).await;
    assert_eq!(tenants["items"].as_array().unwrap().len(), 1);
    let (_, users) = call(&app, &a.school_admin, "GET", "/api/v1/users", None).await;
    assert!(users["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["school_id"] == a.school.as_str()));
    let (_, my) = call(&app, &a.teacher, "GET", "/api/v1/me/classes", None).await;
    assert_eq!(my["classes"][0]["name"], "7b");
    assert_eq!(my["groups"][0]["name"], "Koffer 1");
    let (_, audit) = call(
        &app,
        &a.school_admin,
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    assert!(!audit["items"].as_array().unwrap().is_empty());
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["school_id"] == a.school.as_str()));
    let _ = b;
}

#[actix_web::test]
async fn the_device_list_filters_and_pages() {
    let app = TestApp::spawn().await;
    let a = side(&app, "filt", 720).await;
    for n in 721..726 {
        let d = app.device(n);
        d.authenticate().await.unwrap();
        d.token_update(false).await.unwrap();
        app.place_device(d.udid.as_str(), &a.tenant, &a.school);
    }
    let (_, page1) = app
        .get(&format!("/api/v1/devices?school_id={}&limit=4", a.school))
        .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 4);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(&format!(
            "/api/v1/devices?school_id={}&limit=4&cursor={cursor}",
            a.school
        ))
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let (_, in_class) = app
        .get(&format!("/api/v1/devices?class_id={}", a.class))
        .await;
    assert_eq!(in_class["items"].as_array().unwrap().len(), 1);
    let (_, by_serial) = app.get("/api/v1/devices?q=dmptest00723").await;
    assert_eq!(by_serial["items"][0]["serial_number"], "DMPTEST00723");
    let (_, by_os) = app
        .get("/api/v1/devices?os_version=18.*&model=iPad13,18&enrolled=true")
        .await;
    assert_eq!(by_os["items"].as_array().unwrap().len(), 6);
    let (_, none) = app.get("/api/v1/devices?os_version=17.*").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (_, recent) = app.get("/api/v1/devices?last_seen_after=2020-01-01T00:00:00Z&last_seen_before=2099-01-01T00:00:00Z").await;
    assert_eq!(recent["items"].as_array().unwrap().len(), 6);
    let (status, body) = app.get("/api/v1/devices?limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
    let (status, _) = app.get("/api/v1/devices?colour=red").await;
    assert_eq!(status, 400);
}

async fn post_csv(app: &TestApp, path: &str, csv: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    crate::helpers::json_reply(res).await
}

#[actix_web::test]
async fn imports_are_all_or_nothing_and_imported_devices_land_when_they_enroll() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "imp").await;
    let classes = "class;school_year;teacher_email;teacher_name\n5a;2026/27;mueller@imp.de;Herr Müller\n5b;2026/27;schulz@imp.de|mueller@imp.de;Frau Schulz|Herr Müller\n";
    let (status, report) = post_csv(
        &app,
        &format!("/api/v1/schools/{school_id}/import/classes"),
        classes,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2);
    assert_eq!(report["users_created"], 2);

    // One bad row rejects the whole file and stores nothing.
    let before = (
        app.count("devices"),
        app.count("group_devices"),
        app.count("audit_log"),
    );
    let bad =
        "serial,class,cart\nDMPIMP00001,5a,Koffer 1\nDMPIMP00002,9z,Koffer 1\nbad serial!,5a,\n";
    let (status, body) = post_csv(
        &app,
        &format!("/api/v1/schools/{school_id}/import/devices"),
        bad,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let errors = body["report"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 3);
    assert!(errors[0]["message"].as_str().unwrap().contains("9z"));
    assert_eq!(errors[1]["line"], 4);
    assert_eq!(
        before,
        (
            app.count("devices"),
            app.count("group_devices"),
            app.count("audit_log")
        )
    );

    let good = "serial,class,cart,name\nDMPTEST00730,5a,Koffer 1,iPad 01\nDMPTEST00731,5b,Koffer 1,iPad 02\n";
    let (status, report) = post_csv(
        &app,
        &format!("/api/v1/schools/{school_id}/import/devices"),
        good,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2);
    let (_, pending) = app
        .get(&format!(
            "/api/v1/devices?school_id={school_id}&status=pending"
        ))
        .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);

    // The iPad with serial DMPTEST00730 enrolls through its school's link (test device
    // 730 has that serial).
    let link = crate::enrollment::token(&app, &school_id, json!({"description": "Koffer 1"})).await;
    let d = app.device_with_token(730, link["id"].as_str().unwrap());
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", d.udid)).await;
    assert_eq!(dev["school_id"], school_id.as_str());
    assert_eq!(dev["tenant_id"], tenant.as_str());
    assert_eq!(dev["name"], "iPad 01");
    let (_, classes) = app
        .get(&format!("/api/v1/schools/{school_id}/classes"))
        .await;
    let class_5a = classes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "5a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, members) = app
        .get(&format!("/api/v1/devices?class_id={class_5a}"))
        .await;
    assert_eq!(members["items"][0]["udid"], d.udid.as_str());
    assert_eq!(
        app.count("devices"),
        2,
        "the enrolling iPad took over its imported row"
    );

    let (status, body) = post_csv(
        &app,
        &format!("/api/v1/schools/{school_id}/import/devices"),
        "seriennummer\nX\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[actix_web::test]
async fn teachers_log_in_with_a_password_and_tokens_can_be_revoked() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "login").await;
    let (status, u) = app
        .post("/api/v1/users", json!({"name": "Frau Kaya", "email": "Kaya@Login.de", "role": "teacher", "school_id": school_id, "password": "correct horse battery"}))
        .await;
    assert_eq!(status, 201, "{u}");
    assert!(u.get("password_hash").is_none());
    let (status, _) = app.post("/api/v1/users", json!({"name": "Short", "email": "s@login.de", "role": "teacher", "school_id": school_id, "password": "short"})).await;
    assert_eq!(status, 400);
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .json(&json!({"email": "kaya@login.de", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .json(&json!({"email": "kaya@login.de", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let (status, me) = call(&app, &token, "GET", "/api/v1/me", None).await;
    assert_eq!((status, me["email"].as_str()), (200, Some("kaya@login.de")));
    let (_, tokens) = app
        .get(&format!(
            "/api/v1/users/{}/tokens",
            u["id"].as_str().unwrap()
        ))
        .await;
    let item = &tokens["items"][0];
    assert!(item["expires_at"].is_string());
    assert!(item.get("token_sha256").is_none());
    let (status, _) = app
        .post(
            &format!("/api/v1/tokens/{}/revoke", item["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
