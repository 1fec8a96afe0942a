//! Apple School Manager as it really answers, against the local device assignment
//! service: new terms to accept (403 `T_C_NOT_SIGNED`) pause a server token until
//! they are accepted, a profile Apple no longer knows (404 on assignment) is defined
//! again, and the server token in the layout Apple's documentation shows is accepted.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tafel::ade::token::OAuthTokens;
use tafel_sim::ade::AdeSim;
use tafel_sim::server_token::{encrypt_server_token, encrypt_server_token_as, TokenLayout};

use crate::console::{login, PASSWORD};
use crate::helpers::TestApp;

fn tokens() -> OAuthTokens {
    OAuthTokens {
        consumer_key: "CK_edge".into(),
        consumer_secret: "CS_edge".into(),
        access_token: "AT_edge".into(),
        access_secret: "AS_edge".into(),
        access_token_expiry: Utc::now() + Duration::days(300),
    }
}

/// An authority with one school whose server token is made; the sync job is off (the
/// tests run the scheduled sync's pass themselves).
struct Asm {
    app: TestApp,
    sim: AdeSim,
    tenant: String,
    school: String,
    token: String,
    cert: openssl::x509::X509,
}

async fn asm(slug: &str, devices: usize) -> (Asm, Vec<String>) {
    let sim = AdeSim::start(tokens()).unwrap();
    let serials = sim.add_devices(devices);
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.ade.base_url = url;
        s.ade.sync_minutes = 0;
    })
    .await;
    let (tenant, school) = crate::enrollment::school(&app, slug).await;
    let (status, token) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{token}");
    let cert =
        openssl::x509::X509::from_pem(token["cert_pem"].as_str().unwrap().as_bytes()).unwrap();
    let t = Asm {
        app,
        sim,
        tenant,
        school,
        token: token["id"].as_str().unwrap().to_owned(),
        cert,
    };
    (t, serials)
}

impl Asm {
    async fn upload(&self, p7m: &[u8]) -> (u16, Value) {
        crate::ade::put_p7m(&self.app, &self.token, p7m).await
    }

    /// The server token as `GET /tenants/{id}/ade-tokens` shows it.
    async fn shown(&self) -> Value {
        let (status, list) = self
            .app
            .get(&format!("/api/v1/tenants/{}/ade-tokens", self.tenant))
            .await;
        assert_eq!(status, 200, "{list}");
        list["items"][0].clone()
    }

    /// A manual sync (`POST /ade/sync`): this token's report.
    async fn sync_now(&self) -> Value {
        let (status, sync) = self.app.post("/api/v1/ade/sync", json!({})).await;
        assert_eq!(status, 200, "{sync}");
        sync["items"][0].clone()
    }

    /// One pass of the scheduled sync (what the sync job runs every few minutes).
    async fn scheduled_sync(&self) -> Vec<tafel::ade::service::SyncReport> {
        self.app.state.ade.sync().await.unwrap()
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        let (_, audit) = self
            .app
            .get(&format!(
                "/api/v1/audit?action={action}&object_id={}",
                self.token
            ))
            .await;
        audit["items"].as_array().cloned().unwrap_or_default()
    }

    async fn rule(&self, serials: &[String]) {
        let (status, rule) = self
            .app
            .post(
                &format!("/api/v1/tenants/{}/ade-rules", self.tenant),
                json!({"school_id": self.school, "serials": serials}),
            )
            .await;
        assert_eq!(status, 201, "{rule}");
    }
}

#[actix_web::test]
async fn new_terms_in_apple_school_manager_pause_the_token_until_someone_accepts_them() {
    let (t, _) = asm("adeterms", 3).await;
    let (status, active) = t
        .upload(&encrypt_server_token(&tokens(), &t.cert).unwrap())
        .await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(t.sync_now().await["devices"], 3);

    // A major OS release: Apple has new terms and refuses everything until they are
    // accepted. The token waits for them; it has not failed.
    t.sim.terms_not_signed(true);
    t.sim.add_devices(2);
    let report = t.sync_now().await;
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("terms and conditions"),
        "{report}"
    );
    let shown = t.shown().await;
    assert_eq!(shown["status"], "waiting_for_terms", "{shown}");
    let action = shown["action"].as_str().unwrap();
    assert!(
        action.contains("sign in to school.apple.com and accept them"),
        "{action}"
    );

    // The scheduled sync keeps asking Apple; one audit entry says it (not one per try).
    let before = t.sim.requests();
    let reports = t.scheduled_sync().await;
    assert_eq!(reports.len(), 1, "the waiting token is tried again");
    assert!(t.sim.requests() > before);
    assert_eq!(t.shown().await["status"], "waiting_for_terms");
    let waiting = t.audit("wait_for_terms").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["actor"], "system:ade", "{waiting:?}");

    // The console's Apple page says what to do.
    let (status, u) = t
        .app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@adeterms.de", "role": "authority_admin", "tenant_id": t.tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let s = login(&t.app.base, "amt@adeterms.de", PASSWORD)
        .await
        .unwrap();
    let (_, html) = s
        .get(&format!("/admin/apple?schultraeger={}", t.tenant))
        .await;
    assert!(
        html.contains("Melden Sie sich bei school.apple.com an und akzeptieren Sie sie"),
        "{html}"
    );

    // Someone accepts the terms: the next scheduled sync goes on by itself.
    t.sim.terms_not_signed(false);
    let reports = t.scheduled_sync().await;
    assert_eq!(reports[0].error, None, "{:?}", reports[0]);
    assert_eq!(reports[0].new_devices, 2);
    let shown = t.shown().await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert!(shown.get("action").is_none(), "{shown}");
    assert_eq!(shown["last_error"], Value::Null);
    assert_eq!(t.audit("resume").await.len(), 1);
    let (_, html) = s
        .get(&format!("/admin/apple?schultraeger={}", t.tenant))
        .await;
    assert!(!html.contains("school.apple.com an"), "{html}");

    // New terms meet the yearly renewal: the new token is kept and waits as well, and a
    // manual sync after the terms are accepted brings it back.
    t.sim.terms_not_signed(true);
    let (status, renewed) = t
        .upload(&encrypt_server_token(&tokens(), &t.cert).unwrap())
        .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["status"], "waiting_for_terms", "{renewed}");
    assert!(
        renewed["server_name"].is_string(),
        "a renewal keeps the name"
    );
    assert!(t.sync_now().await["error"].is_string());
    t.sim.terms_not_signed(false);
    let report = t.sync_now().await;
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(t.shown().await["status"], "active");
}

#[actix_web::test]
async fn a_profile_apple_no_longer_knows_is_defined_again_and_assigned() {
    let (t, serials) = asm("adeforgot", 2).await;
    let (status, _) = t
        .upload(&encrypt_server_token(&tokens(), &t.cert).unwrap())
        .await;
    assert_eq!(status, 200);
    t.rule(&serials).await;
    let report = t.sync_now().await;
    assert_eq!(report["profiles_defined"], 1, "{report}");
    assert_eq!(report["profiles_assigned"], 2, "{report}");
    let first = t.sim.profile_of(&serials[0]).unwrap().profile_uuid.unwrap();

    // Apple drops the profile; a new iPad of the school comes.
    t.sim.forget_profiles();
    let new = t.sim.add_devices(1);
    t.rule(&new).await;
    let report = t.sync_now().await;
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");
    assert_eq!(report["profiles_defined"], 1, "defined again: {report}");
    assert_eq!(
        report["profiles_assigned"], 3,
        "the new profile goes to all the school's iPads: {report}"
    );
    let again = t.sim.profile_of(&new[0]).unwrap().profile_uuid.unwrap();
    assert_ne!(again, first);
    assert!(t.sim.profile(&again).is_some());
    assert_eq!(
        t.sim.profile_of(&serials[0]).unwrap().profile_uuid,
        Some(again.clone())
    );
    let (_, audit) = t
        .app
        .get(&format!(
            "/api/v1/audit?action=define_profile&object_id={}",
            t.school
        ))
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    // Nothing left to do: the next sync asks Apple for nothing.
    let report = t.sync_now().await;
    assert_eq!(report["profiles_defined"], 0, "{report}");
    assert_eq!(report["profiles_assigned"], 0, "{report}");

    // Apple keeps losing it: the second 404 is reported in words, the sync goes on.
    t.sim.forget_profiles();
    t.sim.forget_new_profiles(true);
    let late = t.sim.add_devices(1);
    t.rule(&late).await;
    let report = t.sync_now().await;
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(report["new_devices"], 1, "{report}");
    let problem = report["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("Gymnasium Nord") && problem.contains("defined it again"),
        "{problem}"
    );
    assert!(!problem.contains("Some("), "{problem}");
    assert_eq!(t.shown().await["last_error"], problem);
    assert_eq!(t.shown().await["status"], "active");

    // Once Apple keeps it again, the next sync clears the problem.
    t.sim.forget_new_profiles(false);
    let report = t.sync_now().await;
    assert_eq!(report["problems"], json!([]), "{report}");
    assert!(t.sim.profile_of(&late[0]).unwrap().profile_uuid.is_some());
    assert_eq!(t.shown().await["last_error"], Value::Null);
}

#[actix_web::test]
async fn a_server_token_in_the_layout_apples_documentation_shows_is_accepted() {
    let (t, _) = asm("adedoc", 1).await;
    let p7m = encrypt_server_token_as(&tokens(), &t.cert, TokenLayout::Documented).unwrap();
    let (status, active) = t.upload(&p7m).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["status"], "active");
    assert_eq!(t.sync_now().await["devices"], 1);
    // Pasted as the file's text in the console (not base64) too.
    let (status, active) = t
        .app
        .put(
            &format!("/api/v1/ade-tokens/{}/server-token", t.token),
            json!({"p7m_base64": String::from_utf8(p7m).unwrap()}),
        )
        .await;
    assert_eq!(status, 200, "{active}");
}
