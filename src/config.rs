//! Settings from `tafel.toml` plus `TAFEL_*` environment variables, validated at start.
//!
//! Environment variables override the file: `TAFEL_LISTEN` sets `listen`,
//! `TAFEL_TLS__ENABLED` sets `tls.enabled` (a double underscore separates sections).
//! Unknown keys, in the file or the environment, are errors that name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::db::DatabaseUrl;

/// Environment variables that start with `TAFEL_` but are not settings.
const NOT_SETTINGS: &[&str] = &[
    "TAFEL_CONFIG",
    "TAFEL_LOG",
    "TAFEL_TEST_POSTGRES_URL",
    "TAFEL_TEST_BIN",
    "TAFEL_ROOT_PASSPHRASE",
];

/// Everything tafel can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// A second address for people (admin API, login, documentation). When set, the
    /// `listen` address serves only devices (`/mdm`, `/scep`, `/enroll`) and the probes,
    /// so it can face the internet alone.
    pub admin_listen: Option<SocketAddr>,
    /// The URL devices and admins reach this server under (used in enrollment profiles).
    pub public_url: String,
    /// `sqlite://path/to/file.db` (default) or `postgres://user@host/db`.
    pub database_url: String,
    /// Connections in the database pool.
    pub database_pool_size: u32,
    /// Directory with the CA, server certificate and their keys.
    pub certs_dir: PathBuf,
    /// Host names and IP addresses the server certificate is issued for.
    pub hosts: Vec<String>,
    /// Log format: `text` (human-readable) or `json`.
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info` or `tafel=debug,info`.
    pub log_level: String,
    /// Number of HTTP worker threads (0: one per core).
    pub workers: usize,
    /// HTTPS settings.
    pub tls: TlsSettings,
    /// Device protocol settings.
    pub mdm: MdmSettings,
    /// APNs push settings.
    pub push: PushSettings,
    /// Inventory refresh and retention.
    pub inventory: InventorySettings,
    /// The reconciler.
    pub reconcile: ReconcileSettings,
    /// Webhook notifications.
    pub webhooks: WebhookSettings,
    /// Lesson requests.
    pub lessons: LessonSettingsConfig,
    /// Apps and Books (device licences).
    pub vpp: VppSettings,
    /// Automated Device Enrollment.
    pub ade: AdeSettings,
    /// The App Store's lookup (app icons for the console).
    pub app_store: AppStoreSettings,
    /// Timeouts of every listener: what a stalled or idle client may hold.
    pub http: HttpSettings,
    /// What `/readyz` checks beyond the database answering.
    pub health: HealthSettings,
    /// `/metrics` for Prometheus.
    pub metrics: MetricsSettings,
}

/// `/metrics` (Prometheus text format).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// The bearer token Prometheus sends (`authorization: credentials` in its scrape
    /// config). Unset: `/metrics` is off (404).
    pub token: Option<String>,
}

/// Timeouts of every listener (devices' and people's): a client that stops sending
/// gives its connection back instead of holding it (and an open file) until it gives up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Seconds a client has to send a request's headers; then 408 and the connection
    /// is closed.
    pub header_timeout_secs: u64,
    /// Seconds a request body may pause (no byte arriving) before the request ends with
    /// 408 and the connection is closed.
    pub body_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open.
    pub keep_alive_secs: u64,
    /// Seconds a closing client has to acknowledge the close (the TLS shutdown) before
    /// the connection is dropped.
    pub disconnect_timeout_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout_secs: 5,
            body_timeout_secs: 15,
            keep_alive_secs: 30,
            disconnect_timeout_secs: 2,
        }
    }
}

/// What `/readyz` checks besides a write to the database and readable certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// Least free space, in MiB, on the filesystems of the SQLite database and of
    /// `certs_dir`; below it `/readyz` answers 503 naming the disk.
    pub min_free_disk_mb: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            min_free_disk_mb: 256,
        }
    }
}

/// The App Store's public lookup, which gives an app's icon by its App Store id.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppStoreSettings {
    /// Fetch an app's icon when it is added to the catalog (off: letters instead).
    pub icons: bool,
    /// Lookup base URL (Apple's by default): `{base_url}/lookup?id=…&country=…`.
    pub base_url: String,
    /// The store front's country (ISO 3166).
    pub country: String,
}

impl Default for AppStoreSettings {
    fn default() -> Self {
        AppStoreSettings {
            icons: true,
            base_url: "https://itunes.apple.com".into(),
            country: "de".into(),
        }
    }
}

/// Automated Device Enrollment (Apple School Manager).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdeSettings {
    /// Device enrollment API base URL (Apple's by default).
    pub base_url: String,
    /// PEM files with the root certificates that sign the machine info devices send
    /// during Setup Assistant (Apple's device CA chain; tests use their own). Empty:
    /// Apple's root CA, built in.
    pub machine_info_anchors: Vec<std::path::PathBuf>,
    /// Check the validity dates of the machine info's certificate chain. Off by
    /// default: Apple still issues device identities under "Apple iPhone Device CA",
    /// which expired in 2014, and Apple says to ignore these dates.
    pub machine_info_check_time: bool,
    /// School (id) that admits devices without a school (no rule, no import) and
    /// serials Apple has not (yet) reported to tafel. Unset: they are refused.
    pub new_devices_school: Option<String>,
    /// Minutes between device syncs with Apple School Manager (0: only on demand).
    pub sync_minutes: u64,
    /// Put tafel's CA into the ADE profiles' anchor certificates, so devices trust
    /// tafel's own server certificate during Setup Assistant. Default: when tafel
    /// serves TLS itself.
    pub anchor_own_ca: Option<bool>,
}

impl Default for AdeSettings {
    fn default() -> Self {
        AdeSettings {
            base_url: "https://mdmenrollment.apple.com".into(),
            machine_info_anchors: Vec::new(),
            machine_info_check_time: false,
            new_devices_school: None,
            sync_minutes: 30,
            anchor_own_ca: None,
        }
    }
}

/// Apps and Books (device licences).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VppSettings {
    /// API base URL (Apple's by default).
    pub base_url: String,
    /// Hours a licence is kept after its app is no longer needed.
    pub grace_hours: i64,
    /// Minutes between licence syncs (assets and Apple's assignments).
    pub sync_minutes: u64,
}

impl Default for VppSettings {
    fn default() -> Self {
        VppSettings {
            base_url: "https://vpp.itunes.apple.com".into(),
            grace_hours: 24,
            sync_minutes: 60,
        }
    }
}

/// Lesson requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LessonSettingsConfig {
    /// Minutes before a lesson at which "ready" or "not ready" is announced by webhook.
    pub notify_before_minutes: i64,
}

impl Default for LessonSettingsConfig {
    fn default() -> Self {
        LessonSettingsConfig {
            notify_before_minutes: 15,
        }
    }
}

/// Webhook notifications: where events are POSTed and how hard delivery is tried.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `http(s)://…` that receives every event; none turns notifications off.
    pub url: Option<String>,
    /// File with the HMAC secret (mode 0600). When unset, `<certs_dir>/webhook.secret`
    /// is generated on first start.
    pub secret_file: Option<PathBuf>,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
    /// Seconds before each retry (the last one repeats).
    pub retry_delays_secs: Vec<u64>,
    /// Attempts before a delivery is given up as `failed`.
    pub max_attempts: u32,
    /// Delivered and failed deliveries are kept this many days.
    pub retention_days: i64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            url: None,
            secret_file: None,
            timeout_secs: 10,
            retry_delays_secs: vec![10, 60, 300, 1800, 7200],
            max_attempts: 6,
            retention_days: 30,
        }
    }
}

/// The reconciler.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Reconcile on change events and at schedule boundaries. Off only for tests
    /// that drive the clock themselves (or for a node that must not reconcile).
    pub automatic: bool,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings { automatic: true }
    }
}

/// Inventory refresh and command retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventorySettings {
    /// Devices whose inventory is older than this many hours are refreshed.
    pub refresh_hours: i64,
    /// Answered commands are kept this many days.
    pub retention_days: i64,
}

impl Default for InventorySettings {
    fn default() -> Self {
        InventorySettings {
            refresh_hours: 24,
            retention_days: 30,
        }
    }
}

/// APNs push: where, how often, how hard.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    /// APNs provider API base URL (Apple's production endpoint by default).
    pub base_url: String,
    /// Extra root CA (PEM file) to trust for the APNs server (tests, proxies).
    pub extra_root_ca: Option<PathBuf>,
    /// Milliseconds a push waits for more commands to the same device (a burst makes
    /// one push).
    pub coalesce_ms: u64,
    /// Least milliseconds between two pushes to one device.
    pub min_interval_ms: u64,
    /// Pushes in flight at once.
    pub concurrency: usize,
    /// Hours until APNs may drop an undelivered push (`apns-expiration`).
    pub expiration_hours: i64,
    /// Delays in milliseconds before retrying a push after 429, 5xx or a timeout
    /// (the last one repeats) when APNs names no `Retry-After`.
    pub retry_delays_ms: Vec<u64>,
    /// Least seconds before a retry when APNs names a `Retry-After` (`0` included).
    pub retry_after_min_secs: u64,
    /// Most seconds before any retry, whatever APNs's `Retry-After` says.
    pub retry_after_max_secs: u64,
    /// Seconds to connect to APNs and for each push's answer.
    pub timeout_secs: u64,
    /// Seconds between sweeps for devices that have commands waiting but stay silent.
    pub sweep_interval_secs: u64,
    /// A device with waiting commands not seen for this many seconds is pushed again.
    pub sweep_after_secs: u64,
    /// At most this many devices are re-pushed per sweep.
    pub sweep_batch: i64,
    /// Days before a push certificate's expiry that warnings start.
    pub expiry_warning_days: u32,
    /// Accept push certificates that do not chain to Apple's push CA (self-signed ones,
    /// a simulator's). Only for tests and simulation: such a certificate cannot wake a
    /// real iPad. Off by default.
    pub allow_untrusted_certificates: bool,
    /// PEM files with the root certificates push certificates must chain to. Empty:
    /// Apple Root CA with "Apple Application Integration 2 Certification Authority",
    /// built in. Tests use their own CA standing in for Apple's.
    pub certificate_anchors: Vec<PathBuf>,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            base_url: "https://api.push.apple.com".into(),
            extra_root_ca: None,
            coalesce_ms: 25,
            min_interval_ms: 1000,
            concurrency: 64,
            expiration_hours: 24,
            // A minute, five, then every fifteen while APNs keeps failing.
            retry_delays_ms: vec![60_000, 300_000, 900_000],
            retry_after_min_secs: 60,
            retry_after_max_secs: 3600,
            timeout_secs: 30,
            sweep_interval_secs: 300,
            sweep_after_secs: 4 * 3600,
            sweep_batch: 1000,
            expiry_warning_days: 30,
            allow_untrusted_certificates: false,
            certificate_anchors: Vec::new(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// HTTPS with the server certificate from `certs_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Serve HTTPS instead of HTTP.
    pub enabled: bool,
    /// Ask clients for a certificate and verify it against our CA (device mTLS).
    /// Clients without one are still served; device endpoints then need `Mdm-Signature`.
    pub client_certificates: bool,
}

/// Settings of the device-facing endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdmSettings {
    /// Path of the check-in endpoint.
    pub checkin_path: String,
    /// Path of the command (connect) endpoint.
    pub connect_path: String,
    /// Largest accepted check-in body in bytes.
    pub max_checkin_body: usize,
    /// Largest accepted connect body in bytes.
    pub max_connect_body: usize,
    /// Header carrying the URL-encoded PEM client certificate when TLS ends at a
    /// trusted proxy (e.g. `X-Client-Cert`). Off unless set; needs `trusted_proxies`.
    pub trusted_proxy_cert_header: Option<String>,
    /// Addresses of the TLS-terminating proxies (CIDR, e.g. `10.0.0.5/32`,
    /// `fd00::/64`) whose `trusted_proxy_cert_header` counts; from anyone else the
    /// header is ignored (and logged).
    pub trusted_proxies: Vec<Cidr>,
    /// Validity of issued device identity certificates, in days.
    pub identity_validity_days: u32,
    /// Device identity certificates kept checked in memory (public key and validity,
    /// about 2 KB each), so a known iPad's connect costs one signature check and no
    /// decoding; set it to the fleet's size. 0: every message is decoded in full.
    pub known_certificates: usize,
    /// Enrollment profiles one link hands out per hour at most (each carries a stored
    /// challenge); then 429 until the hour is over.
    pub profile_downloads_per_link_hour: u32,
    /// Enrollment profiles one address fetches per hour at most.
    pub profile_downloads_per_address_hour: u32,
    /// Identities ending within this many days are renewed (the enrollment profile is
    /// sent again with a renewal challenge).
    pub identity_renew_before_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            public_url: "http://localhost:8080".into(),
            database_url: "sqlite://data/tafel.db".into(),
            database_pool_size: 8,
            certs_dir: PathBuf::from("certs"),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            log_format: LogFormat::Text,
            log_level: "info".into(),
            workers: 0,
            tls: TlsSettings::default(),
            mdm: MdmSettings::default(),
            push: PushSettings::default(),
            inventory: InventorySettings::default(),
            reconcile: ReconcileSettings::default(),
            lessons: LessonSettingsConfig::default(),
            vpp: VppSettings::default(),
            ade: AdeSettings::default(),
            app_store: AppStoreSettings::default(),
            webhooks: WebhookSettings::default(),
            http: HttpSettings::default(),
            health: HealthSettings::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: false,
            client_certificates: true,
        }
    }
}

impl Default for MdmSettings {
    fn default() -> Self {
        MdmSettings {
            checkin_path: "/mdm/checkin".into(),
            connect_path: "/mdm/connect".into(),
            max_checkin_body: 256 * 1024,
            max_connect_body: 1024 * 1024,
            trusted_proxy_cert_header: None,
            trusted_proxies: Vec::new(),
            identity_validity_days: 365,
            known_certificates: 20_000,
            identity_renew_before_days: 30,
            profile_downloads_per_link_hour: 1000,
            profile_downloads_per_address_hour: 2000,
        }
    }
}

/// A configuration problem, with the key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or environment had a bad or unknown key.
    #[error("invalid configuration{origin}: {message}")]
    Invalid {
        /// " in tafel.toml" or " from the environment".
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads settings: the file (when it exists, or must exist because it was named
    /// explicitly), then the `TAFEL_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        explicit: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut table = toml::Table::new();
        let mut origin = String::new();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    origin = format!(" in {}", path.display());
                    table = text
                        .parse::<toml::Table>()
                        .map_err(|e| invalid(&origin, e.to_string()))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
        let mut from_env = false;
        for (name, value) in env {
            let Some(key) = name.strip_prefix("TAFEL_") else {
                continue;
            };
            if NOT_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            from_env = true;
            let path: Vec<String> = key
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_owned)
                .collect();
            set_path(&mut table, &path, env_value(&value))
                .map_err(|m| invalid(" from the environment", format!("{name}: {m}")))?;
        }
        if from_env {
            origin = if origin.is_empty() {
                " from the environment".into()
            } else {
                format!("{origin} or the environment")
            };
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().message().to_owned();
                if key == "." || key.is_empty() {
                    invalid(&origin, message)
                } else {
                    invalid(&origin, format!("{key}: {message}"))
                }
            })?;
        settings.validate().map_err(|m| invalid(&origin, m))?;
        Ok(settings)
    }

    /// Checks what serde cannot.
    fn validate(&self) -> Result<(), String> {
        DatabaseUrl::parse(&self.database_url).map_err(|e| format!("database_url: {e}"))?;
        if self.database_pool_size == 0 || self.database_pool_size > 256 {
            return Err("database_pool_size: must be between 1 and 256".into());
        }
        if !(self.public_url.starts_with("https://") || self.public_url.starts_with("http://")) {
            return Err("public_url: must start with https:// or http://".into());
        }
        for (key, p) in [
            ("mdm.checkin_path", &self.mdm.checkin_path),
            ("mdm.connect_path", &self.mdm.connect_path),
        ] {
            if !p.starts_with('/') {
                return Err(format!("{key}: must start with '/'"));
            }
        }
        if self.mdm.max_checkin_body < 1024 || self.mdm.max_connect_body < 1024 {
            return Err("mdm.max_checkin_body / mdm.max_connect_body: at least 1024 bytes".into());
        }
        if self.hosts.is_empty() {
            return Err("hosts: name at least one host for the server certificate".into());
        }
        if self.push.retry_delays_ms.is_empty() {
            return Err("push.retry_delays_ms: name at least one delay".into());
        }
        if self.push.concurrency == 0
            || self.push.sweep_interval_secs == 0
            || self.push.sweep_batch < 1
        {
            return Err(
                "push.concurrency, push.sweep_interval_secs and push.sweep_batch: at least 1"
                    .into(),
            );
        }
        if self.mdm.trusted_proxy_cert_header.is_some() && self.mdm.trusted_proxies.is_empty() {
            return Err("mdm.trusted_proxies: name the proxies (CIDR) whose mdm.trusted_proxy_cert_header counts".into());
        }
        if self.mdm.identity_validity_days == 0 {
            return Err("mdm.identity_validity_days: must be at least 1".into());
        }
        if self.mdm.identity_renew_before_days >= self.mdm.identity_validity_days {
            return Err(
                "mdm.identity_renew_before_days: must be less than mdm.identity_validity_days"
                    .into(),
            );
        }
        self.webhooks.validate()?;
        if self.http.header_timeout_secs == 0
            || self.http.body_timeout_secs == 0
            || self.http.keep_alive_secs == 0
        {
            return Err("http.header_timeout_secs, http.body_timeout_secs and http.keep_alive_secs: at least 1 (a stalled client must not hold its connection for ever)".into());
        }
        Ok(())
    }

    /// The parsed database URL (validated at load).
    pub fn database(&self) -> Result<DatabaseUrl, crate::db::DbError> {
        DatabaseUrl::parse(&self.database_url)
    }

    /// Minutes before a lesson that "ready" / "not ready" is announced.
    pub fn webhooks_lesson_notice_minutes(&self) -> i64 {
        self.lessons.notify_before_minutes
    }

    /// The public URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

impl WebhookSettings {
    /// Checks the URL and the retry policy.
    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhooks.url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err("webhooks.url: must be an http:// or https:// URL with a host".into());
            }
        }
        if self.timeout_secs == 0 || self.max_attempts == 0 || self.retention_days < 1 {
            return Err(
                "webhooks.timeout_secs, webhooks.max_attempts and webhooks.retention_days: at least 1"
                    .into(),
            );
        }
        if self.retry_delays_secs.is_empty() {
            return Err("webhooks.retry_delays_secs: at least one delay".into());
        }
        Ok(())
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/64`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: std::net::IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Is `ip` in this range? (An IPv4 address mapped into IPv6 counts as IPv4.)
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An environment value as TOML: numbers, booleans and arrays keep their type;
/// anything else is a string.
fn env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_ranges_contain_their_addresses_only() {
        let net = super::Cidr::try_from("10.1.0.0/16".to_owned()).unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("fd00::1".parse().unwrap()));
        let one = super::Cidr::try_from("fd00::5".to_owned()).unwrap();
        assert!(one.contains("fd00::5".parse().unwrap()));
        assert!(!one.contains("fd00::6".parse().unwrap()));
        let all = super::Cidr::try_from("0.0.0.0/0".to_owned()).unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129"] {
            assert!(super::Cidr::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_sqlite_on_localhost() {
        let s = Settings::load(None, false, env(&[])).unwrap();
        assert_eq!(s.database_url, "sqlite://data/tafel.db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        // Push certificates must come from Apple unless the operator says otherwise.
        assert!(!s.push.allow_untrusted_certificates);
        assert!(s.push.certificate_anchors.is_empty());
    }

    #[test]
    fn a_simulation_allows_untrusted_push_certificates_from_the_environment() {
        let s = Settings::load(
            None,
            false,
            env(&[("TAFEL_PUSH__ALLOW_UNTRUSTED_CERTIFICATES", "true")]),
        )
        .unwrap();
        assert!(s.push.allow_untrusted_certificates);
    }

    #[test]
    fn environment_overrides_and_nests() {
        let s = Settings::load(
            None,
            false,
            env(&[
                ("TAFEL_LISTEN", "0.0.0.0:9000"),
                ("TAFEL_TLS__ENABLED", "true"),
                ("TAFEL_MDM__MAX_CONNECT_BODY", "4096"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert!(s.tls.enabled);
        assert_eq!(s.mdm.max_connect_body, 4096);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Settings::load(None, false, env(&[("TAFEL_LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tafel.toml");
        std::fs::write(&file, "[tls]\nenable = true\n").unwrap();
        let err = Settings::load(Some(&file), true, env(&[])).unwrap_err();
        assert!(err.to_string().contains("enable"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Settings::load(None, false, env(&[("TAFEL_DATABASE_URL", "sqlit://x.db")]))
            .unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = Settings::load(None, false, env(&[("TAFEL_LISTEN", "nonsense")])).unwrap_err();
        assert!(
            err.to_string().contains("nonsense") || err.to_string().contains("address"),
            "{err}"
        );
    }

    #[test]
    fn webhook_urls_must_be_http() {
        let s = Settings::load(
            None,
            false,
            env(&[("TAFEL_WEBHOOKS__URL", "https://hooks.example.org/tafel")]),
        )
        .unwrap();
        assert_eq!(s.webhooks.max_attempts, 6);
        for bad in ["ftp://example.org/x", "not a url", "http://"] {
            let err =
                Settings::load(None, false, env(&[("TAFEL_WEBHOOKS__URL", bad)])).unwrap_err();
            assert!(err.to_string().contains("webhooks.url"), "{bad}: {err}");
        }
    }

    #[test]
    fn stalled_clients_are_bounded_by_default_and_never_unbounded() {
        let s = Settings::load(None, false, env(&[])).unwrap();
        assert_eq!(
            (
                s.http.header_timeout_secs,
                s.http.body_timeout_secs,
                s.http.keep_alive_secs
            ),
            (5, 15, 30)
        );
        let s =
            Settings::load(None, false, env(&[("TAFEL_HTTP__BODY_TIMEOUT_SECS", "3")])).unwrap();
        assert_eq!(s.http.body_timeout_secs, 3);
        let err = Settings::load(None, false, env(&[("TAFEL_HTTP__BODY_TIMEOUT_SECS", "0")]))
            .unwrap_err();
        assert!(err.to_string().contains("http.body_timeout_secs"), "{err}");
    }

    #[test]
    fn a_named_file_must_exist() {
        assert!(
            Settings::load(Some(Path::new("/nonexistent/tafel.toml")), true, env(&[])).is_err()
        );
        assert!(
            Settings::load(Some(Path::new("/nonexistent/tafel.toml")), false, env(&[])).is_ok()
        );
    }
}
