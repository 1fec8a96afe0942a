//! The console's people and organisation pages over plain HTTP: a school admin creates a
//! teacher who then logs in; refusals (a role above the admin's, a taken e-mail, a form
//! without the session's token) show the reason and store nothing; a district admin sets
//! up an authority with a school; a class gets its teacher, who then sees it under
//! "Meine Klassen". In a real browser, every new page passes axe-core.

use std::time::Duration;

use chrono::Datelike;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::browser::browser_or_skip;
use crate::console::{login, user, Session, PASSWORD};
use crate::enrollment::school;
use crate::helpers::TestApp;

/// The tables a refused form must leave as they were.
const TABLES: [&str; 6] = [
    "tenants",
    "schools",
    "users",
    "classes",
    "class_teachers",
    "device_groups",
];

fn counts(app: &TestApp) -> Vec<i64> {
    TABLES.iter().map(|t| app.count(t)).collect()
}

/// Where a 303 answer sends the browser.
fn location(h: &reqwest::header::HeaderMap) -> String {
    h[LOCATION].to_str().unwrap().to_owned()
}

/// The school year of today in Berlin (August to July), as the class form offers it.
fn this_school_year() -> String {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let start = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    format!("{start}/{:02}", (start + 1) % 100)
}

async fn new_user(
    admin: &Session,
    name: &str,
    email: &str,
    role: &str,
    place: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    admin
        .post(
            "/admin/benutzer",
            &[
                ("csrf", &admin.csrf),
                ("name", name),
                ("email", email),
                ("role", role),
                ("place", place),
                ("password", password),
            ],
        )
        .await
}

#[actix_web::test]
async fn a_school_admin_creates_a_teacher_who_can_then_log_in() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "people").await;
    user(&app, "sl@people.de", "school_admin", Some(&school_id)).await;
    let admin = login(&app.base, "sl@people.de", PASSWORD).await.unwrap();

    let (status, html) = admin.get("/admin/benutzer/neu").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("value=\"teacher\""), "{html}");
    for above in ["district_admin", "authority_admin", "school_admin"] {
        assert!(
            !html.contains(&format!("value=\"{above}\"")),
            "a school admin is not offered {above}"
        );
    }
    assert!(html.contains(&format!("value=\"school:{school_id}\"")));

    let (status, h, body) = new_user(
        &admin,
        "Frau Meyer",
        "meyer@people.de",
        "teacher",
        &format!("school:{school_id}"),
        "Kreide-und-Tafel-2026",
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let to = location(&h);
    assert!(to.starts_with("/admin/benutzer/"), "{to}");
    let (status, html) = admin.get(&to).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Frau Meyer") && html.contains("Lehrkraft"),
        "{html}"
    );
    assert!(html.contains("Gymnasium Nord"), "the school's name: {html}");

    let (_, html) = admin.get("/admin/benutzer?rolle=teacher&q=meyer").await;
    assert!(html.contains("Frau Meyer"), "{html}");
    let (_, html) = admin.get("/admin/benutzer?rolle=school_admin").await;
    assert!(!html.contains("Frau Meyer"), "{html}");

    let teacher = login(&app.base, "meyer@people.de", "Kreide-und-Tafel-2026")
        .await
        .expect("the new teacher logs in");
    let (status, html) = teacher.get("/unterricht").await;
    assert_eq!(status, 200);
    assert!(html.contains("Meine Klassen"), "{html}");
    let (status, _) = teacher.get("/admin/benutzer").await;
    assert_eq!(status, 403, "teachers manage no users");

    // Renamed, then disabled (only with the box ticked); she cannot log in any more.
    let id = to.trim_start_matches("/admin/benutzer/").to_owned();
    let (status, _, body) = admin
        .post(
            &to,
            &[
                ("csrf", &admin.csrf),
                ("name", "Dr. Meyer"),
                ("email", "meyer@people.de"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let (_, u) = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(u["name"], "Dr. Meyer");
    let disable = format!("{to}/deaktivieren");
    let (status, _, _) = admin.post(&disable, &[("csrf", &admin.csrf)]).await;
    assert_eq!(status, 400, "not without the confirmation");
    let (status, _, _) = admin
        .post(&disable, &[("csrf", &admin.csrf), ("confirm", "ja")])
        .await;
    assert_eq!(status, 303);
    assert!(login(&app.base, "meyer@people.de", "Kreide-und-Tafel-2026")
        .await
        .is_err());
    let (_, me) = teacher.get("/unterricht").await;
    assert!(!me.contains("Meine Klassen"), "her session ended too");
}

#[actix_web::test]
async fn a_school_admin_cannot_create_anyone_above_a_teacher() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "people-up").await;
    let sl = user(&app, "sl@people.de", "school_admin", Some(&school_id)).await;
    let admin = login(&app.base, "sl@people.de", PASSWORD).await.unwrap();
    let before = counts(&app);
    for (role, place) in [
        ("district_admin", String::new()),
        ("school_admin", format!("school:{school_id}")),
    ] {
        let (status, _, html) = new_user(&admin, "Boss", "boss@people.de", role, &place, "").await;
        assert_eq!(status, 403, "{role}: {html}");
        assert!(html.contains("Keine Berechtigung"), "{html}");
        assert!(html.contains("id=\"form-error\""), "the form again: {html}");
    }
    assert_eq!(counts(&app), before, "nothing stored");
    // Nor disable themselves.
    let (status, _, _) = admin
        .post(
            &format!("/admin/benutzer/{sl}/deaktivieren"),
            &[("csrf", &admin.csrf), ("confirm", "ja")],
        )
        .await;
    assert_eq!(status, 409);
}

#[actix_web::test]
async fn a_taken_email_is_refused_with_the_form_kept_but_not_the_password() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "people-dup").await;
    user(&app, "sl@people.de", "school_admin", Some(&school_id)).await;
    user(&app, "meyer@people.de", "teacher", Some(&school_id)).await;
    let admin = login(&app.base, "sl@people.de", PASSWORD).await.unwrap();
    let before = counts(&app);
    let secret = "Geheimnis-der-Lehrkraft-42";
    let (status, _, html) = new_user(
        &admin,
        "Zweite Meyer",
        "Meyer@People.de",
        "teacher",
        &format!("school:{school_id}"),
        secret,
    )
    .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("schon vergeben"), "{html}");
    assert!(
        html.contains("value=\"Zweite Meyer\""),
        "the name stays: {html}"
    );
    assert!(!html.contains(secret), "the password is never sent back");
    // Too short a password: 400, the form again.
    let (status, _, html) = new_user(
        &admin,
        "Herr Kurz",
        "kurz@people.de",
        "teacher",
        &format!("school:{school_id}"),
        "kurz",
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Bitte die Eingaben prüfen"), "{html}");
    assert_eq!(counts(&app), before, "nothing stored");
}

#[actix_web::test]
async fn a_district_admin_creates_an_authority_and_a_school() {
    let app = TestApp::spawn().await;
    user(&app, "kreis@people.de", "district_admin", None).await;
    let district = login(&app.base, "kreis@people.de", PASSWORD).await.unwrap();
    let (status, html) = district.get("/admin/schultraeger").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Schulträger anlegen"), "{html}");

    let (status, h, body) = district
        .post(
            "/admin/schultraeger",
            &[
                ("csrf", &district.csrf),
                ("name", "Stadt Norderstedt"),
                ("slug", "norderstedt"),
                ("push_topic", ""),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let page = location(&h);
    let tenant = page.trim_start_matches("/admin/schultraeger/").to_owned();
    let (status, html) = district.get(&page).await;
    assert_eq!(status, 200);
    assert!(html.contains("Stadt Norderstedt") && html.contains("Europe/Berlin"));

    let (status, h, body) = district
        .post(
            &format!("{page}/schulen"),
            &[
                ("csrf", &district.csrf),
                ("name", "Gymnasium Harksheide"),
                ("timezone", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let school_page = location(&h);
    let (status, html) = district.get(&school_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("Gymnasium Harksheide"), "{html}");
    let (_, s) = app
        .get(&format!("/api/v1/schools?tenant_id={tenant}"))
        .await;
    assert_eq!(s["items"][0]["timezone"], "Europe/Berlin", "{s}");
    let (_, html) = district.get("/admin/schultraeger").await;
    assert!(html.contains("norderstedt"));

    // The slug is taken: 409, nothing new.
    let before = counts(&app);
    let (status, _, _) = district
        .post(
            "/admin/schultraeger",
            &[
                ("csrf", &district.csrf),
                ("name", "Noch einmal"),
                ("slug", "norderstedt"),
            ],
        )
        .await;
    assert_eq!(status, 409);
    // A school admin of the new school may not create authorities or schools.
    let school_id = school_page.trim_start_matches("/admin/schulen/");
    user(&app, "sl@people.de", "school_admin", Some(school_id)).await;
    let admin = login(&app.base, "sl@people.de", PASSWORD).await.unwrap();
    let before_admin = counts(&app);
    let (status, _, _) = admin
        .post(
            "/admin/schultraeger",
            &[("csrf", &admin.csrf), ("name", "X"), ("slug", "x")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = admin
        .post(
            &format!("{page}/schulen"),
            &[("csrf", &admin.csrf), ("name", "Y")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(counts(&app), before_admin);
    assert_eq!(before[0], before_admin[0], "still one authority");
}

#[actix_web::test]
async fn a_class_gets_its_teacher_who_then_sees_it() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "people-class").await;
    user(&app, "sl@people.de", "school_admin", Some(&school_id)).await;
    let meyer = user(&app, "meyer@people.de", "teacher", Some(&school_id)).await;
    let admin = login(&app.base, "sl@people.de", PASSWORD).await.unwrap();

    let (status, html) = admin.get(&format!("/admin/schulen/{school_id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("/admin/schulen/{school_id}/klassen/neu")));
    assert!(html.contains(&format!("/admin/schulen/{school_id}/wagen/neu")));
    let (status, html) = admin
        .get(&format!("/admin/schulen/{school_id}/klassen/neu"))
        .await;
    assert_eq!(status, 200, "{html}");
    let year = this_school_year();
    assert!(
        html.contains(&format!("value=\"{year}\"")),
        "{year}: {html}"
    );
    assert!(html.contains(&format!("value=\"{meyer}\"")), "{html}");

    let (status, h, body) = admin
        .post(
            &format!("/admin/schulen/{school_id}/klassen"),
            &[
                ("csrf", &admin.csrf),
                ("name", "7b"),
                ("school_year", &year),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let class_page = location(&h);
    let (status, html) = admin.get(&class_page).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Klasse 7b") && !html.contains(" checked"),
        "{html}"
    );
    let (status, _, body) = admin
        .post(&class_page, &[("csrf", &admin.csrf), ("teacher", &meyer)])
        .await;
    assert_eq!(status, 303, "{body}");
    let (_, html) = admin.get(&class_page).await;
    assert!(html.contains(" checked"), "{html}");
    let (_, html) = admin.get(&format!("/admin/benutzer/{meyer}")).await;
    assert!(html.contains(&format!("7b ({year})")), "{html}");

    // A cart.
    let (status, h, body) = admin
        .post(
            &format!("/admin/schulen/{school_id}/wagen"),
            &[("csrf", &admin.csrf), ("name", "Wagen 1")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let (_, html) = admin.get(&location(&h)).await;
    assert!(html.contains("Wagen 1"), "{html}");

    let teacher = login(&app.base, "meyer@people.de", PASSWORD).await.unwrap();
    let (_, html) = teacher.get("/unterricht").await;
    assert!(html.contains("<strong>7b</strong>"), "{html}");
    let (status, _) = teacher.get(&class_page).await;
    assert_eq!(status, 403, "the admin pages are not hers");
}

#[actix_web::test]
async fn forms_without_the_sessions_token_store_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "people-csrf").await;
    let meyer = user(&app, "meyer@people.de", "teacher", Some(&school_id)).await;
    user(&app, "kreis@people.de", "district_admin", None).await;
    let district = login(&app.base, "kreis@people.de", PASSWORD).await.unwrap();
    let (_, c) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    let class = c["id"].as_str().unwrap().to_owned();
    let before = counts(&app);
    let place = format!("school:{school_id}");
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/benutzer".into(),
            vec![
                ("name", "X"),
                ("email", "x@people.de"),
                ("role", "teacher"),
                ("place", &place),
            ],
        ),
        (
            format!("/admin/benutzer/{meyer}"),
            vec![("name", "Y"), ("email", "y@people.de")],
        ),
        (
            format!("/admin/benutzer/{meyer}/deaktivieren"),
            vec![("confirm", "ja")],
        ),
        (
            "/admin/schultraeger".into(),
            vec![("name", "Z"), ("slug", "z")],
        ),
        (
            format!("/admin/schultraeger/{tenant}/schulen"),
            vec![("name", "Z")],
        ),
        (
            format!("/admin/schulen/{school_id}/klassen"),
            vec![("name", "8a"), ("school_year", "2026/27")],
        ),
        (
            format!("/admin/schulen/{school_id}/wagen"),
            vec![("name", "Wagen 9")],
        ),
        (format!("/admin/klassen/{class}"), vec![("teacher", &meyer)]),
    ];
    for (path, fields) in &forms {
        let (status, _, html) = district.post(path, fields).await;
        assert_eq!(status, 403, "{path} without a token: {html}");
        let mut wrong = fields.clone();
        wrong.push(("csrf", "0123456789abcdef0123456789abcdef"));
        let (status, _, _) = district.post(path, &wrong).await;
        assert_eq!(status, 403, "{path} with another token");
    }
    assert_eq!(counts(&app), before, "nothing stored");
    let (_, u) = app.get(&format!("/api/v1/users/{meyer}")).await;
    assert_eq!(
        (&u["name"], &u["disabled_at"]),
        (&json!("meyer@people.de"), &json!(null))
    );
}

/// Every people page in a real browser: axe-core finds no serious or critical WCAG 2.1 AA
/// violation, including the new-user form shown again after a refusal.
#[actix_web::test]
async fn every_people_page_passes_axe() {
    let Some(b) = browser_or_skip().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "people-axe").await;
    user(&app, "kreis@people.de", "district_admin", None).await;
    let meyer = user(&app, "meyer@people.de", "teacher", Some(&school_id)).await;
    let (_, c) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [meyer]}),
        )
        .await;
    let class = c["id"].as_str().unwrap().to_owned();
    let wait = Duration::from_secs(20);

    b.goto(&app.url("/login")).await;
    b.find("#email").await.send_keys("kreis@people.de").await;
    b.find("#password").await.send_keys(PASSWORD).await;
    b.find("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await;
    b.wait_for("header nav", wait).await;

    for path in [
        "/admin/benutzer".to_owned(),
        "/admin/benutzer/neu".to_owned(),
        format!("/admin/benutzer/{meyer}"),
        "/admin/schultraeger".to_owned(),
        format!("/admin/schultraeger/{tenant}"),
        format!("/admin/schulen/{school_id}"),
        format!("/admin/schulen/{school_id}/klassen/neu"),
        format!("/admin/schulen/{school_id}/wagen/neu"),
        format!("/admin/klassen/{class}"),
    ] {
        b.goto(&app.url(&path)).await;
        b.wait_for("main h1", wait).await;
        b.assert_accessible(&path).await;
        if path == "/admin/benutzer" {
            crate::console_journeys::screenshot(&b, "users").await;
        }
    }

    // The form again after a refusal (the e-mail is taken), with its reason.
    b.goto(&app.url("/admin/benutzer/neu")).await;
    b.find("#name").await.send_keys("Noch eine Meyer").await;
    b.find("#email").await.send_keys("meyer@people.de").await;
    b.find(&format!("#place option[value='school:{school_id}']"))
        .await
        .click()
        .await;
    b.find("main form button[type=submit]").await.click().await;
    let error = b.wait_for("#form-error", wait).await;
    assert!(error.text().await.contains("schon vergeben"));
    b.assert_accessible("new user, refused").await;
    b.close().await;
}
