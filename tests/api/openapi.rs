//! The OpenAPI document: a committed snapshot shows every change to it (accept one with
//! `UPDATE_SNAPSHOTS=1 cargo test --test api openapi`), every route is documented and
//! every documented operation exists, and the documentation page loads nothing from
//! outside tafel.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

/// The committed document.
const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/openapi.snapshot.json"
);

/// Every route of the API and the probes, as the document names it.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    // users
    ("post", "/api/v1/login"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/disable"),
    ("post", "/api/v1/users/{id}/tokens"),
    ("get", "/api/v1/users/{id}/tokens"),
    ("put", "/api/v1/me/password"),
    ("post", "/api/v1/users/{id}/password-reset"),
    ("post", "/api/v1/schools/{id}/first-logins"),
    ("post", "/api/v1/tokens/{id}/revoke"),
    // organisation
    ("post", "/api/v1/tenants"),
    ("get", "/api/v1/tenants"),
    ("get", "/api/v1/tenants/{id}"),
    ("patch", "/api/v1/tenants/{id}"),
    ("delete", "/api/v1/tenants/{id}"),
    ("post", "/api/v1/tenants/{id}/schools"),
    ("get", "/api/v1/tenants/{id}/enrollment-policy"),
    ("put", "/api/v1/tenants/{id}/enrollment-policy"),
    ("get", "/api/v1/schools"),
    ("get", "/api/v1/schools/{id}"),
    ("patch", "/api/v1/schools/{id}"),
    ("delete", "/api/v1/schools/{id}"),
    ("post", "/api/v1/schools/{id}/enrollment-tokens"),
    ("get", "/api/v1/schools/{id}/enrollment-tokens"),
    ("post", "/api/v1/enrollment-tokens/{id}/revoke"),
    // push
    ("put", "/api/v1/tenants/{id}/push-certificate"),
    ("get", "/api/v1/tenants/{id}/push-certificate"),
    ("post", "/api/v1/tenants/{id}/push-certificate/request"),
    ("get", "/api/v1/tenants/{id}/push-certificate/request"),
    ("post", "/api/v1/devices/push"),
    // devices
    ("get", "/api/v1/devices"),
    ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/unseen"),
    ("get", "/api/v1/reports/failed-installs"),
    ("get", "/api/v1/reports/missing-licences"),
    ("get", "/api/v1/reports/ending"),
    ("get", "/api/v1/devices/{key}"),
    ("patch", "/api/v1/devices/{key}"),
    ("delete", "/api/v1/devices/{key}"),
    ("post", "/api/v1/devices/{key}/release"),
    ("post", "/api/v1/devices/actions"),
    ("post", "/api/v1/devices/{key}/actions"),
    ("get", "/api/v1/certificates"),
    // commands
    ("post", "/api/v1/commands"),
    ("get", "/api/v1/devices/{udid}/commands"),
    ("post", "/api/v1/devices/{udid}/commands/cancel"),
    // classes
    ("post", "/api/v1/schools/{id}/classes"),
    ("get", "/api/v1/schools/{id}/classes"),
    ("post", "/api/v1/schools/{id}/groups"),
    ("get", "/api/v1/schools/{id}/groups"),
    ("post", "/api/v1/schools/{id}/import/classes"),
    ("post", "/api/v1/schools/{id}/import/devices"),
    ("get", "/api/v1/me/classes"),
    ("get", "/api/v1/classes/{id}"),
    ("patch", "/api/v1/classes/{id}"),
    ("delete", "/api/v1/classes/{id}"),
    ("put", "/api/v1/classes/{id}/teachers"),
    ("post", "/api/v1/classes/{id}/devices"),
    ("post", "/api/v1/classes/{id}/devices/remove"),
    ("get", "/api/v1/groups/{id}"),
    ("patch", "/api/v1/groups/{id}"),
    ("delete", "/api/v1/groups/{id}"),
    ("post", "/api/v1/groups/{id}/devices"),
    ("post", "/api/v1/groups/{id}/devices/remove"),
    // catalog
    ("post", "/api/v1/apps"),
    ("get", "/api/v1/apps"),
    ("get", "/api/v1/apps/{id}"),
    ("patch", "/api/v1/apps/{id}"),
    ("delete", "/api/v1/apps/{id}"),
    ("post", "/api/v1/profiles"),
    ("get", "/api/v1/profiles"),
    ("get", "/api/v1/profiles/{id}"),
    ("patch", "/api/v1/profiles/{id}"),
    ("delete", "/api/v1/profiles/{id}"),
    ("get", "/api/v1/profile-templates"),
    ("post", "/api/v1/profiles/from-template"),
    ("post", "/api/v1/assignments"),
    ("get", "/api/v1/assignments"),
    ("get", "/api/v1/assignments/{id}"),
    ("patch", "/api/v1/assignments/{id}"),
    ("delete", "/api/v1/assignments/{id}"),
    ("post", "/api/v1/tenants/{id}/calendar"),
    ("post", "/api/v1/schools/{id}/calendar"),
    ("get", "/api/v1/devices/{key}/state"),
    ("post", "/api/v1/reconcile"),
    // lessons
    ("post", "/api/v1/lesson-requests"),
    ("get", "/api/v1/lesson-requests"),
    ("get", "/api/v1/lesson-requests/{id}"),
    ("get", "/api/v1/lesson-requests/{id}/readiness"),
    ("post", "/api/v1/lesson-requests/{id}/approve"),
    ("post", "/api/v1/lesson-requests/{id}/reject"),
    ("post", "/api/v1/lesson-requests/{id}/cancel"),
    ("get", "/api/v1/schools/{id}/lesson-settings"),
    ("put", "/api/v1/schools/{id}/lesson-settings"),
    // licences
    ("post", "/api/v1/tenants/{id}/vpp-tokens"),
    ("get", "/api/v1/tenants/{id}/vpp-tokens"),
    ("get", "/api/v1/licences"),
    ("post", "/api/v1/licences/sync"),
    // ade
    ("post", "/api/v1/tenants/{id}/ade-tokens"),
    ("get", "/api/v1/tenants/{id}/ade-tokens"),
    ("put", "/api/v1/ade-tokens/{id}/server-token"),
    ("post", "/api/v1/ade/sync"),
    ("get", "/api/v1/schools/{id}/ade"),
    ("put", "/api/v1/schools/{id}/ade"),
    ("get", "/api/v1/tenants/{id}/ade-rules"),
    ("post", "/api/v1/tenants/{id}/ade-rules"),
    ("delete", "/api/v1/ade-rules/{id}"),
    ("get", "/api/v1/tenants/{id}/ade-devices"),
    ("post", "/api/v1/tenants/{id}/ade-order-numbers"),
    // audit
    ("get", "/api/v1/audit"),
];

/// Routes that are deliberately not in the document, with why.
const UNDOCUMENTED: &[(&str, &str, &str)] =
    &[("get", "/api/v1/docs", "redirects to the documentation page")];

/// The operations that need no token.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    // Its own token (metrics.token), not an API token; off (404) until one is set.
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/login"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// `value` with every object's keys sorted, however serde_json keeps maps.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The document as served, without a token.
async fn fetch_document(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    res.json().await.unwrap()
}

/// (method, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(*m).is_some() {
                ops.insert(((*m).to_owned(), path.clone()));
            }
        }
    }
    ops
}

#[actix_web::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    assert_eq!(doc["info"]["title"], "tafel");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let actual = serde_json::to_string_pretty(&sorted(doc)).unwrap() + "\n";

    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(SNAPSHOT, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    if expected == actual {
        return;
    }
    // A short hint: the first lines that differ, with a little context.
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    let from = first.saturating_sub(3);
    let show = |lines: &[&str], sign: char| -> String {
        lines
            .iter()
            .enumerate()
            .skip(from)
            .take(10)
            .map(|(i, l)| format!("{sign}{:>6} {l}\n", i + 1))
            .collect()
    };
    panic!(
        "the OpenAPI document differs from tests/api/openapi.snapshot.json \
         ({} lines committed, {} served; first difference at line {}):\n\
         committed:\n{}served:\n{}\
         If the change is intended, accept it with \
         `UPDATE_SNAPSHOTS=1 cargo test --test api openapi` and commit the snapshot.",
        old.len(),
        new.len(),
        first + 1,
        show(&old, '-'),
        show(&new, '+'),
    );
}

/// `.route("path", web::method()` registrations in a source file.
fn registered_routes(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(s) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = s.find('"') else { continue };
        let path = &s[..end];
        let after = s[end + 1..].trim_start();
        let Some(after) = after.strip_prefix(',') else {
            continue;
        };
        let Some(m) = after.trim_start().strip_prefix("web::") else {
            continue;
        };
        let method: String = m.chars().take_while(char::is_ascii_alphabetic).collect();
        found.push((method, path.to_owned()));
    }
    found
}

#[actix_web::test]
async fn every_route_is_documented_and_every_documented_operation_exists() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let documented = operations(&doc);
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed.len(), ROUTES.len(), "ROUTES has a duplicate");

    // Every route the handler modules register is in ROUTES (or knowingly left out), so
    // a new endpoint cannot slip past this test.
    let api = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    for entry in std::fs::read_dir(api).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let prefix = if file.ends_with("mod.rs") {
            ""
        } else {
            "/api/v1"
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for (method, path) in registered_routes(&source) {
            let route = (method, format!("{prefix}{path}"));
            let skipped = UNDOCUMENTED
                .iter()
                .any(|(m, p, _)| route.0 == *m && route.1 == *p);
            assert!(
                skipped || listed.contains(&route),
                "{} {} (registered in {}) is not in ROUTES of tests/api/openapi.rs: \
                 annotate its handler with #[utoipa::path], list it in ApiDoc and in ROUTES",
                route.0.to_uppercase(),
                route.1,
                file.display()
            );
        }
    }

    for route in &listed {
        assert!(
            documented.contains(route),
            "{} {} is not in the OpenAPI document: annotate its handler with \
             #[utoipa::path] and list it in `paths(...)` of src/api/openapi.rs",
            route.0.to_uppercase(),
            route.1
        );
    }
    for op in &documented {
        assert!(
            listed.contains(op),
            "the document has {} {}, which ROUTES does not list",
            op.0.to_uppercase(),
            op.1
        );
    }

    // Every documented operation exists on the server, and needs a token exactly when
    // the document says so. Without a token, a route that exists answers 401 before
    // doing anything; one that does not answers 404 "no such endpoint" (or 405).
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        let secured = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let public = PUBLIC.iter().any(|(m, p)| m == method && p == path);
        assert_eq!(
            secured, !public,
            "{method} {path}: documented security does not match"
        );
        if secured {
            assert!(
                op["responses"].get("401").is_some(),
                "{method} {path}: no 401 documented"
            );
        }
        let url = app.url(&path.replace('{', "").replace('}', "-x"));
        let req = app
            .client
            .request(method.to_uppercase().parse().unwrap(), url);
        let req = if method == "post" || method == "put" {
            req.header("content-type", "application/json").body("{}")
        } else {
            req
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            !(status == 404 && body.contains("no such endpoint")) && status != 405,
            "{method} {path} is documented but the server has no such route: {status} {body}"
        );
        if secured {
            assert_eq!(
                status, 401,
                "{method} {path} answered without a token: {body}"
            );
        } else {
            assert_ne!(status, 401, "{method} {path} wants a token: {body}");
        }
    }
}

/// Every JSON answer is a named type with its fields, never a bare `object`: the OpenAPI
/// document itself is the one answer whose shape is not tafel's.
#[actix_web::test]
async fn every_json_answer_is_a_documented_type() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let mut untyped = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response.pointer("/content/application~1json/schema") else {
                    continue;
                };
                let typed = schema.get("$ref").is_some()
                    || schema.get("properties").is_some()
                    || schema.get("allOf").is_some()
                    || schema.get("items").is_some();
                if !typed && path != "/api/v1/openapi.json" {
                    untyped.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(
        untyped.is_empty(),
        "answers documented as bare objects: {untyped:?}"
    );
}

#[actix_web::test]
async fn the_documentation_page_is_served_without_any_outside_resource() {
    let app = TestApp::spawn().await;
    // Without the trailing slash the page redirects to itself.
    let res = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().path(), "/api/v1/docs/");

    let res = app
        .client
        .get(app.url("/api/v1/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // Every script and style the page loads is ours, and answers.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            let url = &value[..value.find('"').unwrap()];
            assets.push(url.to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "no script in {html}"
    );
    for asset in &assets {
        let lower = asset.to_lowercase();
        assert!(
            !(lower.starts_with("http:") || lower.starts_with("https:") || lower.starts_with("//")),
            "the documentation page loads {asset} from outside"
        );
        let local = format!("/api/v1/docs/{}", asset.trim_start_matches("./"));
        let res = app.client.get(app.url(&local)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{local}");
    }

    // The page reads our document, and sends it to no online validator.
    let init = app
        .client
        .get(app.url("/api/v1/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let init = init.text().await.unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(!init.contains("https://"), "{init}");
}

/// An assignment's schedule is a documented schema: both kinds with their fields, the
/// window entries with theirs, and an example of each form that tafel accepts.
#[actix_web::test]
async fn the_schedule_is_documented_with_an_example_per_form() {
    use tafel::assign::schedule::ScheduleSpec;
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let refers = |v: &Value| v.to_string().contains("\"#/components/schemas/Schedule\"");
    assert!(
        refers(&schemas["NewAssignmentBody"]["properties"]["schedule"]),
        "{}",
        schemas["NewAssignmentBody"]
    );
    assert!(refers(&schemas["Assignment"]["properties"]["schedule"]));
    let schedule = &schemas["Schedule"];
    let forms = schedule["oneOf"].as_array().expect("one schema per kind");
    let kinds: Vec<&Value> = forms
        .iter()
        .map(|f| &f["properties"]["kind"]["enum"][0])
        .collect();
    assert_eq!(kinds, ["always", "windows"], "{schedule}");
    let windows = &forms[1]["properties"];
    for field in [
        "timezone",
        "weekly",
        "dates",
        "ranges",
        "valid_from",
        "valid_until",
        "lead_minutes",
        "after",
        "exclude_holidays",
    ] {
        assert!(windows.get(field).is_some(), "windows.{field}: {schedule}");
    }
    for (name, fields) in [
        ("WeeklyWindow", &["weekday", "start", "end", "periods"][..]),
        ("DateWindow", &["date", "start", "end", "periods"]),
        (
            "DateRangeWindow",
            &["from", "to", "start", "end", "periods"],
        ),
    ] {
        for field in fields {
            assert!(
                schemas[name]["properties"].get(field).is_some(),
                "{name}.{field}: {}",
                schemas[name]
            );
        }
        assert!(!schemas[name]["examples"].as_array().unwrap().is_empty());
    }
    // One example per form: always, clock times, the school's periods; each is accepted.
    let examples = schedule["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 3, "{schedule}");
    let specs: Vec<ScheduleSpec> = examples
        .iter()
        .map(|e| ScheduleSpec::parse_json(e).unwrap_or_else(|err| panic!("{e}: {err}")))
        .collect();
    assert_eq!(specs[0], ScheduleSpec::Always);
    assert!(!specs[1].uses_periods() && specs[1] != ScheduleSpec::Always);
    assert!(specs[2].uses_periods());
}
