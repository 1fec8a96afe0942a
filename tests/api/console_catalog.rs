//! The console's catalog: an authority admin adds Keynote (and cannot add it twice),
//! renders the school's Wi-Fi profile from its template's form, and deletes what they
//! added; teachers and forms without the session's token change nothing. The same pages
//! in a real browser with axe-core.

use reqwest::header::LOCATION;
use serde_json::{json, Value};

use crate::console::{login, user, Session, PASSWORD};
use crate::enrollment::school;
use crate::helpers::TestApp;

/// An authority (with Gymnasium Nord), its admin logged in.
async fn authority_admin(app: &TestApp, slug: &str) -> (String, String, Session) {
    let (tenant, school_id) = school(app, slug).await;
    let email = format!("aa@{slug}.de");
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Frau Albers", "email": email, "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let s = login(&app.base, &email, PASSWORD).await.unwrap();
    (tenant, school_id, s)
}

fn keynote<'a>(s: &'a Session, tenant: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", s.csrf.as_str()),
        ("name", "Keynote"),
        ("bundle_id", "com.apple.Keynote"),
        ("adam_id", "361285480"),
        ("licensed", "1"),
        ("authority", tenant),
    ]
}

/// The apps the district's API lists.
async fn api_apps(app: &TestApp) -> Vec<Value> {
    let (status, list) = app.get("/api/v1/apps").await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn an_authority_admin_adds_keynote_once_changes_it_and_deletes_it() {
    let app = TestApp::spawn().await;
    let (tenant, _, s) = authority_admin(&app, "katalog").await;

    let (status, html) = s.get("/admin/katalog").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Noch keine Apps"), "{html}");
    let (status, html) = s.get("/admin/katalog/apps/neu").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!(
            "<option value=\"{tenant}\" selected>Authority katalog"
        )),
        "their authority, chosen: {html}"
    );
    assert!(
        !html.contains("alle Schulträger"),
        "district-wide apps are the district admins': {html}"
    );

    let (status, h, html) = s.post("/admin/katalog/apps", &keynote(&s, &tenant)).await;
    assert_eq!(status, 303, "{html}");
    let page = h[LOCATION].to_str().unwrap().to_owned();
    assert!(page.starts_with("/admin/katalog/apps/"), "{page}");
    let apps = api_apps(&app).await;
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(
        (
            &apps[0]["bundle_id"],
            &apps[0]["tenant_id"],
            &apps[0]["licensed"]
        ),
        (&json!("com.apple.Keynote"), &json!(tenant), &json!(true))
    );
    let id = apps[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(page, format!("/admin/katalog/apps/{id}"));
    let (_, html) = s.get("/admin/katalog").await;
    assert!(
        html.contains(&format!("<a href=\"/admin/katalog/apps/{id}\">Keynote</a>"))
            && html.contains("361285480")
            && html.contains("Schulträger Authority katalog"),
        "{html}"
    );

    // The same bundle id again: 409, the form again with the API's reason, nothing stored.
    let before = app.count("apps");
    let (status, _, html) = s.post("/admin/katalog/apps", &keynote(&s, &tenant)).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("Diese App ist schon im Katalog"), "{html}");
    assert!(html.contains("com.apple.Keynote") && html.contains("role=\"alert\""));
    assert!(
        html.contains("value=\"Keynote\""),
        "what was typed stays: {html}"
    );
    assert_eq!(app.count("apps"), before);
    // A bad bundle id: 400 with the API's reason.
    let mut bad = keynote(&s, &tenant);
    bad[2] = ("bundle_id", "Keynote");
    let (status, _, html) = s.post("/admin/katalog/apps", &bad).await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("Nicht gespeichert") && html.contains("bundle identifier"),
        "{html}"
    );
    assert_eq!(app.count("apps"), before);

    // Its page: renamed and no longer licensed through the API's PATCH.
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Noch keiner Klasse"), "{html}");
    let (status, _, html) = s
        .post(&page, &[("csrf", &s.csrf), ("name", "Keynote (Schule)")])
        .await;
    assert_eq!(status, 303, "{html}");
    let (_, got) = app.get(&format!("/api/v1/apps/{id}")).await;
    assert_eq!(
        (&got["name"], &got["licensed"]),
        (&json!("Keynote (Schule)"), &json!(false))
    );

    // Deleting needs the box ticked.
    let delete = format!("{page}/loeschen");
    let (status, _, html) = s.post(&delete, &[("csrf", &s.csrf)]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Ja, löschen"), "{html}");
    assert_eq!(api_apps(&app).await.len(), 1);
    let (status, h, _) = s
        .post(&delete, &[("csrf", &s.csrf), ("confirm", "1")])
        .await;
    assert_eq!(
        (status, h[LOCATION].to_str().unwrap()),
        (303, "/admin/katalog")
    );
    assert!(api_apps(&app).await.is_empty());
    assert_eq!(s.get(&page).await.0, 404);
}

#[actix_web::test]
async fn the_school_wifi_is_rendered_from_its_templates_form() {
    let app = TestApp::spawn().await;
    let (_, school_id, s) = authority_admin(&app, "wlan").await;

    let (status, html) = s.get("/admin/katalog/vorlagen").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("school-wifi") && html.contains("Gymnasium Nord"));
    let form = format!("/admin/katalog/vorlagen/school-wifi?schule={school_id}");
    let (status, html) = s.get(&form).await;
    assert_eq!(status, 200, "{html}");
    // The template's variables are the fields, typed and labelled by their descriptions.
    for needle in [
        "type=\"text\" id=\"var_ssid\" name=\"var_ssid\" value=\"\" required",
        "type=\"password\" id=\"var_password\" name=\"var_password\" required minlength=\"8\" maxlength=\"63\"",
        "type=\"checkbox\" id=\"var_hidden\" name=\"var_hidden\"",
        "Name (SSID) des WLANs.",
        &format!("<option value=\"{school_id}\" selected>Gymnasium Nord"),
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    assert!(
        !html.contains("id=\"var_school_slug\" name=\"var_school_slug\" value=\"\" required"),
        "the API fills the school's slug: {html}"
    );

    // Too short a password: the API's reason, the SSID kept, the password not echoed.
    let post = "/admin/katalog/vorlagen/school-wifi";
    let (status, _, html) = s
        .post(
            post,
            &[
                ("csrf", &s.csrf),
                ("school", &school_id),
                ("name", "WLAN Nord"),
                ("var_ssid", "Schulnetz"),
                ("var_password", "kurz!"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Nicht gespeichert"), "{html}");
    assert!(html.contains("value=\"Schulnetz\""), "{html}");
    assert!(!html.contains("kurz!"), "a secret is never echoed: {html}");
    assert_eq!(app.count("profiles"), 0);

    let (status, h, html) = s
        .post(
            post,
            &[
                ("csrf", &s.csrf),
                ("school", &school_id),
                ("name", "WLAN Nord"),
                ("var_ssid", "Schulnetz"),
                ("var_password", "Kreide-und-Tafel"),
                ("var_hidden", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    let page = h[LOCATION].to_str().unwrap().to_owned();
    let (_, list) = app.get("/api/v1/profiles").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let p = &items[0];
    assert_eq!(
        (
            &p["name"],
            &p["identifier"],
            &p["template"],
            &p["school_id"]
        ),
        (
            &json!("WLAN Nord"),
            &json!("de.tafel.wifi.gymnasium-nord"),
            &json!("school-wifi"),
            &json!(school_id)
        )
    );
    assert_eq!(
        page,
        format!("/admin/katalog/profile/{}", p["id"].as_str().unwrap())
    );
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("de.tafel.wifi.gymnasium-nord") && html.contains("Schule Gymnasium Nord"),
        "{html}"
    );
    assert!(!html.contains("Kreide-und-Tafel"), "{html}");
    let (_, html) = s.get("/admin/katalog").await;
    assert!(html.contains("WLAN Nord"), "{html}");

    let (status, _, _) = s
        .post(
            &format!("{page}/loeschen"),
            &[("csrf", &s.csrf), ("confirm", "1")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, list) = app.get("/api/v1/profiles").await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
}

#[actix_web::test]
async fn teachers_and_forms_without_the_sessions_token_change_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, school_id, admin) = authority_admin(&app, "nicht").await;
    user(&app, "t@nicht.de", "teacher", Some(&school_id)).await;
    let teacher = login(&app.base, "t@nicht.de", PASSWORD).await.unwrap();
    for path in [
        "/admin/katalog".to_owned(),
        "/admin/katalog/apps/neu".to_owned(),
        "/admin/katalog/vorlagen".to_owned(),
        format!("/admin/katalog/vorlagen/school-wifi?schule={school_id}"),
    ] {
        let (status, html) = teacher.get(&path).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(html.contains("Keine Berechtigung"), "{html}");
    }
    let (status, _, html) = teacher
        .post("/admin/katalog/apps", &keynote(&teacher, &tenant))
        .await;
    assert_eq!(status, 403, "{html}");

    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let mut form = keynote(&admin, &tenant);
        form[0] = ("csrf", csrf);
        let (status, _, html) = admin.post("/admin/katalog/apps", &form).await;
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("Formular ist abgelaufen"), "{html}");
        let (status, _, _) = admin
            .post(
                "/admin/katalog/vorlagen/school-wifi",
                &[
                    ("csrf", csrf),
                    ("school", &school_id),
                    ("var_ssid", "Schulnetz"),
                    ("var_password", "Kreide-und-Tafel"),
                ],
            )
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!((app.count("apps"), app.count("profiles")), (0, 0));
}

mod browser {
    //! The catalog's pages in headless chromium: every one passes axe-core.

    use std::time::Duration;

    use super::*;
    use crate::browser::browser_or_skip;
    use crate::console_journeys::{check_page, heading, log_in};

    const WAIT: Duration = Duration::from_secs(20);

    #[actix_web::test]
    async fn every_catalog_page_is_accessible() {
        let Some(b) = browser_or_skip().await else {
            return;
        };
        let app = TestApp::spawn().await;
        let (tenant, school_id) = school(&app, "barriere").await;
        let email = "albers@barriere.de";
        let password = crate::console_journeys::PASSWORD;
        let (status, u) = app
            .post(
                "/api/v1/users",
                json!({"name": "Frau Albers", "email": email, "role": "authority_admin", "tenant_id": tenant, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "{u}");
        log_in(&b, &app, email, "/admin").await;

        b.goto(&app.url("/admin/katalog")).await;
        assert_eq!(heading(&b).await, "Katalog");
        check_page(&b, &app, "catalog (empty)").await;

        // A new app, typed and sent as a person does.
        b.goto(&app.url("/admin/katalog/apps/neu")).await;
        check_page(&b, &app, "new app").await;
        b.find("#name").await.send_keys("Keynote").await;
        b.find("#bundle_id")
            .await
            .send_keys("com.apple.Keynote")
            .await;
        b.find("#adam_id").await.send_keys("361285480").await;
        b.find("form[action='/admin/katalog/apps'] button[type=submit]")
            .await
            .click()
            .await;
        b.wait_for("dl.facts", WAIT).await;
        assert_eq!(heading(&b).await, "Keynote");
        check_page(&b, &app, "app page").await;

        // The same again: the refusal on the form.
        b.goto(&app.url("/admin/katalog/apps/neu")).await;
        b.find("#name").await.send_keys("Keynote").await;
        b.find("#bundle_id")
            .await
            .send_keys("com.apple.Keynote")
            .await;
        b.find("#adam_id").await.send_keys("361285480").await;
        b.find("form[action='/admin/katalog/apps'] button[type=submit]")
            .await
            .click()
            .await;
        b.wait_for_text("#refusal", "schon im Katalog", WAIT).await;
        check_page(&b, &app, "new app, refused").await;

        b.goto(&app.url("/admin/katalog/vorlagen")).await;
        check_page(&b, &app, "templates").await;
        b.goto(&app.url(&format!(
            "/admin/katalog/vorlagen/school-wifi?schule={school_id}"
        )))
        .await;
        check_page(&b, &app, "school-wifi form").await;
        crate::console_journeys::screenshot(&b, "profile-from-template").await;
        b.find("#var_ssid").await.send_keys("Schulnetz").await;
        b.find("#var_password")
            .await
            .send_keys("Kreide-und-Tafel")
            .await;
        b.find("form[action='/admin/katalog/vorlagen/school-wifi'] button[type=submit]")
            .await
            .click()
            .await;
        b.wait_for("dl.facts", WAIT).await;
        assert_eq!(heading(&b).await, "school-wifi – Gymnasium Nord");
        check_page(&b, &app, "profile page").await;

        b.goto(&app.url("/admin/katalog")).await;
        check_page(&b, &app, "catalog").await;
        crate::console_journeys::screenshot(&b, "catalog").await;
        let list = b.find("#profile-list").await.text().await;
        assert!(list.contains("de.tafel.wifi.gymnasium-nord"), "{list}");
        b.close().await;
    }
}
