//! The web console over plain HTTP (no browser): sessions, CSRF, login limits, scope,
//! language, headers and the device listener. The journeys in a real browser are in
//! `console_journeys`.

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::enrollment::school;
use crate::helpers::TestApp;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A client that follows no redirects (the tests look at each answer).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` among the answer's Set-Cookie headers, with its attributes.
fn set_cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A browser's session: its cookie and the CSRF token its pages carry.
pub(crate) struct Session {
    pub(crate) base: String,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Session {
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let res = client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("tafel_session={}", self.cookie))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let res = client()
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("tafel_session={}", self.cookie))
            .form(form)
            .send()
            .await
            .unwrap();
        let (s, h) = (res.status().as_u16(), res.headers().clone());
        (s, h, res.text().await.unwrap())
    }
}

/// Logs in as a browser does: the form (its cookie and hidden token), then the POST.
pub(crate) async fn login(
    base: &str,
    email: &str,
    password: &str,
) -> Result<Session, (u16, String)> {
    let c = client();
    let page = c.get(format!("{base}/login")).send().await.unwrap();
    let pre = cookie_value(&set_cookie(page.headers(), "tafel_login").unwrap());
    let html = page.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let res = c
        .post(format!("{base}/login"))
        .header(COOKIE, format!("tafel_login={pre}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    if res.status() != 303 {
        let s = res.status().as_u16();
        return Err((s, res.text().await.unwrap()));
    }
    let set = set_cookie(res.headers(), "tafel_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP: no Secure flag ({set})"
    );
    let cookie = cookie_value(&set);
    let html = client()
        .get(format!("{base}/"))
        .header(COOKIE, format!("tafel_session={cookie}"))
        .send()
        .await
        .unwrap();
    let to = html.headers()[LOCATION].to_str().unwrap().to_owned();
    let page = client()
        .get(format!("{base}{to}"))
        .header(COOKIE, format!("tafel_session={cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Ok(Session {
        base: base.to_owned(),
        csrf: hidden(&page, "csrf"),
        cookie,
    })
}

pub(crate) async fn user(
    app: &TestApp,
    email: &str,
    role: &str,
    school_id: Option<&str>,
) -> String {
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": email, "email": email, "role": role, "school_id": school_id, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    u["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_session_is_a_strict_http_only_cookie_that_logging_out_ends() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "console").await;
    user(&app, "sl@console.de", "school_admin", Some(&school_id)).await;

    // Without a session every page sends to the log-in, and says where it came from.
    let res = client()
        .get(app.url("/admin/geraete?q=7b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()[LOCATION],
        "/login?next=%2Fadmin%2Fgeraete%3Fq%3D7b"
    );

    // The log-in page: German by default, no caching, a strict content security policy.
    let page = client().get(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let pre = set_cookie(&h, "tafel_login").unwrap();
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("Passwort"),
        "{html}"
    );

    let s = login(&app.base, "sl@console.de", PASSWORD).await.unwrap();
    let (status, html) = s.get("/admin").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Übersicht"), "{html}");
    assert!(
        html.contains("sl@console.de"),
        "the frame names who is logged in"
    );

    // The session cookie opens no API door: the API reads bearer tokens only.
    let res = client()
        .get(app.url("/api/v1/me"))
        .header(COOKIE, format!("tafel_session={}", s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Log-out needs the form's token; then the cookie is worth nothing, and it is audited.
    let (status, _, _) = s.post("/logout", &[("csrf", "wrong")]).await;
    assert_eq!(status, 403);
    assert_eq!(
        s.get("/admin").await.0,
        200,
        "a refused log-out leaves the session"
    );
    let (status, h, _) = s.post("/logout", &[("csrf", &s.csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(h[LOCATION], "/login");
    assert!(set_cookie(&h, "tafel_session")
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        s.get("/admin").await.0,
        303,
        "the old cookie no longer opens pages"
    );
    let (_, audit) = app.get("/api/v1/audit?action=logout").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[actix_web::test]
async fn forms_without_the_sessions_token_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "csrf").await;
    user(&app, "sl@csrf.de", "school_admin", Some(&school_id)).await;
    let s = login(&app.base, "sl@csrf.de", PASSWORD).await.unwrap();
    let before = app.count("enrollment_tokens");
    for csrf in ["", "0123456789abcdef0123456789abcdef", &s.csrf[..31]] {
        let (status, _, html) = s
            .post(
                &format!("/admin/schulen/{school_id}/links"),
                &[("csrf", csrf)],
            )
            .await;
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("Formular ist abgelaufen"), "{html}");
    }
    assert_eq!(
        app.count("enrollment_tokens"),
        before,
        "a refused form stores nothing"
    );
    let (status, h, _) = s
        .post(
            &format!("/admin/schulen/{school_id}/links"),
            &[("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(h[LOCATION], format!("/admin/schulen/{school_id}#links"));
    assert_eq!(app.count("enrollment_tokens"), before + 1);
    let (status, html) = s.get(&format!("/admin/schulen/{school_id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg role=\"img\""),
        "the link as a QR code: {html}"
    );
    assert!(html.contains(&format!("{}/enroll/", app.base)), "{html}");

    // A log-in form posted from elsewhere (no matching cookie) logs nobody in.
    let res = client()
        .post(app.url("/login"))
        .form(&[
            ("email", "sl@csrf.de"),
            ("password", PASSWORD),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookie(res.headers(), "tafel_session").is_none());
}

#[actix_web::test]
async fn the_console_login_keeps_the_apis_limits() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "limits").await;
    user(&app, "t@limits.de", "teacher", Some(&school_id)).await;
    let (status, html) = login(&app.base, "t@limits.de", "wrong password!!")
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    assert!(
        html.contains("E-Mail-Adresse oder Passwort ist falsch"),
        "{html}"
    );
    assert!(
        html.contains("value=\"t@limits.de\""),
        "the e-mail stays in the form"
    );
    for _ in 0..5 {
        let _ = login(&app.base, "t@limits.de", "wrong password!!").await;
    }
    let (status, html) = login(&app.base, "t@limits.de", PASSWORD)
        .await
        .err()
        .unwrap();
    assert_eq!(
        status, 429,
        "the right password waits too once the account is throttled"
    );
    assert!(html.contains("Zu viele Fehlversuche"), "{html}");
    // The API's login counts the same failures.
    let (status, _) = app
        .post(
            "/api/v1/login",
            json!({"email": "t@limits.de", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 429);
}

#[actix_web::test]
async fn teachers_see_their_pages_only_and_admins_their_school() {
    let app = TestApp::spawn().await;
    let (tenant, school_a) = school(&app, "scope-a").await;
    let (_, s) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Realschule Süd"}),
        )
        .await;
    let school_b = s["id"].as_str().unwrap().to_owned();
    user(&app, "t@a.de", "teacher", Some(&school_a)).await;
    user(&app, "sl@a.de", "school_admin", Some(&school_a)).await;
    let ipad = app.device(4711);
    ipad.authenticate().await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_b);

    let teacher = login(&app.base, "t@a.de", PASSWORD).await.unwrap();
    let (status, html) = teacher.get("/").await;
    assert_eq!(status, 303, "{html}");
    let (status, html) = teacher.get("/unterricht").await;
    assert_eq!(status, 200);
    assert!(html.contains("Meine Klassen"), "{html}");
    for path in [
        "/admin",
        "/admin/geraete",
        &format!("/admin/geraete/{}", ipad.udid),
    ] {
        let (status, html) = teacher.get(path).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(html.contains("Keine Berechtigung"), "{html}");
    }
    let admin = login(&app.base, "sl@a.de", PASSWORD).await.unwrap();
    let (status, html) = admin.get(&format!("/admin/geraete/{}", ipad.udid)).await;
    assert_eq!(
        status, 404,
        "another school's iPad does not exist for them: {html}"
    );
    assert!(html.contains("Nicht gefunden"));
    let (status, _) = admin.get(&format!("/admin/schulen/{school_b}")).await;
    assert_eq!(status, 404);
    let (_, html) = admin.get("/admin/geraete").await;
    assert!(
        !html.contains(ipad.udid.as_str()),
        "not in their list either"
    );
    // The district admin (bootstrap token's user has no password): a district admin with one.
    user(&app, "kreis@console.de", "district_admin", None).await;
    let district = login(&app.base, "kreis@console.de", PASSWORD)
        .await
        .unwrap();
    let (status, html) = district.get(&format!("/admin/geraete/{}", ipad.udid)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Realschule Süd"), "{html}");
}

#[actix_web::test]
async fn english_on_request_and_nothing_of_the_console_on_the_device_listener() {
    let app = TestApp::spawn_with(|s| s.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let people = format!("http://127.0.0.1:{}", app.state.admin_port.unwrap());
    for path in ["/", "/login", "/admin", "/unterricht", "/static/tafel.css"] {
        let res = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path} on the device listener");
    }
    let res = client()
        .get(format!("{people}/login"))
        .header("accept-language", "en-GB,en;q=0.9,de;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Password"),
        "{html}"
    );
    // The switch's cookie wins over the browser's language.
    let res = client()
        .get(format!("{people}/sprache?lang=de&next=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/", "never off to another host");
    let lang = cookie_value(&set_cookie(res.headers(), "tafel_lang").unwrap());
    let html = client()
        .get(format!("{people}/login"))
        .header("accept-language", "en")
        .header(COOKIE, format!("tafel_lang={lang}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    let css = client()
        .get(format!("{people}/static/tafel.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    let js = client()
        .get(format!("{people}/static/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(
        client()
            .get(format!("{people}/static/../Cargo.toml"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// The figures of the overview (value, link) in the order shown.
fn figures(html: &str) -> Vec<(i64, String)> {
    html.split("<li class=\"figure")
        .skip(1)
        .map(|li| {
            let href = li
                .split("href=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = li
                .split("<span class=\"value\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap();
            (value.parse().unwrap(), href.replace("&amp;", "&"))
        })
        .collect()
}

#[actix_web::test]
async fn every_figure_of_the_overview_is_the_list_it_links_to() {
    use diesel::prelude::*;
    use tafel::db::schema::{command_queue, devices};
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "figures").await;
    user(&app, "sl@figures.de", "school_admin", Some(&school_id)).await;
    let now = chrono::Utc::now().naive_utc();
    let ago = |days: i64| now - chrono::Duration::days(days);
    let mut udids = vec![];
    // Seen now, 10 days ago, 40 days ago, retired (seen now), and one of another school.
    for (n, seen) in [(1, ago(0)), (2, ago(10)), (3, ago(40)), (4, ago(0))] {
        let d = app.device(5100 + n);
        d.authenticate().await.unwrap();
        app.place_device(d.udid.as_str(), &tenant, &school_id);
        app.set_device_times(d.udid.as_str(), seen);
        udids.push(d.udid.to_string());
    }
    let elsewhere = app.device(5200);
    elsewhere.authenticate().await.unwrap();
    let (_, retired) = app.delete(&format!("/api/v1/devices/{}", udids[3])).await;
    assert!(retired.is_null(), "{retired}");
    // One failed command on the device seen 10 days ago, answered yesterday.
    let (status, q) = app
        .post(
            "/api/v1/commands",
            json!({"udids": [udids[1]], "request_type": "DeviceInformation"}),
        )
        .await;
    assert_eq!(status, 202, "{q}");
    {
        let mut conn = app.state.db.get().unwrap();
        let id: String = devices::table
            .filter(devices::udid.eq(&udids[1]))
            .select(devices::id)
            .first(&mut *conn)
            .unwrap();
        let n = diesel::update(command_queue::table.filter(command_queue::device_id.eq(id)))
            .set((
                command_queue::status.eq("error"),
                command_queue::answered_at.eq(Some(ago(1))),
            ))
            .execute(&mut *conn)
            .unwrap();
        assert!(n >= 1);
    }

    let s = login(&app.base, "sl@figures.de", PASSWORD).await.unwrap();
    let (status, html) = s.get("/admin").await;
    assert_eq!(status, 200, "{html}");
    let shown = figures(&html);
    let values: Vec<i64> = shown.iter().map(|(v, _)| *v).collect();
    // Devices, seen in 24 h, not seen 7 days, not seen 30 days, failing, open requests.
    assert_eq!(values, vec![3, 1, 2, 1, 1, 0], "{shown:?}");
    for (value, href) in shown.iter().take(5) {
        let (status, list) = s.get(href).await;
        assert_eq!(status, 200, "{href}: {list}");
        let rows = list.matches("<tr><td><a href=\"/admin/geraete/").count() as i64;
        assert_eq!(
            rows, *value,
            "{href} lists {rows}, the overview says {value}"
        );
    }
}

#[actix_web::test]
async fn an_authority_admin_makes_the_certificate_request_in_the_console_and_pastes_only_apples_certificate(
) {
    let app = TestApp::spawn().await;
    let (status, t) = app
        .post(
            "/api/v1/tenants",
            json!({"name": "Amt Föhr-Land", "slug": "foehr"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let tenant = t["id"].as_str().unwrap().to_owned();
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@foehr.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let s = login(&app.base, "amt@foehr.de", PASSWORD).await.unwrap();
    let (_, html) = s.get("/admin/apple").await;
    assert!(html.contains("Zertifikatsanforderung erstellen"), "{html}");
    assert!(html.contains("name=\"private_key_pem\""), "{html}");

    let (status, h, html) = s
        .post(
            &format!("/admin/apple/{tenant}/anforderung"),
            &[("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert!(h[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/admin/apple?schultraeger="));
    let (_, html) = s.get("/admin/apple").await;
    assert!(html.contains("wartet auf Apples Zertifikat"), "{html}");
    assert!(
        html.contains("CN=tafel Amt Föhr-Land, O=Amt Föhr-Land, C=DE"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/admin/apple/{tenant}/anforderung.csr")),
        "{html}"
    );
    // While the request waits, the form asks only for the certificate.
    assert!(!html.contains("name=\"private_key_pem\""), "{html}");

    let res = reqwest::Client::new()
        .get(format!("{}/admin/apple/{tenant}/anforderung.csr", app.base))
        .header(COOKIE, format!("tafel_session={}", s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/pkcs10");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".csr\""));
    let csr_pem = res.text().await.unwrap();
    assert!(
        csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr_pem}"
    );
    assert!(!csr_pem.contains("PRIVATE"));

    let topic = "com.apple.mgmt.External.foehr";
    let pki = tafel_sim::apns::SimPki::generate(topic).unwrap();
    let csr = openssl::x509::X509Req::from_pem(csr_pem.as_bytes()).unwrap();
    let issued = pki.issue_for_request(&csr, topic).unwrap();
    let (status, _, html) = s
        .post(
            &format!("/admin/apple/{tenant}/push"),
            &[
                ("csrf", &s.csrf),
                (
                    "certificate_pem",
                    &String::from_utf8(issued.to_pem().unwrap()).unwrap(),
                ),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    let (_, html) = s.get("/admin/apple").await;
    assert!(html.contains(topic), "{html}");
    assert!(!html.contains("wartet auf Apples Zertifikat"), "{html}");
    assert_eq!(app.count("push_certificate_requests"), 0);
}

#[actix_web::test]
async fn an_authority_admin_uploads_the_push_certificate_in_the_console() {
    let app = TestApp::spawn().await;
    let (status, t) = app
        .post(
            "/api/v1/tenants",
            json!({"name": "Amt Trave-Land", "slug": "trave"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let tenant = t["id"].as_str().unwrap().to_owned();
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@trave.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let s = login(&app.base, "amt@trave.de", PASSWORD).await.unwrap();
    let (status, html) = s.get("/admin/apple").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("noch kein Push-Zertifikat"), "{html}");

    // A key that is not the certificate's: refused, nothing stored.
    let topic = "com.apple.mgmt.External.trave";
    let pki = tafel_sim::apns::SimPki::generate(topic).unwrap();
    let other = tafel_sim::apns::SimPki::generate(topic).unwrap();
    let cert = String::from_utf8(pki.push.cert.to_pem().unwrap()).unwrap();
    let key = |k: &openssl::pkey::PKey<openssl::pkey::Private>| {
        String::from_utf8(k.private_key_to_pem_pkcs8().unwrap()).unwrap()
    };
    let path = format!("/admin/apple/{tenant}/push");
    let (status, _, html) = s
        .post(
            &path,
            &[
                ("csrf", &s.csrf),
                ("certificate_pem", &cert),
                ("private_key_pem", &key(&other.push.key)),
            ],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(app.count("push_certificates"), 0);
    let (status, h, html) = s
        .post(
            &path,
            &[
                ("csrf", &s.csrf),
                ("certificate_pem", &cert),
                ("private_key_pem", &key(&pki.push.key)),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(h[LOCATION], format!("/admin/apple?schultraeger={tenant}"));
    let (_, html) = s.get("/admin/apple").await;
    assert!(html.contains(topic), "{html}");
    let (status, info) = app
        .get(&format!("/api/v1/tenants/{tenant}/push-certificate"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["topic"], topic);
    let (_, audit) = app.get("/api/v1/audit?object_type=push_certificate").await;
    assert!(!audit["items"].as_array().unwrap().is_empty(), "{audit}");

    // Apple School Manager: no server token yet; one created waits for Apple's file, and
    // a pasted file that is none is refused.
    assert!(html.contains("Noch kein Server-Token"), "{html}");
    let (status, tok) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{tok}");
    let (_, html) = s.get("/admin/apple").await;
    assert!(html.contains("wartet auf das Server-Token"), "{html}");
    let id = tok["id"].as_str().unwrap();
    let (status, _, html) = s
        .post(
            &format!("/admin/apple/asm/{id}"),
            &[("csrf", &s.csrf), ("server_token", "not a p7m")],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    let (status, _, _) = s
        .post(
            &format!("/admin/apple/asm/{id}"),
            &[("csrf", "x"), ("server_token", "not a p7m")],
        )
        .await;
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn device_actions_need_their_confirmation_and_go_through_the_commands_rules() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "actions").await;
    user(&app, "sl@actions.de", "school_admin", Some(&school_id)).await;
    let mut ipad = app.device(5300);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    crate::helpers::answer_first_inventory(&mut ipad).await;
    let udid = ipad.udid.to_string();
    let s = login(&app.base, "sl@actions.de", PASSWORD).await.unwrap();
    let (status, html) = s.get(&format!("/admin/geraete/{udid}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"action-erase\""), "{html}");
    let path = format!("/admin/geraete/{udid}/aktion");
    let queued = |t: &'static str| {
        let app = &app;
        let udid = udid.clone();
        async move {
            app.queue_of(&udid)
                .await
                .iter()
                .filter(|c| c["request_type"] == t)
                .count()
        }
    };

    // A restart without its checkbox: 400, nothing queued; with it: queued and shown.
    let (status, _, html) = s
        .post(&path, &[("csrf", &s.csrf), ("action", "restart")])
        .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Ja, wirklich"), "{html}");
    assert_eq!(queued("RestartDevice").await, 0);
    let (status, h, _) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("action", "restart"), ("sure", "1")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        h[LOCATION],
        format!("/admin/geraete/{udid}?gesendet=restart")
    );
    assert_eq!(queued("RestartDevice").await, 1);
    let (_, html) = s
        .get(&format!("/admin/geraete/{udid}?gesendet=restart"))
        .await;
    assert!(html.contains("Neustart gesendet"), "{html}");

    // An erase needs the serial typed again (the commands API's rule).
    let (status, _, html) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("action", "erase"), ("confirm", "WRONG")],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(queued("EraseDevice").await, 0);
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    let serial = d["serial_number"].as_str().unwrap().to_owned();
    let (status, _, html) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("action", "erase"), ("confirm", &serial)],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(queued("EraseDevice").await, 1);
    let (_, audit) = app.get("/api/v1/audit?action=enqueue").await;
    assert!(audit["items"].as_array().unwrap().len() >= 2, "{audit}");

    // Unknown actions and foreign CSRF change nothing; retiring ends management.
    let (status, _, _) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("action", "shutdown"), ("sure", "1")],
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = s
        .post(&path, &[("csrf", "x"), ("action", "retire"), ("sure", "1")])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("action", "retire"), ("sure", "1")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["enrollment_status"], "retired");
    let (_, html) = s.get(&format!("/admin/geraete/{udid}")).await;
    assert!(
        !html.contains("id=\"action-erase\""),
        "no actions for a retired iPad"
    );
}

#[actix_web::test]
async fn a_school_enters_its_holidays_and_sees_them() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "ferien").await;
    user(&app, "sl@ferien.de", "school_admin", Some(&school_id)).await;
    let s = login(&app.base, "sl@ferien.de", PASSWORD).await.unwrap();
    let path = format!("/admin/schulen/{school_id}/ferien");
    let (status, _, html) = s
        .post(
            &path,
            &[
                ("csrf", &s.csrf),
                ("calendar", "Weihnachtsferien,21.12.2026,2027-01-02"),
            ],
        )
        .await;
    assert_eq!(status, 400, "an unreadable line stores nothing: {html}");
    assert_eq!(app.count("closures"), 0);
    let next_year = chrono::Utc::now()
        .date_naive()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .unwrap()
        + 1;
    let csv = format!("Weihnachtsferien,{next_year}-12-21,{}-01-02\nBeweglicher Ferientag,{next_year}-05-15,{next_year}-05-15", next_year + 1);
    let (status, h, html) = s
        .post(&path, &[("csrf", &s.csrf), ("calendar", &csv)])
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(h[LOCATION], format!("/admin/schulen/{school_id}#ferien"));
    assert_eq!(app.count("closures"), 2);
    let (_, html) = s.get(&format!("/admin/schulen/{school_id}")).await;
    let list = &html[html.find("id=\"closure-list\"").expect("the list")..];
    let may = list.find("Beweglicher Ferientag").unwrap();
    let christmas = list.find("Weihnachtsferien").unwrap();
    assert!(may < christmas, "sorted by their first day: {list}");
    assert!(list.contains(&format!("21.12.{next_year} – ")), "{list}");
    let (_, audit) = app.get("/api/v1/audit?object_type=calendar").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    // Replacing leaves only the new days.
    let one = format!("Pfingstferien,{next_year}-05-26,{next_year}-05-29");
    let (status, _, _) = s
        .post(
            &path,
            &[("csrf", &s.csrf), ("calendar", &one), ("replace", "1")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.count("closures"), 1);
}
