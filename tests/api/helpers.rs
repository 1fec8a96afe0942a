//! `TestApp`: a real server on a free port, its database, and builders for test data.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509Name;
use tafel::config::Settings;
use tafel::protocol::Udid;
use tafel::startup::Application;
use tafel::state::AppState;
use tafel_sim::device::SimDevice;
use tempfile::TempDir;

/// A PostgreSQL schema that lives as long as the test.
struct PgSchema {
    base: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = drop_pg_schema(&self.base, &self.name);
    }
}

/// Drops a test's schema. A server's background jobs may still be at work in it, and
/// PostgreSQL then may end the drop as a deadlock victim: it is tried again.
pub fn drop_pg_schema(base: &str, name: &str) -> diesel::QueryResult<()> {
    let mut c = diesel::PgConnection::establish(base)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    let mut tries = 0;
    loop {
        match c.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")) {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("deadlock") && tries < 5 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Which database the tests run on.
pub fn postgres_url() -> Option<String> {
    std::env::var("TAFEL_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A running server for one test.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Server state (database, CA).
    pub state: AppState,
    /// The district admin's token.
    pub admin_token: String,
    /// The enrollment token [`TestApp::device`] enrolls through (made on first use).
    default_token: std::sync::OnceLock<String>,
    _dir: TempDir,
    _pg: Option<PgSchema>,
}

/// Settings for a test server in `dir`.
pub fn test_settings(dir: &std::path::Path) -> (Settings, Option<(String, String)>) {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        certs_dir: dir.join("certs"),
        workers: 2,
        database_pool_size: 4,
        log_level: "error".into(),
        // No App Store lookups from the tests (the icon test runs its own store).
        app_store: tafel::config::AppStoreSettings {
            icons: false,
            ..Default::default()
        },
        ..Settings::default()
    };
    // The tests' push certificates come from simulators, not from Apple; tests of the
    // chain check turn this off again.
    settings.push.allow_untrusted_certificates = true;
    let pg = postgres_url().map(|base| {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut c =
            diesel::PgConnection::establish(&base).expect("TAFEL_TEST_POSTGRES_URL unreachable");
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        settings.database_url = format!("{base}{sep}options=-csearch_path%3D{name}");
        (base, name)
    });
    if pg.is_none() {
        settings.database_url = format!("sqlite://{}", dir.join("tafel.db").display());
    }
    (settings, pg)
}

impl TestApp {
    /// Starts a server with default test settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed the settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (mut settings, pg) = test_settings(dir.path());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        settings.public_url = format!("http://127.0.0.1:{port}");
        adjust(&mut settings);
        tafel::telemetry::init(settings.log_format, &settings.log_level);
        let app = Application::build_on(settings.clone(), listener)
            .await
            .expect("server starts");
        let admin_token = app
            .first_admin_token
            .clone()
            .expect("first start prints a token");
        let (port, state) = app.spawn();
        let scheme = if settings.tls.enabled {
            "https"
        } else {
            "http"
        };
        TestApp {
            base: format!("{scheme}://127.0.0.1:{port}"),
            // Idle connections are dropped before the server's keep-alive (`http.keep_alive_secs`, 30 s) ends
            // them, so a request never goes out on a connection the server is closing.
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap(),
            state,
            admin_token,
            default_token: std::sync::OnceLock::new(),
            _dir: dir,
            _pg: pg.map(|(base, name)| PgSchema { base, name }),
        }
    }

    /// Downloads the enrollment profile of the link `secret` and reads it as an iPad does.
    pub async fn profile_info(&self, secret: &str) -> tafel_sim::enroll::ProfileInfo {
        let body = self
            .client
            .get(self.url(&format!("/enroll/{secret}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        tafel_sim::enroll::read_profile(&body).unwrap()
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the admin token; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        json_reply(res).await
    }

    /// POST JSON with the admin token.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_reply(res).await
    }

    /// PUT JSON with the admin token.
    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PUT, path, &self.admin_token, Some(body))
            .await
    }

    /// PATCH JSON with the admin token.
    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PATCH, path, &self.admin_token, Some(body))
            .await
    }

    /// DELETE with the admin token (no body).
    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::DELETE, path, &self.admin_token, None)
            .await
    }

    /// Any method with any bearer token and an optional JSON body; returns status and
    /// JSON body (`Null` when the answer has none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        json_reply(req.send().await.unwrap()).await
    }

    /// A new simulated iPad whose identity came through an enrollment token of a test
    /// authority and school (made on first use), as our SCEP server would issue it.
    pub fn device(&self, n: usize) -> SimDevice {
        let token = self
            .default_token
            .get_or_init(|| {
                let (_, _, token) = self.enrollment_scope("tafel-tests");
                token
            })
            .clone();
        self.device_with_token(n, &token)
    }

    /// A new simulated iPad whose identity was issued through the enrollment token `token_id`.
    pub fn device_with_token(&self, n: usize, token_id: &str) -> SimDevice {
        let (key, cert) = self.identity(&format!("test-device-{n}"), 365);
        self.record_identity(&cert, token_id);
        let udid = Udid::parse(&format!("00008103-{n:016X}")).unwrap();
        SimDevice::new(
            self.client.clone(),
            &self.base,
            udid,
            format!("DMPTEST{n:05}"),
            key,
            cert,
        )
    }

    /// Records `cert` as issued by our SCEP server through the enrollment token `token_id`.
    pub fn record_identity(&self, cert: &X509, token_id: &str) {
        let sha = tafel::pki::sha256_fingerprint(cert).unwrap();
        let not_before = tafel::mdm::identity::asn1_to_naive(cert.not_before()).unwrap();
        let not_after = tafel::mdm::identity::asn1_to_naive(cert.not_after()).unwrap();
        let serial = hex::encode(cert.serial_number().to_bn().unwrap().to_vec());
        let mut conn = self.state.db.get().unwrap();
        tafel::enrollment::tokens::record_certificate(
            &mut conn,
            &tafel::enrollment::tokens::IssuedCertificate {
                sha256: &sha,
                serial: &serial,
                subject: "CN=test device",
                not_before,
                not_after,
                renewed_from: None,
                enrollment_token_id: Some(token_id),
                ade_udid: None,
                udid: None,
            },
        )
        .unwrap();
    }

    /// An authority (with a push topic), a school and an enrollment token, made directly
    /// in the database; returns (authority id, school id, token id).
    pub fn enrollment_scope(&self, slug: &str) -> (String, String, String) {
        let mut conn = self.state.db.get().unwrap();
        let tenant = tafel::org::create_tenant(
            &mut conn,
            &tafel::org::NewTenant {
                name: format!("Authority {slug}"),
                slug: slug.into(),
                push_topic: Some("com.apple.mgmt.External.tafel".into()),
            },
            "test",
        )
        .unwrap();
        let school = tafel::org::create_school(
            &mut conn,
            &tenant.id,
            &tafel::org::NewSchool {
                name: format!("School {slug}"),
                timezone: None,
            },
            "test",
        )
        .unwrap();
        let (token, _) = tafel::enrollment::tokens::create(
            &mut conn,
            &self.state.secrets,
            &tenant.id,
            &school.id,
            &tafel::enrollment::tokens::NewToken::default(),
            "test",
        )
        .unwrap();
        (tenant.id, school.id, token.id)
    }

    /// A key and an identity certificate from our CA valid for `days`.
    pub fn identity(&self, cn: &str, days: u32) -> (PKey<openssl::pkey::Private>, X509) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        let cert = self
            .state
            .ca
            .issue_client_cert(&public, &name, days)
            .unwrap();
        (key, cert)
    }

    /// Enqueues `request_type` for `udids` through the admin API; returns the command UUID.
    pub async fn enqueue(
        &self,
        udids: &[&str],
        request_type: &str,
        fields: Option<serde_json::Value>,
    ) -> String {
        let mut body = serde_json::json!({"udids": udids, "request_type": request_type});
        if let Some(f) = fields {
            body["fields"] = f;
        }
        let (status, json) = self.post("/api/v1/commands", body).await;
        assert_eq!(status, 202, "{json}");
        json["command_uuid"].as_str().unwrap().to_owned()
    }

    /// A device's queue as the admin API lists it.
    pub async fn queue_of(&self, udid: &str) -> Vec<serde_json::Value> {
        let (status, json) = self
            .get(&format!("/api/v1/devices/{udid}/commands?limit=500"))
            .await;
        assert_eq!(status, 200, "{json}");
        json["items"].as_array().unwrap().clone()
    }

    /// The queue status of one command on one device.
    pub async fn status_of(&self, udid: &str, command_uuid: &str) -> String {
        self.queue_of(udid)
            .await
            .into_iter()
            .find(|e| e["command_uuid"] == command_uuid)
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{command_uuid} not in queue of {udid}"))
    }

    /// Rows in a table (to prove a rejected request stored nothing).
    pub fn count(&self, table: &str) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.state.db.get().unwrap();
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(&mut *conn)
            .unwrap()
            .n
    }
}

/// Reads status and JSON (or `null` for an empty body).
/// A newly enrolled iPad connects and answers the inventory tafel asks of it at its
/// first TokenUpdate (and nothing else is waiting).
pub async fn answer_first_inventory(d: &mut tafel_sim::device::SimDevice) {
    let mut got = crate::assignments::connect(d).await;
    got.sort();
    assert_eq!(
        got,
        [
            "DeviceInformation",
            "InstalledApplicationList",
            "ProfileList",
            "SecurityInfo"
        ]
    );
}

pub async fn json_reply(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let json = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, json)
}

pub use openssl::x509::X509;

impl TestApp {
    /// Puts a device into an authority and school (what an import or token does).
    pub fn place_device(&self, udid: &str, tenant_id: &str, school_id: &str) {
        use diesel::prelude::*;
        use tafel::db::schema::devices;
        let mut conn = self.state.db.get().unwrap();
        diesel::update(devices::table.filter(devices::udid.eq(udid)))
            .set((
                devices::tenant_id.eq(tenant_id),
                devices::school_id.eq(school_id),
            ))
            .execute(&mut *conn)
            .unwrap();
    }

    /// Sets a device's last contact and last push to `at` (silence, for sweeps).
    pub fn set_device_times(&self, udid: &str, at: chrono::NaiveDateTime) {
        use diesel::prelude::*;
        use tafel::db::schema::devices;
        let mut conn = self.state.db.get().unwrap();
        diesel::update(devices::table.filter(devices::udid.eq(udid)))
            .set((devices::last_seen_at.eq(at), devices::last_push_at.eq(at)))
            .execute(&mut *conn)
            .unwrap();
    }
}
