//! Passwords: a user changes their own (the current one checked, the rules kept, their
//! other sessions ended); an admin gives a user below them — a teacher the class import
//! created without one, say — a one-time password, which logs in once, within 72 hours,
//! and only to choose their own; a reset ends every token and session of the user; a
//! school admin reaches no one outside their school or above them. Then the same in the
//! console, over plain HTTP.

use reqwest::header::LOCATION;
use reqwest::Method;
use serde_json::{json, Value};

use crate::console::{self, user, PASSWORD};
use crate::enrollment::school;
use crate::helpers::TestApp;

/// `POST /api/v1/login`: status, body.
async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    crate::helpers::json_reply(res).await
}

/// A login that must work: its token.
async fn token_of(app: &TestApp, email: &str, password: &str) -> String {
    let (status, body) = login(app, email, password).await;
    assert_eq!(status, 200, "{email}: {body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn change(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.send(Method::PUT, "/api/v1/me/password", token, Some(body))
        .await
}

async fn reset(app: &TestApp, token: &str, user_id: &str) -> (u16, Value) {
    app.send(
        Method::POST,
        &format!("/api/v1/users/{user_id}/password-reset"),
        token,
        None,
    )
    .await
}

/// Posts a class CSV as the district admin (unknown teacher e-mails become teachers
/// without a password).
async fn import_classes(app: &TestApp, school_id: &str, csv: &str) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/schools/{school_id}/import/classes")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let (status, report) = crate::helpers::json_reply(res).await;
    assert_eq!(status, 200, "{report}");
}

/// The id of the user with this e-mail.
async fn id_of(app: &TestApp, email: &str) -> String {
    let (status, page) = app.get(&format!("/api/v1/users?q={email}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"][0]["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_teacher_changes_their_password_only_with_the_current_one_and_their_other_sessions_end() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "own").await;
    user(&app, "lehrkraft@own-schule.de", "teacher", Some(&school_id)).await;
    let here = token_of(&app, "lehrkraft@own-schule.de", PASSWORD).await;
    let elsewhere = token_of(&app, "lehrkraft@own-schule.de", PASSWORD).await;
    let audit_before = app.count("audit_log");

    // A wrong current password: refused, nothing stored, nothing ended.
    let (status, body) = change(
        &app,
        &here,
        json!({"current_password": "not my password at all", "new_password": "Kreide und Schwamm 7b"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["field"], "current_password");
    // Without it: 400.
    let (status, body) = change(
        &app,
        &here,
        json!({"new_password": "Kreide und Schwamm 7b"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "current_password");
    // The rules: long enough, bounded, not the e-mail.
    for bad in ["kurz", &"x".repeat(129), "Lehrkraft@Own-Schule.de"] {
        let (status, body) = change(
            &app,
            &here,
            json!({"current_password": PASSWORD, "new_password": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], "new_password");
    }
    assert_eq!(
        app.count("audit_log"),
        audit_before,
        "a refusal stores nothing"
    );
    let (status, _) = app.send(Method::GET, "/api/v1/me", &elsewhere, None).await;
    assert_eq!(status, 200, "a refusal ends no session");

    let (status, body) = change(
        &app,
        &here,
        json!({"current_password": PASSWORD, "new_password": "Kreide und Schwamm 7b"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended_sessions"], 1);
    let (status, _) = app.send(Method::GET, "/api/v1/me", &elsewhere, None).await;
    assert_eq!(status, 401, "the other session ended");
    let (status, me) = app.send(Method::GET, "/api/v1/me", &here, None).await;
    assert_eq!(status, 200, "the session it was changed in stays: {me}");
    assert_eq!(me["password_must_change"], false);

    assert_eq!(
        login(&app, "lehrkraft@own-schule.de", PASSWORD).await.0,
        401
    );
    token_of(&app, "lehrkraft@own-schule.de", "Kreide und Schwamm 7b").await;

    let (_, audit) = app.get("/api/v1/audit?action=change_password").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert!(!audit.to_string().contains("Schwamm"), "never the password");
}

#[actix_web::test]
async fn an_imported_teacher_gets_a_one_time_password_that_logs_in_once_and_only_to_choose_their_own(
) {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "otp").await;
    import_classes(
        &app,
        &school_id,
        "class;school_year;teacher_email;teacher_name\n7b;2026/27;krause@otp.de;Frau Krause\n",
    )
    .await;
    let teacher = id_of(&app, "krause@otp.de").await;
    user(&app, "sl@otp.de", "school_admin", Some(&school_id)).await;
    let admin = token_of(&app, "sl@otp.de", PASSWORD).await;

    // The import gave her no password: she cannot log in.
    assert_eq!(login(&app, "krause@otp.de", "").await.0, 401);

    let (status, issued) = reset(&app, &admin, &teacher).await;
    assert_eq!(status, 200, "{issued}");
    let otp = issued["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(otp.len(), 19, "{otp}");
    let expires = chrono::DateTime::parse_from_rfc3339(issued["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let hours = (expires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((71.9..=72.0).contains(&hours), "valid 72 hours: {hours}");
    let (_, listed) = app.get(&format!("/api/v1/users/{teacher}")).await;
    assert_eq!(listed["password_must_change"], true, "{listed}");

    let (status, body) = login(&app, "krause@otp.de", &otp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["password_must_change"], true);
    let first = body["token"].as_str().unwrap().to_owned();

    // Good for who she is and her password, nothing else.
    let (status, me) = app.send(Method::GET, "/api/v1/me", &first, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["password_must_change"], true);
    for path in ["/api/v1/me/classes", "/api/v1/devices"] {
        let (status, body) = app.send(Method::GET, path, &first, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"], "password_change_required");
    }
    // Once: a second login with it fails.
    let (status, body) = login(&app, "krause@otp.de", &otp).await;
    assert_eq!(status, 401, "{body}");

    // Her own, without the one-time password again: the login proved it.
    let (status, body) = change(
        &app,
        &first,
        json!({"new_password": "Tafel, Kreide, Schwamm"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, classes) = app
        .send(Method::GET, "/api/v1/me/classes", &first, None)
        .await;
    assert_eq!(status, 200, "now everything her role allows: {classes}");
    let (status, body) = login(&app, "krause@otp.de", "Tafel, Kreide, Schwamm").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["password_must_change"], false);
    assert_eq!(login(&app, "krause@otp.de", &otp).await.0, 401);

    // The audit names the reset and the change, never a password.
    let (_, audit) = app.get(&format!("/api/v1/audit?object_id={teacher}")).await;
    let text = audit.to_string();
    assert!(
        text.contains("reset_password") && text.contains("change_password"),
        "{text}"
    );
    assert!(!text.contains(&otp) && !text.contains("Schwamm"), "{text}");
}

#[actix_web::test]
async fn after_a_class_import_the_school_admin_gets_first_logins_for_the_new_teachers_only() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "first").await;
    let (_, elsewhere) = school(&app, "first-b").await;
    user(&app, "sl@first.de", "school_admin", Some(&school_id)).await;
    user(&app, "sl@first-b.de", "school_admin", Some(&elsewhere)).await;
    user(&app, "alt@first.de", "teacher", Some(&school_id)).await;
    import_classes(
        &app,
        &school_id,
        "class;school_year;teacher_email;teacher_name\n5a;2026/27;berg@first.de;Herr Berg\n5b;2026/27;adam@first.de;Frau Adam\n",
    )
    .await;
    let path = format!("/api/v1/schools/{school_id}/first-logins");

    let other = token_of(&app, "sl@first-b.de", PASSWORD).await;
    let (status, body) = app.send(Method::POST, &path, &other, None).await;
    assert_eq!(status, 404, "another school's admin: {body}");
    let teacher = token_of(&app, "alt@first.de", PASSWORD).await;
    let (status, body) = app.send(Method::POST, &path, &teacher, None).await;
    assert_eq!(status, 403, "{body}");

    let admin = token_of(&app, "sl@first.de", PASSWORD).await;
    let (status, body) = app.send(Method::POST, &path, &admin, None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Frau Adam", "Herr Berg"],
        "by name, only those without a password"
    );
    for item in items {
        let email = item["email"].as_str().unwrap();
        let (status, login) = login(&app, email, item["one_time_password"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{login}");
        assert_eq!(login["password_must_change"], true);
    }
    token_of(&app, "alt@first.de", PASSWORD).await;
    // Again: no one new, no one's waiting password replaced.
    let (status, body) = app.send(Method::POST, &path, &admin, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
}

#[actix_web::test]
async fn a_reset_ends_every_token_and_session_of_the_user() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "ends").await;
    let teacher = user(&app, "t@ends.de", "teacher", Some(&school_id)).await;
    let session = token_of(&app, "t@ends.de", PASSWORD).await;
    let (status, issued) = app
        .post(
            &format!("/api/v1/users/{teacher}/tokens"),
            json!({"name": "Untis"}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let script = issued["token"].as_str().unwrap().to_owned();
    let console = console::login(&app.base, "t@ends.de", PASSWORD)
        .await
        .unwrap();

    let (status, body) = reset(&app, &app.admin_token, &teacher).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ended_sessions"].as_u64().unwrap() >= 3, "{body}");
    for token in [&session, &script] {
        let (status, _) = app.send(Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(status, 401);
    }
    let (status, _) = console.get("/unterricht").await;
    assert_eq!(status, 303, "the console session ended too");
    assert_eq!(
        login(&app, "t@ends.de", PASSWORD).await.0,
        401,
        "the old password is gone"
    );
}

#[actix_web::test]
async fn a_school_admin_resets_only_the_teachers_of_their_own_school() {
    let app = TestApp::spawn().await;
    let (tenant, school_a) = school(&app, "scope").await;
    let (status, b) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Realschule Süd"}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let school_b = b["id"].as_str().unwrap().to_owned();
    let sl = user(&app, "sl@scope.de", "school_admin", Some(&school_a)).await;
    let peer = user(&app, "sl2@scope.de", "school_admin", Some(&school_a)).await;
    let mine = user(&app, "t@scope.de", "teacher", Some(&school_a)).await;
    let other = user(&app, "t@scope-b.de", "teacher", Some(&school_b)).await;
    let (status, aa) = app
        .post(
            "/api/v1/users",
            json!({"name": "Träger", "email": "aa@scope.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{aa}");
    let authority_admin = aa["id"].as_str().unwrap().to_owned();
    let admin = token_of(&app, "sl@scope.de", PASSWORD).await;
    user(&app, "t2@scope.de", "teacher", Some(&school_a)).await;
    let teacher = token_of(&app, "t2@scope.de", PASSWORD).await;
    let audit_before = app.count("audit_log");

    for (who, id, expected) in [
        ("an authority admin", &authority_admin, 404),
        ("a teacher of another school", &other, 404),
        ("a school admin of the same rank", &peer, 403),
        ("oneself", &sl, 409),
    ] {
        let (status, body) = reset(&app, &admin, id).await;
        assert_eq!(status, expected, "{who}: {body}");
        assert!(body.get("one_time_password").is_none());
    }
    let (status, body) = reset(&app, &teacher, &other).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = reset(&app, &teacher, &mine).await;
    assert_eq!(status, 403, "teachers reset no one: {body}");
    assert_eq!(
        app.count("audit_log"),
        audit_before,
        "refusals store nothing"
    );
    for email in ["aa@scope.de", "t@scope-b.de", "sl2@scope.de", "sl@scope.de"] {
        token_of(&app, email, PASSWORD).await;
    }

    let (status, body) = reset(&app, &admin, &mine).await;
    assert_eq!(status, 200, "{body}");
    // The authority's admin reaches the other school's teacher.
    let aa_token = token_of(&app, "aa@scope.de", PASSWORD).await;
    let (status, body) = reset(&app, &aa_token, &other).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn a_one_time_password_no_longer_logs_in_after_72_hours() {
    use diesel::prelude::*;
    use tafel::db::schema::users;

    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "late").await;
    let teacher = user(&app, "t@late.de", "teacher", Some(&school_id)).await;
    let (status, issued) = reset(&app, &app.admin_token, &teacher).await;
    assert_eq!(status, 200, "{issued}");
    let otp = issued["one_time_password"].as_str().unwrap().to_owned();

    // 72 hours and a minute later.
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
    let mut conn = app.state.db.get().unwrap();
    diesel::update(users::table.find(&teacher))
        .set(users::password_expires_at.eq(past))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);

    let (status, body) = login(&app, "t@late.de", &otp).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // A new reset helps.
    let (_, issued) = reset(&app, &app.admin_token, &teacher).await;
    let otp = issued["one_time_password"].as_str().unwrap();
    let (status, body) = login(&app, "t@late.de", otp).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn the_last_district_admin_who_forgot_their_password_gets_back_in_on_the_command_line() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/users",
            json!({"name": "Kreis", "email": "it@kreis.de", "role": "district_admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let run = |email: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tafel"));
        cmd.current_dir(dir.path()).args(["reset-password", email]);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
            cmd.env_remove(k);
        }
        cmd.env("TAFEL_DATABASE_URL", &app.state.settings.database_url);
        cmd.output().unwrap()
    };
    let o = run("nobody@kreis.de");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no enabled user"));

    let o = run("IT@kreis.de");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let otp = out
        .lines()
        .next()
        .and_then(|l| l.rsplit(": ").next())
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(otp.len(), 19, "{out}");
    assert_eq!(login(&app, "it@kreis.de", PASSWORD).await.0, 401);
    let (status, body) = login(&app, "it@kreis.de", &otp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["password_must_change"], true);
}

// ---------------------------------------------------------------------------------------
// The console

/// The one-time password on the reset's answer page.
fn shown_password(html: &str) -> String {
    let at = html
        .find("<code id=\"one-time-password\">")
        .unwrap_or_else(|| panic!("no one-time password in {html}"));
    let rest = &html[at + 29..];
    rest[..rest.find('<').unwrap()].to_owned()
}

/// The forced password form after a one-time password, sent on to `/unterricht`.
async fn choose(
    t: &console::Session,
    new: &str,
    repeat: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    t.post(
        "/passwort",
        &[
            ("csrf", &t.csrf),
            ("new", new),
            ("repeat", repeat),
            ("next", "/unterricht"),
        ],
    )
    .await
}

#[actix_web::test]
async fn console_a_school_admin_resets_a_teachers_password_and_the_teacher_chooses_one_first() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "cotp").await;
    user(&app, "sl@cotp.de", "school_admin", Some(&school_id)).await;
    let teacher = user(&app, "t@cotp.de", "teacher", Some(&school_id)).await;
    let admin = console::login(&app.base, "sl@cotp.de", PASSWORD)
        .await
        .unwrap();

    let (status, html) = admin.get(&format!("/admin/benutzer/{teacher}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Passwort zurücksetzen"), "{html}");
    let path = format!("/admin/benutzer/{teacher}/passwort");
    let (status, _, _) = admin.post(&path, &[("csrf", &admin.csrf)]).await;
    assert_eq!(status, 400, "unconfirmed");
    let (status, _, _) = admin
        .post(&path, &[("csrf", "forged"), ("confirm", "ja")])
        .await;
    assert_eq!(status, 403, "a form without the session's token");
    assert_eq!(
        login(&app, "t@cotp.de", PASSWORD).await.0,
        200,
        "nothing reset yet"
    );
    let (status, _, html) = admin
        .post(&path, &[("csrf", &admin.csrf), ("confirm", "ja")])
        .await;
    assert_eq!(status, 200, "{html}");
    let otp = shown_password(&html);
    assert!(html.contains("nur jetzt angezeigt"), "{html}");
    let (_, html) = admin.get(&format!("/admin/benutzer/{teacher}")).await;
    assert!(html.contains("wartet auf eigenes Passwort"), "{html}");
    assert!(!html.contains(&otp), "shown once");

    // The teacher logs in with it and lands on the password form, wherever she goes.
    let t = console::login(&app.base, "t@cotp.de", &otp).await.unwrap();
    let res = console::client()
        .get(app.url("/unterricht"))
        .header("cookie", format!("tafel_session={}", t.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/passwort?next=%2Funterricht");
    let (status, html) = t.get("/passwort?next=%2Funterricht").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Einmalpasswort"), "{html}");
    assert!(
        !html.contains("autocomplete=\"current-password\""),
        "no current one to ask for"
    );
    assert!(html.contains("autocomplete=\"new-password\""), "{html}");

    let (status, _, html) = choose(&t, "Tafel und Kreide 7b", "Tafel und Kreide 7c").await;
    assert_eq!(status, 400);
    assert!(html.contains("stimmen nicht überein"), "{html}");
    let (status, _, html) = choose(&t, "kurz", "kurz").await;
    assert_eq!(status, 400);
    assert!(html.contains("zu kurz"), "{html}");
    let (status, h, html) = choose(&t, "Tafel und Kreide 7b", "Tafel und Kreide 7b").await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(h[LOCATION], "/unterricht");
    let (status, html) = t.get("/unterricht").await;
    assert_eq!(status, 200, "the same session goes on: {html}");
    console::login(&app.base, "t@cotp.de", "Tafel und Kreide 7b")
        .await
        .unwrap();
}

#[actix_web::test]
async fn console_every_role_finds_change_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "cown").await;
    user(&app, "t@cown.de", "teacher", Some(&school_id)).await;
    let s = console::login(&app.base, "t@cown.de", PASSWORD)
        .await
        .unwrap();
    let other = console::login(&app.base, "t@cown.de", PASSWORD)
        .await
        .unwrap();
    let (_, html) = s.get("/unterricht").await;
    assert!(
        html.contains("href=\"/passwort\""),
        "in every page's header: {html}"
    );
    let (status, html) = s.get("/passwort").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("autocomplete=\"current-password\""), "{html}");
    assert!(html.contains("<label for=\"new\">"), "{html}");

    let (status, _, html) = s
        .post(
            "/passwort",
            &[
                ("csrf", &s.csrf),
                ("current", "falsch falsch falsch"),
                ("new", "Pausenhof im Regen"),
                ("repeat", "Pausenhof im Regen"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert!(html.contains("aktuelle Passwort ist falsch"), "{html}");
    let (status, _, html) = s
        .post(
            "/passwort",
            &[
                ("csrf", &s.csrf),
                ("current", PASSWORD),
                ("new", "Pausenhof im Regen"),
                ("repeat", "Pausenhof im Regen"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Ihr Passwort ist geändert"), "{html}");
    let (status, _) = other.get("/unterricht").await;
    assert_eq!(status, 303, "the other browser is logged out");
    let (status, _) = s.get("/unterricht").await;
    assert_eq!(status, 200, "this one stays");
    console::login(&app.base, "t@cown.de", "Pausenhof im Regen")
        .await
        .unwrap();
}

/// Logs in through the form in the browser and waits for `landing` (something the log-in
/// page does not have).
async fn log_in(
    b: &crate::browser::Browser,
    app: &TestApp,
    email: &str,
    password: &str,
    landing: &str,
) {
    b.goto(&app.url("/login")).await;
    b.find("#email").await.send_keys(email).await;
    b.find("#password").await.send_keys(password).await;
    b.find("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await;
    b.wait_for(landing, std::time::Duration::from_secs(20))
        .await;
}

/// In a real browser: a school admin resets a teacher's password and reads the one-time
/// password off the page; the teacher logs in with it, is sent to the password form, and
/// after choosing hers reaches her classes. axe-core finds no serious or critical WCAG
/// 2.1 AA violation on the user page, the reset's answer and both password forms.
#[actix_web::test]
async fn browser_a_forgotten_password_is_reset_and_replaced() {
    let Some(b) = crate::browser::browser_or_skip().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "baxe").await;
    user(&app, "sl@baxe.de", "school_admin", Some(&school_id)).await;
    let teacher = user(&app, "t@baxe.de", "teacher", Some(&school_id)).await;
    let wait = std::time::Duration::from_secs(20);
    log_in(&b, &app, "sl@baxe.de", PASSWORD, "header nav").await;
    b.goto(&app.url(&format!("/admin/benutzer/{teacher}")))
        .await;
    b.wait_for("#reset-h", wait).await;
    b.assert_accessible("user page with the reset").await;
    b.find("#reset-confirm").await.click().await;
    b.find("form[action$='/passwort'] button[type=submit]")
        .await
        .click()
        .await;
    let otp = b.wait_for("#one-time-password", wait).await.text().await;
    b.assert_accessible("the one-time password").await;
    b.goto(&app.url("/passwort")).await;
    b.wait_for("#new", wait).await;
    b.assert_accessible("own password form").await;
    b.find("form[action='/logout'] button[type=submit]")
        .await
        .click()
        .await;
    b.wait_for("#email", wait).await;

    // The forced form: no navigation, only the new password.
    log_in(&b, &app, "t@baxe.de", otp.trim(), "#new").await;
    assert!(
        b.current_url().await.contains("/passwort"),
        "sent to the form"
    );
    b.assert_accessible("forced password form").await;
    b.find("#new").await.send_keys("Tafel und Kreide 7b").await;
    b.find("#repeat")
        .await
        .send_keys("Tafel und Kreide 7b")
        .await;
    b.find("form[action='/passwort'] button[type=submit]")
        .await
        .click()
        .await;
    b.wait_for("header nav", wait).await;
    assert!(!b.current_url().await.contains("/passwort"));
    b.close().await;
}
