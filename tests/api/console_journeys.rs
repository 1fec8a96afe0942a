//! The web console in a real browser: a district admin sets up a school and assigns
//! Keynote to class 7b on Tuesday periods 2-3; Frau Meyer asks for Pages on her phone;
//! the school admin approves; the iPads of 7b (the built-in simulator) install it while
//! the teacher's page refreshes itself; nobody sees what is not theirs; English is a
//! click away. Every page visited is checked with axe-core (no serious or critical WCAG
//! 2.1 AA violation) and for anything from another host.
//!
//! With `TAFEL_SCREENSHOTS=docs/screenshots` the main pages are saved there as PNGs
//! (desktop 1280, phone 390 CSS pixels wide); without it no file is written.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{Datelike, NaiveDate, Weekday};
use reqwest::Method;
use serde_json::{json, Value};
use tafel_sim::device::SimDevice;

use crate::assignments::{berlin, connect, reconcile_at};
use crate::browser::{browser_or_skip, phone_or_skip, Browser};
use crate::enrollment::school;
use crate::helpers::TestApp;
use crate::lessons::{as_user, user};

/// Every console user's password (the API asks for at least 12 characters).
pub(crate) const PASSWORD: &str = "Kreide-und-Tafel-2026";
const KEYNOTE_ID: i64 = 361285480;
const PAGES_ID: i64 = 361309726;
const GEOGEBRA_ID: i64 = 687678494;

/// How long a page may take to appear after a click.
const PAGE_WAIT: Duration = Duration::from_secs(20);
/// How long the readiness block may take to refresh itself (every 10 s).
const REFRESH_WAIT: Duration = Duration::from_secs(25);

const ADMIN: &str = "krause@kreis-nord.de";
const TEACHER: &str = "meyer@gym-nord.de";
const OTHER_TEACHER: &str = "kaya@gym-nord.de";
const SCHOOL_ADMIN: &str = "schmidt@gym-nord.de";

/// A district with Gymnasium Nord (classes 7b of Frau Meyer and 8a of Herr Kaya, a cart,
/// a school admin, periods 1-6, Keynote approved for lessons, Pages and GeoGebra not)
/// and Grundschule Süd with one iPad of its own.
struct World {
    app: TestApp,
    school: String,
    class_7b: String,
    keynote: String,
    pages: String,
    /// The iPads of 7b.
    ipads: Vec<SimDevice>,
    /// The UDID of Grundschule Süd's iPad.
    other_udid: String,
    /// Herr Kaya's lesson request for 8a (GeoGebra: waiting for the school admin).
    kaya_request: String,
}

/// The first school day (Monday to Friday) at least two days ahead, in Berlin: far
/// enough for the school's notice, near enough to be "this week or next".
fn school_day() -> NaiveDate {
    let mut d = (chrono::Utc::now().with_timezone(&chrono_tz::Europe::Berlin)
        + chrono::Duration::days(2))
    .date_naive();
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += chrono::Duration::days(1);
    }
    d
}

/// An iPad enrolled, placed in `school` of `tenant`, its first inventory answered; its
/// App Store knows Keynote, Pages and GeoGebra.
async fn ipad(app: &TestApp, n: usize, tenant: &str, school: &str) -> SimDevice {
    let mut d = app.device(n);
    d.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    d.store.insert(PAGES_ID, "com.apple.Pages".into());
    d.store.insert(GEOGEBRA_ID, "org.geogebra.GeoGebra".into());
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    app.place_device(d.udid.as_str(), tenant, school);
    connect(&mut d).await;
    d
}

async fn created(app: &TestApp, path: &str, body: Value) -> String {
    let (status, v) = app.post(path, body).await;
    assert_eq!(status, 201, "POST {path}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn world(n: usize) -> World {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "kreis-nord").await;
    let other_school = created(
        &app,
        &format!("/api/v1/tenants/{tenant}/schools"),
        json!({"name": "Grundschule Süd"}),
    )
    .await;
    user(&app, json!({"name": "Petra Krause", "email": ADMIN, "role": "district_admin", "password": PASSWORD})).await;
    let (meyer, _) = user(&app, json!({"name": "Frau Meyer", "email": TEACHER, "role": "teacher", "school_id": school_id, "password": PASSWORD})).await;
    let (kaya, kaya_token) = user(&app, json!({"name": "Herr Kaya", "email": OTHER_TEACHER, "role": "teacher", "school_id": school_id, "password": PASSWORD})).await;
    let (_, school_admin) = user(&app, json!({"name": "Jan Schmidt", "email": SCHOOL_ADMIN, "role": "school_admin", "school_id": school_id, "password": PASSWORD})).await;
    let classes = format!("/api/v1/schools/{school_id}/classes");
    let class_7b = created(
        &app,
        &classes,
        json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [meyer]}),
    )
    .await;
    let class_8a = created(
        &app,
        &classes,
        json!({"name": "8a", "school_year": "2026/27", "teacher_ids": [kaya]}),
    )
    .await;
    created(
        &app,
        &format!("/api/v1/schools/{school_id}/groups"),
        json!({"name": "Wagen 1"}),
    )
    .await;
    let app_body = |name: &str, bundle: &str, adam: i64| json!({"tenant_id": tenant, "name": name, "bundle_id": bundle, "adam_id": adam.to_string(), "licensed": false});
    let keynote = created(
        &app,
        "/api/v1/apps",
        app_body("Keynote", "com.apple.Keynote", KEYNOTE_ID),
    )
    .await;
    let pages = created(
        &app,
        "/api/v1/apps",
        app_body("Pages", "com.apple.Pages", PAGES_ID),
    )
    .await;
    let geogebra = created(
        &app,
        "/api/v1/apps",
        app_body("GeoGebra", "org.geogebra.GeoGebra", GEOGEBRA_ID),
    )
    .await;
    let periods = json!({
        "1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"},
        "3": {"start": "09:55", "end": "10:40"}, "4": {"start": "10:45", "end": "11:30"},
        "5": {"start": "11:50", "end": "12:35"}, "6": {"start": "12:40", "end": "13:25"}});
    let (status, s) = as_user(&app, &school_admin, "PUT", &format!("/api/v1/schools/{school_id}/lesson-settings"),
        Some(json!({"periods": periods, "min_notice_minutes": 30, "max_duration_minutes": 180, "lead_minutes": 60, "approved_app_ids": [keynote]}))).await;
    assert_eq!(status, 200, "{s}");
    let mut ipads = Vec::new();
    for i in 0..n {
        ipads.push(ipad(&app, 700 + i, &tenant, &school_id).await);
    }
    let udids: Vec<&str> = ipads.iter().map(|d| d.udid.as_str()).collect();
    if !udids.is_empty() {
        let (status, v) = app
            .post(
                &format!("/api/v1/classes/{class_7b}/devices"),
                json!({ "devices": udids }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let other = ipad(&app, 799, &tenant, &other_school).await;
    let (status, r) = as_user(&app, &kaya_token, "POST", "/api/v1/lesson-requests",
        Some(json!({"target_kind": "class", "target_id": class_8a, "app_ids": [geogebra], "date": school_day().to_string(), "periods": "1"}))).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (201, Some("pending")),
        "{r}"
    );
    World {
        school: school_id,
        class_7b,
        keynote,
        pages,
        ipads,
        other_udid: other.udid.to_string(),
        kaya_request: r["id"].as_str().unwrap().to_owned(),
        app,
    }
}

// ---------------------------------------------------------------------------------------
// Helpers for the pages

/// The path (and query) the browser shows, without the test server's address.
async fn path_now(b: &Browser, app: &TestApp) -> String {
    let url = b.current_url().await;
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("the browser left the test server: {url}"))
        .to_owned()
}

/// Waits until the browser shows a path for which `ok` holds (after a form's redirect).
pub(crate) async fn wait_for_path(
    b: &Browser,
    app: &TestApp,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let path = path_now(b, app).await;
        // The new page has loaded once its document is complete.
        let complete = b.execute("return document.readyState;", &[]).await == "complete";
        if ok(&path) && complete {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not reach {what} within {PAGE_WAIT:?}; it shows {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_exact_path(b: &Browser, app: &TestApp, want: &str) {
    wait_for_path(b, app, want, |p| p == want).await;
}

/// The page's `<html lang>`.
async fn lang(b: &Browser) -> String {
    b.find("html").await.attr("lang").await.unwrap_or_default()
}

/// The HTTP status the page came with (Navigation Timing's `responseStatus`).
async fn status_of_page(b: &Browser) -> u64 {
    b.execute(
        "return performance.getEntriesByType('navigation')[0].responseStatus;",
        &[],
    )
    .await
    .as_u64()
    .expect("chromium reports the navigation's status")
}

/// The text of the page's `<h1>`.
pub(crate) async fn heading(b: &Browser) -> String {
    b.find("h1").await.text().await
}

/// Chooses `value` in the select `select` as a person does: by clicking the option.
async fn choose(b: &Browser, select: &str, value: &str) {
    b.find(&format!("{select} option[value='{value}']"))
        .await
        .click()
        .await;
    let chosen = b
        .execute(
            "return arguments[0].value;",
            &[b.find(select).await.as_arg()],
        )
        .await;
    assert_eq!(chosen, value, "{select}");
}

/// A WebDriver cookie of the current page.
async fn cookie(b: &Browser, name: &str) -> Option<Value> {
    b.command(Method::GET, &format!("/cookie/{name}"), None)
        .await
        .ok()
}

/// Logs in at `/login` as `email` (checking the German page, axe and the form's CSRF
/// value against its cookie) and waits for the start page `lands_on`.
pub(crate) async fn log_in(b: &Browser, app: &TestApp, email: &str, lands_on: &str) {
    b.goto(&app.url("/login")).await;
    assert_eq!(lang(b).await, "de");
    assert_eq!(heading(b).await, "Anmelden");
    check_page(b, app, "log-in page").await;
    let csrf = b
        .find("form[action='/login'] input[type=hidden][name=csrf]")
        .await
        .attr("value")
        .await
        .expect("the log-in form carries a CSRF value");
    assert_eq!(csrf.len(), 32, "{csrf}");
    let c = cookie(b, "tafel_login").await.expect("the log-in cookie");
    assert_eq!(
        c["value"],
        csrf.as_str(),
        "the form's value is the cookie's"
    );
    assert_eq!(
        (&c["httpOnly"], &c["sameSite"]),
        (&json!(true), &json!("Strict"))
    );
    b.find("#email").await.send_keys(email).await;
    b.find("#password").await.send_keys(PASSWORD).await;
    b.find("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for_exact_path(b, app, lands_on).await;
    let s = cookie(b, "tafel_session").await.expect("a session cookie");
    assert_eq!(
        (&s["httpOnly"], &s["sameSite"]),
        (&json!(true), &json!("Strict"))
    );
    assert!(
        cookie(b, "tafel_login").await.is_none(),
        "the log-in cookie is gone"
    );
}

/// Every page: axe-core finds no serious or critical WCAG 2.1 AA violation, and nothing
/// on it or loaded by it comes from another host.
pub(crate) async fn check_page(b: &Browser, app: &TestApp, page: &str) {
    // The page's own stylesheet and script are in force (its CSP lets them in).
    let (sheets, htmx) = (
        b.execute(
            "return [...document.styleSheets].filter(s => s.href && s.cssRules.length > 0).length;",
            &[],
        )
        .await,
        b.execute("return typeof window.htmx;", &[]).await,
    );
    assert_eq!(
        (sheets, htmx),
        (json!(1), json!("object")),
        "{page}: tafel.css and htmx"
    );
    b.assert_accessible(page).await;
    let html = b.page_source().await;
    assert_only_this_host(&html, &app.base, page);
    let loaded = b
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            &[],
        )
        .await;
    for url in loaded.as_array().expect("resource entries") {
        let url = url.as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{}/", app.base)),
            "{page} loaded {url} from another host"
        );
    }
}

/// `html` names no `http(s)://` address of another host than `base` (XML namespace
/// names such as an inline SVG's `xmlns` are names, not addresses), and its scripts and
/// stylesheets come from this site.
fn assert_only_this_host(html: &str, base: &str, page: &str) {
    let lower = html.to_ascii_lowercase();
    for scheme in ["http://", "https://"] {
        for (at, _) in lower.match_indices(scheme) {
            let rest = &html[at + scheme.len()..];
            let end = rest
                .find(|c: char| {
                    matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | ')') || c.is_whitespace()
                })
                .unwrap_or(rest.len());
            let origin = format!("{scheme}{}", &rest[..end]);
            if origin == base {
                continue;
            }
            let before = &html[..at];
            let attr = &before[before
                .rfind(|c: char| c.is_whitespace() || c == '<')
                .map_or(0, |i| i + 1)..];
            assert!(
                attr.starts_with("xmlns") && attr.ends_with("=\""),
                "{page} names another host: {}",
                &html[at..(at + 80).min(html.len())]
            );
        }
    }
    for (tag, attr) in [("<script", "src="), ("<link", "href=")] {
        for (at, _) in lower.match_indices(tag) {
            let end = lower[at..].find('>').map_or(lower.len(), |e| at + e);
            let Some(a) = lower[at..end].find(attr) else {
                continue;
            };
            let value = html[at + a + attr.len()..end].trim_start_matches(['"', '\'']);
            assert!(
                (value.starts_with('/') && !value.starts_with("//"))
                    || value.starts_with(&format!("{base}/")),
                "{page} loads {} from elsewhere",
                &html[at..end]
            );
        }
    }
}

/// Where screenshots go: `TAFEL_SCREENSHOTS`, or nowhere.
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("TAFEL_SCREENSHOTS")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Saves the whole page (up to 2,400 CSS pixels high) as `<name>.png` at one image pixel
/// per CSS pixel — 1280 wide on a desktop, 390 on a phone — when screenshots are asked for.
pub(crate) async fn screenshot(b: &Browser, name: &str) {
    let Some(dir) = screenshot_dir() else {
        return;
    };
    let size = b
        .execute(
            "return [innerWidth, document.documentElement.scrollHeight, devicePixelRatio];",
            &[],
        )
        .await;
    let (width, height, ratio) = (
        size[0].as_f64().unwrap(),
        size[1].as_f64().unwrap().min(2400.0),
        size[2].as_f64().unwrap(),
    );
    let shot = b
        .command(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Page.captureScreenshot",
                "params": {
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1.0 / ratio},
                },
            })),
        )
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {}: {}", e.error, e.message));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("base64 PNG"))
        .expect("base64 PNG");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(
        f64::from(png_width),
        width,
        "{name}: one pixel per CSS pixel"
    );
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A lesson request's readiness as the API sums it up.
async fn readiness(app: &TestApp, id: &str) -> Value {
    let (status, r) = app
        .get(&format!("/api/v1/lesson-requests/{id}/readiness"))
        .await;
    assert_eq!(status, 200, "{r}");
    r["summary"].clone()
}

// ---------------------------------------------------------------------------------------
// The journeys

/// A district admin logs in, reads the overview, finds an iPad, creates enrollment links
/// with QR codes and their print sheet, and assigns Keynote to 7b on Tuesday periods 2-3
/// with the timetable picker.
#[actix_web::test]
async fn a_district_admin_sets_up_a_school_and_assigns_keynote_to_7b_on_tuesday_periods_2_3() {
    let Some(b) = browser_or_skip().await else {
        return;
    };
    let w = world(2).await;
    let app = &w.app;
    log_in(&b, app, ADMIN, "/admin").await;

    // The overview: 3 iPads in the district, Herr Kaya's request open.
    assert_eq!(heading(&b).await, "Übersicht");
    let figures = b.find("ul.figures").await.text().await;
    let first = b.find("ul.figures li").await;
    assert_eq!(first.find(".value").await.text().await, "3", "{figures}");
    assert_eq!(
        first.find(".label").await.text().await,
        "Geräte",
        "{figures}"
    );
    assert!(figures.contains("offene Anträge"), "{figures}");
    check_page(&b, app, "overview").await;
    screenshot(&b, "overview").await;

    // Devices: all three, then found by serial.
    b.find("nav a[href='/admin/geraete']").await.click().await;
    wait_for_exact_path(&b, app, "/admin/geraete").await;
    assert_eq!(b.find_all("#device-list tbody tr").await.len(), 3);
    check_page(&b, app, "device list").await;
    screenshot(&b, "devices").await;
    let serial = w.ipads[0].serial.clone();
    b.find("#q").await.send_keys(&serial).await;
    b.find("form.filters button[type=submit]")
        .await
        .click()
        .await;
    wait_for_path(&b, app, "the search", |p| p.contains("q=")).await;
    let rows = b.find_all("#device-list tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.contains(&serial));
    check_page(&b, app, "device search").await;

    // The iPad's page: its facts, its inventory, its commands.
    b.find("#device-list tbody tr a").await.click().await;
    let udid = w.ipads[0].udid.to_string();
    wait_for_exact_path(&b, app, &format!("/admin/geraete/{udid}")).await;
    let facts = b.find("main").await.text().await;
    for fact in [
        udid.as_str(),
        serial.as_str(),
        "Gymnasium Nord",
        "7b",
        "DeviceInformation",
    ] {
        assert!(facts.contains(fact), "{fact} missing: {facts}");
    }
    check_page(&b, app, "device page").await;

    // Schools → Gymnasium Nord: classes, carts, enrollment links.
    b.find("nav a[href='/admin/schulen']").await.click().await;
    wait_for_exact_path(&b, app, "/admin/schulen").await;
    check_page(&b, app, "school list").await;
    let school_path = format!("/admin/schulen/{}", w.school);
    b.find(&format!("a[href='{school_path}']"))
        .await
        .click()
        .await;
    wait_for_exact_path(&b, app, &school_path).await;
    assert_eq!(heading(&b).await, "Gymnasium Nord");
    let text = b.find("main").await.text().await;
    for s in [
        "7b (2026/27) – 2 Geräte",
        "8a (2026/27) – 0 Geräte",
        "Wagen 1",
        "Einschreibe-Links",
        "Noch keine Einschreibe-Links.",
    ] {
        assert!(text.contains(s), "{s} missing: {text}");
    }
    assert!(b.try_find("svg[role=img]").await.is_none());
    check_page(&b, app, "school page without links").await;
    // A link for 7b: its QR code appears.
    choose(&b, "#target", &format!("class:{}", w.class_7b)).await;
    b.find("#description")
        .await
        .send_keys("iPads im Wagen")
        .await;
    b.find("#links form button[type=submit]")
        .await
        .click()
        .await;
    let qr = b.wait_for("svg[role=img]", PAGE_WAIT).await;
    assert_eq!(
        qr.attr("aria-label").await.as_deref(),
        Some("QR-Code: Klasse 7b – iPads im Wagen")
    );
    assert_eq!(path_now(&b, app).await, format!("{school_path}#links"));
    let url = b.find("ul.links .url a").await.text().await;
    assert!(url.starts_with(&format!("{}/enroll/", app.base)), "{url}");
    // And one for the whole school.
    choose(&b, "#target", "").await;
    b.find("#links form button[type=submit]")
        .await
        .click()
        .await;
    let deadline = Instant::now() + PAGE_WAIT;
    while b.find_all("svg[role=img]").await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second QR code did not appear"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_exact_path(&b, app, &format!("{school_path}#links")).await;
    check_page(&b, app, "school page with QR codes").await;
    screenshot(&b, "school").await;

    // The print sheet: one sheet per link.
    b.find(&format!("a[href='{school_path}/druck']"))
        .await
        .click()
        .await;
    wait_for_exact_path(&b, app, &format!("{school_path}/druck")).await;
    let sheets = b.find_all(".sheet").await;
    assert_eq!(sheets.len(), 2);
    assert_eq!(b.find_all(".sheet svg[role=img]").await.len(), 2);
    check_page(&b, app, "print sheet").await;

    // Assignments: choose the school, then the timetable picker.
    b.goto(&app.url("/admin/zuweisungen")).await;
    assert_eq!(heading(&b).await, "Zuweisungen");
    assert!(b.try_find("#assignment-list").await.is_none());
    check_page(&b, app, "assignments (none)").await;
    choose(&b, "#schule", &w.school).await;
    b.find("form[action='/admin/zuweisungen/neu'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for_exact_path(
        &b,
        app,
        &format!("/admin/zuweisungen/neu?schule={}", w.school),
    )
    .await;
    assert_eq!(heading(&b).await, "Neue Zuweisung – Gymnasium Nord");
    check_page(&b, app, "new assignment").await;
    choose(&b, "#item", &format!("app:{}", w.keynote)).await;
    choose(&b, "#target", &format!("class:{}", w.class_7b)).await;
    b.find("#when-periods").await.click().await;
    b.find("#slot-Di-2").await.click().await;
    b.find("#slot-Di-3").await.click().await;
    screenshot(&b, "assignment-timetable").await;
    b.find("form[action='/admin/zuweisungen'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for_exact_path(&b, app, "/admin/zuweisungen").await;
    let row = b
        .wait_for_text("#assignment-list tbody tr", "Di 2-3", PAGE_WAIT)
        .await
        .text()
        .await;
    for s in ["Keynote", "7b", "Gymnasium Nord"] {
        assert!(row.contains(s), "{s} missing: {row}");
    }
    check_page(&b, app, "assignments").await;

    // The API reads the same assignment: Tuesday, periods 2-3, in the school's periods.
    let (status, list) = app.get("/api/v1/assignments").await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let a = &items[0];
    assert_eq!(
        (a["item_id"].as_str(), a["target_id"].as_str()),
        (Some(w.keynote.as_str()), Some(w.class_7b.as_str())),
        "{a}"
    );
    assert_eq!(a["schedule"]["kind"], "windows", "{a}");
    assert_eq!(
        a["schedule"]["weekly"],
        json!([{"weekday": "tue", "periods": "2-3"}]),
        "{a}"
    );

    // The iPad's page now wants Keynote, in Tuesday's periods.
    b.goto(&app.url(&format!("/admin/geraete/{udid}"))).await;
    let wanted = b
        .wait_for_text("main table", "Keynote", PAGE_WAIT)
        .await
        .text()
        .await;
    assert!(wanted.contains("geplant"), "{wanted}");
    check_page(&b, app, "device page with an assignment").await;
    screenshot(&b, "device").await;
    b.close().await;
}

/// Frau Meyer asks on her phone for Pages (not on the school's list) for 7b; the school
/// admin approves it; the iPads install it while her request page refreshes itself from
/// "0 von 3 bereit" to "3 von 3 bereit".
#[actix_web::test]
async fn a_teacher_asks_for_pages_on_her_phone_the_school_admin_approves_and_the_ipads_get_ready() {
    let Some(phone) = phone_or_skip().await else {
        return;
    };
    let Some(desk) = browser_or_skip().await else {
        return;
    };
    let mut w = world(3).await;
    let app = &w.app;

    // The teacher's start page: her class.
    log_in(&phone, app, TEACHER, "/unterricht").await;
    assert_eq!(heading(&phone).await, "Meine Klassen");
    let tiles = phone.find("ul.tiles").await.text().await;
    assert!(
        tiles.contains("7b") && tiles.contains("3 Geräte"),
        "{tiles}"
    );
    assert!(!tiles.contains("8a"), "{tiles}");
    check_page(&phone, app, "my classes").await;
    screenshot(&phone, "teacher-classes").await;

    // Her request: 7b, a school day ahead, periods 2-3, Pages.
    phone
        .find("main a[href='/unterricht/neu']")
        .await
        .click()
        .await;
    wait_for_exact_path(&phone, app, "/unterricht/neu").await;
    check_page(&phone, app, "new lesson request").await;
    choose(&phone, "#target", &format!("class:{}", w.class_7b)).await;
    let day = school_day();
    let date = phone.find("#date").await;
    phone
        .execute(
            "arguments[0].value = arguments[1];",
            &[date.as_arg(), json!(day.to_string())],
        )
        .await;
    assert_eq!(
        phone
            .execute("return arguments[0].value;", &[date.as_arg()])
            .await,
        day.to_string()
    );
    phone.find("#period-2").await.click().await;
    phone.find("#period-3").await.click().await;
    let pages_label = phone
        .find(&format!("label[for='app-{}']", w.pages))
        .await
        .text()
        .await;
    assert!(!pages_label.contains("ohne Genehmigung"), "{pages_label}");
    let keynote_label = phone
        .find(&format!("label[for='app-{}']", w.keynote))
        .await
        .text()
        .await;
    assert!(
        keynote_label.contains("ohne Genehmigung"),
        "{keynote_label}"
    );
    phone.find(&format!("#app-{}", w.pages)).await.click().await;
    screenshot(&phone, "teacher-new-request").await;
    phone
        .find("form[action='/unterricht'] button[type=submit]")
        .await
        .click()
        .await;
    let path = wait_for_path(&phone, app, "the request's page", |p| {
        p.starts_with("/unterricht/") && p != "/unterricht/neu"
    })
    .await;
    let id = path.trim_start_matches("/unterricht/").to_owned();
    phone
        .wait_for_text("#request-status", "wartet auf Genehmigung", PAGE_WAIT)
        .await;
    assert!(
        heading(&phone).await.starts_with("7b – "),
        "{}",
        heading(&phone).await
    );
    check_page(&phone, app, "lesson request (pending)").await;
    let (_, r) = app.get(&format!("/api/v1/lesson-requests/{id}")).await;
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["lesson_date"], day.to_string(), "{r}");
    assert_eq!(
        (r["start_time"].as_str(), r["end_time"].as_str()),
        (Some("08:50"), Some("10:40")),
        "{r}"
    );

    // The school admin finds it among the open requests and approves it.
    log_in(&desk, app, SCHOOL_ADMIN, "/admin").await;
    desk.find("nav a[href='/admin/antraege']")
        .await
        .click()
        .await;
    wait_for_exact_path(&desk, app, "/admin/antraege").await;
    let approve = format!("#approve-{id}");
    let card = desk.find("ul.requests").await.text().await;
    for s in ["Frau Meyer", "Pages", "7b", "Herr Kaya"] {
        assert!(card.contains(s), "{s} missing: {card}");
    }
    check_page(&desk, app, "open requests").await;
    desk.find(&approve).await.click().await;
    wait_for_exact_path(&desk, app, "/admin/antraege").await;
    let deadline = Instant::now() + PAGE_WAIT;
    while desk.try_find(&approve).await.is_some() {
        assert!(Instant::now() < deadline, "the request is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(desk
        .try_find(&format!("#approve-{}", w.kaya_request))
        .await
        .is_some());
    check_page(&desk, app, "open requests after approving").await;
    let (_, r) = app.get(&format!("/api/v1/lesson-requests/{id}")).await;
    assert_eq!(r["status"], "approved", "{r}");
    desk.close().await;

    // The teacher's page: approved, nothing on the iPads yet.
    phone.goto(&app.url(&path)).await;
    assert_eq!(
        phone.find("#request-status").await.text().await,
        "genehmigt"
    );
    assert_eq!(
        phone.find("#ready-summary").await.text().await,
        "0 von 3 bereit, 3 warten"
    );
    check_page(&phone, app, "lesson request (approved)").await;
    // A mark on this page: a reload would lose it.
    phone.execute("window.tafelMark = 'same page';", &[]).await;

    // An hour before the lesson the installs go out; the iPads accept and download.
    let report = reconcile_at(app, berlin(day.year(), day.month(), day.day(), 7, 50)).await;
    assert_eq!(report.installs, 3, "{report:?}");
    for d in &mut w.ipads {
        d.downloading.insert("com.apple.Pages".into());
        assert_eq!(connect(d).await, ["InstallApplication"]);
    }
    assert_eq!(readiness(app, &id).await, "0 of 3 ready, 3 installing");
    phone
        .wait_for_text(
            "#ready-summary",
            "0 von 3 bereit, 3 laden noch",
            REFRESH_WAIT,
        )
        .await;

    // The downloads finish; asked, the iPads say so.
    for d in &mut w.ipads {
        d.downloading.clear();
    }
    let udids: Vec<String> = w.ipads.iter().map(|d| d.udid.to_string()).collect();
    let udids: Vec<&str> = udids.iter().map(String::as_str).collect();
    app.enqueue(&udids, "ManagedApplicationList", None).await;
    for d in &mut w.ipads {
        assert_eq!(connect(d).await, ["ManagedApplicationList"]);
    }
    assert_eq!(readiness(app, &id).await, "3 of 3 ready");
    let summary = phone
        .wait_for_text("#ready-summary", "3 von 3 bereit", REFRESH_WAIT)
        .await;
    assert_eq!(summary.text().await, "3 von 3 bereit");
    assert_eq!(summary.attr("class").await.as_deref(), Some("summary ok"));
    assert_eq!(
        phone.execute("return window.tafelMark;", &[]).await,
        "same page",
        "the block refreshed itself, the page was not reloaded"
    );
    assert_eq!(phone.find_all("#readiness ul.devices li.ok").await.len(), 3);
    check_page(&phone, app, "lesson request (ready)").await;
    screenshot(&phone, "teacher-readiness").await;
    phone.close().await;
}

/// A teacher has no admin pages and sees only her own requests; a school admin sees no
/// device of another school.
#[actix_web::test]
async fn teachers_and_school_admins_see_only_what_is_theirs() {
    let Some(b) = browser_or_skip().await else {
        return;
    };
    let w = world(1).await;
    let app = &w.app;
    let other_device = format!("/admin/geraete/{}", w.other_udid);

    log_in(&b, app, TEACHER, "/unterricht").await;
    for path in ["/admin", other_device.as_str()] {
        b.goto(&app.url(path)).await;
        assert_eq!(status_of_page(&b).await, 403, "{path}");
        assert_eq!(heading(&b).await, "Keine Berechtigung", "{path}");
    }
    check_page(&b, app, "error page (403)").await;
    b.goto(&app.url(&format!("/unterricht/{}", w.kaya_request)))
        .await;
    assert_eq!(status_of_page(&b).await, 404);
    assert_eq!(heading(&b).await, "Nicht gefunden");
    check_page(&b, app, "error page (404)").await;
    // Log out: the session ends.
    b.goto(&app.url("/unterricht")).await;
    b.find("form[action='/logout'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for_exact_path(&b, app, "/login").await;
    b.goto(&app.url("/unterricht")).await;
    wait_for_exact_path(&b, app, "/login?next=%2Funterricht").await;

    // The school admin of Gymnasium Nord: its iPad yes, Grundschule Süd's no.
    log_in(&b, app, SCHOOL_ADMIN, "/admin").await;
    b.goto(&app.url("/admin/geraete")).await;
    assert_eq!(b.find_all("#device-list tbody tr").await.len(), 1);
    b.goto(&app.url(&format!("/admin/geraete/{}", w.ipads[0].udid)))
        .await;
    assert_eq!(status_of_page(&b).await, 200);
    b.goto(&app.url(&other_device)).await;
    assert_eq!(status_of_page(&b).await, 404);
    assert_eq!(heading(&b).await, "Nicht gefunden");
    check_page(&b, app, "error page (404, school admin)").await;
    b.close().await;
}

/// The footer's "English" switches the console to English, on the same page, and its
/// "Deutsch" back.
#[actix_web::test]
async fn the_footer_switches_the_console_to_english_and_back() {
    let Some(b) = browser_or_skip().await else {
        return;
    };
    let w = world(0).await;
    let app = &w.app;
    log_in(&b, app, SCHOOL_ADMIN, "/admin").await;
    b.goto(&app.url("/admin/schulen")).await;
    assert_eq!(
        (lang(&b).await, heading(&b).await),
        ("de".into(), "Schulen".into())
    );
    let switch = b.find("footer a").await;
    assert_eq!(switch.text().await, "English");
    assert_eq!(switch.attr("lang").await.as_deref(), Some("en"));
    switch.click().await;
    wait_for_exact_path(&b, app, "/admin/schulen").await;
    let deadline = Instant::now() + PAGE_WAIT;
    while lang(&b).await != "en" {
        assert!(Instant::now() < deadline, "the page stayed German");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(heading(&b).await, "Schools");
    check_page(&b, app, "schools (English)").await;
    let back = b.find("footer a").await;
    assert_eq!(back.attr("lang").await.as_deref(), Some("de"));
    back.click().await;
    let deadline = Instant::now() + PAGE_WAIT;
    while lang(&b).await != "de" {
        assert!(Instant::now() < deadline, "the page stayed English");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(heading(&b).await, "Schulen");
    assert_eq!(path_now(&b, app).await, "/admin/schulen");
    b.close().await;
}

/// The check for other hosts finds them (and lets an inline SVG's namespace name pass).
#[test]
fn the_host_check_finds_other_hosts_and_lets_namespace_names_pass() {
    let base = "http://127.0.0.1:4000";
    assert_only_this_host(
        r#"<svg xmlns="http://www.w3.org/2000/svg"></svg><a href="http://127.0.0.1:4000/enroll/x">x</a><script src="/static/htmx.min.js"></script><link rel="stylesheet" href="/static/tafel.css">"#,
        base,
        "fine",
    );
    for bad in [
        r#"<img src="https://cdn.example/x.png">"#,
        r#"<p>see http://example.org</p>"#,
        r#"<script src="//cdn.example/htmx.js"></script>"#,
        r#"<link rel="stylesheet" href="http://127.0.0.1:4001/x.css">"#,
    ] {
        let caught = std::panic::catch_unwind(|| assert_only_this_host(bad, base, "bad"));
        assert!(caught.is_err(), "not found: {bad}");
    }
}

#[actix_web::test]
async fn the_audit_log_and_apples_services_pass_the_same_checks() {
    let Some(b) = browser_or_skip().await else {
        return;
    };
    let w = world(1).await;
    let app = &w.app;
    log_in(&b, app, ADMIN, "/admin").await;
    b.goto(&app.url("/admin/protokoll")).await;
    b.wait_for("#audit-list", PAGE_WAIT).await;
    check_page(&b, app, "audit log").await;
    // Filtered by action: only approvals' and creations' rows, still a table or the
    // empty message.
    b.goto(&app.url("/admin/protokoll?aktion=create")).await;
    let rows = b.find_all("#audit-list tbody tr").await;
    assert!(!rows.is_empty(), "the setup created things");
    for r in rows {
        assert!(r.text().await.contains("create"));
    }
    // Apple School Manager: a server token waiting for Apple's file and a placement
    // rule, so that their forms and tables are on the page.
    let (_, school) = app.get(&format!("/api/v1/schools/{}", w.school)).await;
    let tenant = school["tenant_id"].as_str().unwrap().to_owned();
    let (status, tok) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{tok}");
    let (status, rule) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/ade-rules"),
            json!({"school_id": w.school, "order_number": "MX4711", "description": "Wagen 1"}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    b.goto(&app.url(&format!("/admin/apple?schultraeger={tenant}")))
        .await;
    b.wait_for("#push-h", PAGE_WAIT).await;
    b.wait_for("#rule-list", PAGE_WAIT).await;
    check_page(&b, app, "Apple services").await;
    screenshot(&b, "apple").await;
    b.goto(&app.url(&format!("/admin/schulen/{}/einrichtung", w.school)))
        .await;
    b.wait_for("#release_timeout_minutes", PAGE_WAIT).await;
    check_page(&b, app, "Setup Assistant of a school").await;
    screenshot(&b, "school-setup").await;
    b.close().await;
}
