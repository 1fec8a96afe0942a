//! Browser tests: a small W3C WebDriver client driving Debian's headless `chromium`
//! through `chromedriver`, one driver and one browser per test (tests run in parallel).
//!
//! A test starts with [`browser_or_skip`] (or [`phone_or_skip`]): it returns `None`, and
//! says so loudly, when chromium is not installed, unless `CI=true` or
//! `TAFEL_BROWSER_TESTS=1`, where a missing browser fails the test. `.ci/run` installs
//! `chromium` and `chromium-driver`.
//!
//! The client panics on every WebDriver error with the command and chromedriver's
//! message: these are test helpers, and a panic is the test's failure.

mod axe;
mod driver;
mod harness;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use tempfile::TempDir;

use driver::ChromeDriver;

/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A user agent like an iPhone's Safari, for [`Browser::phone`].
const PHONE_USER_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// `chromedriver`: `TAFEL_CHROMEDRIVER` or Debian's path.
fn chromedriver_path() -> PathBuf {
    std::env::var_os("TAFEL_CHROMEDRIVER")
        .map_or_else(|| "/usr/bin/chromedriver".into(), Into::into)
}

/// The browser: `TAFEL_CHROMIUM` or Debian's path.
fn chromium_path() -> PathBuf {
    std::env::var_os("TAFEL_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), Into::into)
}

/// Whether a missing browser fails the test instead of skipping it.
fn browser_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("TAFEL_BROWSER_TESTS").is_ok_and(|v| v == "1")
}

/// True when chromium and chromedriver are installed. When they are not: panics under
/// `CI=true` or `TAFEL_BROWSER_TESTS=1`, otherwise prints a skip notice and returns false.
pub fn browsers_available() -> bool {
    let missing: Vec<String> = [chromedriver_path(), chromium_path()]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "browser tests need chromium and chromium-driver \
         (apt-get install chromium chromium-driver); missing: {}",
        missing.join(", ")
    );
    assert!(
        !browser_required(),
        "{what} (required because CI=true or TAFEL_BROWSER_TESTS=1)"
    );
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        // Straight to stderr: libtest captures eprintln! of passing tests, and a skip
        // that nobody sees is a test that silently passes.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPING BROWSER TESTS: {what}. \
             Set TAFEL_BROWSER_TESTS=1 to make this a failure. ***\n"
        );
    });
    false
}

/// A desktop browser, or `None` (after a skip notice) when none is installed.
pub async fn browser_or_skip() -> Option<Browser> {
    if browsers_available() {
        Some(Browser::start().await)
    } else {
        None
    }
}

/// A phone-sized browser, or `None` (after a skip notice) when none is installed.
pub async fn phone_or_skip() -> Option<Browser> {
    if browsers_available() {
        Some(Browser::phone().await)
    } else {
        None
    }
}

/// How a browser is started.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// A phone (390×844 CSS pixels, device pixel ratio 2, touch, mobile viewport
    /// handling, an iPhone user agent) instead of a 1280×900 desktop window.
    pub phone: bool,
    /// `Accept-Language` and `navigator.languages`, e.g. `"de-DE,de"` or `"en-US,en"`.
    pub languages: String,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            phone: false,
            languages: "de-DE,de".into(),
        }
    }
}

/// An error chromedriver answered with.
#[derive(Debug)]
pub struct WebDriverError {
    /// The W3C error code, e.g. `no such element`.
    pub error: String,
    /// chromedriver's message.
    pub message: String,
}

/// A headless chromium session. Dropping it ends the session (blocking, best effort),
/// kills the browser if that failed, then kills chromedriver and removes the profile;
/// [`Browser::close`] ends the session without blocking.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    session_id: String,
    /// The browser's main process (`goog:processID`), killed if ending the session fails.
    browser_pid: Option<u64>,
    open: bool,
    // Dropped in this order after `Drop for Browser`: chromedriver, then its files.
    driver: ChromeDriver,
    _dir: TempDir,
}

impl Browser {
    /// A desktop browser (1280×900), German first.
    pub async fn start() -> Browser {
        Browser::with_options(BrowserOptions::default()).await
    }

    /// A phone-sized browser (390×844, touch, iPhone user agent), German first.
    pub async fn phone() -> Browser {
        Browser::with_options(BrowserOptions {
            phone: true,
            ..BrowserOptions::default()
        })
        .await
    }

    /// A browser started with `options`.
    pub async fn with_options(options: BrowserOptions) -> Browser {
        let dir = tempfile::tempdir().expect("browser temp dir");
        let http = reqwest::Client::builder()
            // Only 127.0.0.1 is ever spoken to; a proxy from the environment must not.
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let driver = ChromeDriver::start(
            &chromedriver_path(),
            &dir.path().join("chromedriver.log"),
            &http,
        )
        .await;
        let (width, height) = if options.phone {
            (390, 844)
        } else {
            (1280, 900)
        };
        let lang = options.languages.split(',').next().unwrap_or("de-DE");
        let mut chrome = json!({
            "binary": chromium_path(),
            "args": [
                "--headless=new",
                // Root in a container has no usable user namespace for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is small in containers; chromium crashes when it fills.
                "--disable-dev-shm-usage",
                format!("--window-size={width},{height}"),
                "--no-proxy-server",
                "--no-first-run",
                format!("--lang={lang}"),
                // Our own profile directory, removed with `dir` even if chromium is killed.
                format!("--user-data-dir={}", dir.path().join("profile").display()),
            ],
            "prefs": { "intl": { "accept_languages": options.languages } },
        });
        if options.phone {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width, "height": height, "pixelRatio": 2,
                    "mobile": true, "touch": true,
                },
                "userAgent": PHONE_USER_AGENT,
            });
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            // axe-core on a long page takes seconds; a page that does not load in 30 s fails.
            "timeouts": { "script": 60_000, "pageLoad": 30_000, "implicit": 0 },
        }}});
        let base = format!("http://127.0.0.1:{}", driver.port);
        let value = send(&http, Method::POST, &format!("{base}/session"), Some(caps))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromium did not start: {}: {}\nchromedriver log:\n{}",
                    e.error,
                    e.message,
                    std::fs::read_to_string(dir.path().join("chromedriver.log"))
                        .unwrap_or_default()
                )
            });
        let session_id = value["sessionId"]
            .as_str()
            .expect("new session has an id")
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session_id}"),
            session_id,
            browser_pid: value["capabilities"]["goog:processID"].as_u64(),
            open: true,
            driver,
            _dir: dir,
        }
    }

    /// Ends the session (the browser quits); chromedriver is killed on drop.
    pub async fn close(mut self) {
        if send(&self.http, Method::DELETE, &self.session, None)
            .await
            .is_ok()
        {
            self.open = false;
        }
    }

    /// Sends a WebDriver command of this session (`path` after `/session/<id>`).
    pub async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        send(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    /// Like [`Browser::command`], panicking with the page's URL on an error.
    async fn must(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        match self.command(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => {
                let url = self
                    .command(Method::GET, "/url", None)
                    .await
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                panic!(
                    "WebDriver {method} {path} on {url}: {}: {}",
                    e.error, e.message
                )
            }
        }
    }

    /// Opens `url` and waits for its load event.
    pub async fn goto(&self, url: &str) {
        self.must(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The URL the browser shows (after redirects).
    pub async fn current_url(&self) -> String {
        as_string(self.must(Method::GET, "/url", None).await)
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> String {
        as_string(self.must(Method::GET, "/title", None).await)
    }

    /// The page's HTML as the browser now has it.
    pub async fn page_source(&self) -> String {
        as_string(self.must(Method::GET, "/source", None).await)
    }

    /// The first element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let v = self.must(Method::POST, "/element", Some(by_css(css))).await;
        Element::from_value(self, &v)
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        self.find_all(css).await.into_iter().next()
    }

    /// Every element matching `css`, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self
            .must(Method::POST, "/elements", Some(by_css(css)))
            .await;
        elements(self, &v)
    }

    /// Waits until an element matches `css` (polling every 50 ms); panics after `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(el) = self.try_find(css).await {
                return el;
            }
            assert!(
                Instant::now() < deadline,
                "no element matched {css:?} within {timeout:?} on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matching `css` contains `needle` in its visible text (a
    /// page that refreshes itself); panics after `timeout` with the last text seen.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> Element<'_> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(el) = self.try_find(css).await {
                // The element may be replaced between finding and reading it.
                if let Ok(v) = self.command(Method::GET, &el.path("/text"), None).await {
                    let text = as_string(v);
                    if text.contains(needle) {
                        return el;
                    }
                    last = Some(text);
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} did not show {needle:?} within {timeout:?} on {}; last text: {last:?}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `js` as a function body with `args` (`arguments[0]`, …) and returns what it
    /// returns. Pass elements with [`Element::as_arg`].
    pub async fn execute(&self, js: &str, args: &[Value]) -> Value {
        self.must(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
        .await
    }

    /// Runs `js` with a callback as its last argument and returns what is passed to the
    /// callback (within the session's script timeout, 60 s).
    pub async fn execute_async(&self, js: &str, args: &[Value]) -> Value {
        self.must(
            Method::POST,
            "/execute/async",
            Some(json!({ "script": js, "args": args })),
        )
        .await
    }

    /// Saves what the window shows as a PNG at `path` (folders are created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let v = self.must(Method::GET, "/screenshot", None).await;
        write_png(path.as_ref(), &v);
    }

    /// Saves the whole page, beyond the window's height, as a PNG at `path`
    /// (chromium's DevTools `Page.captureScreenshot`; for the screenshots in `docs/`).
    pub async fn screenshot_full_page(&self, path: impl AsRef<Path>) {
        let v = self
            .must(
                Method::POST,
                "/goog/cdp/execute",
                Some(json!({
                    "cmd": "Page.captureScreenshot",
                    "params": { "format": "png", "captureBeyondViewport": true },
                })),
            )
            .await;
        write_png(path.as_ref(), &v["data"]);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.open && !delete_session_blocking(self.driver.port, &self.session_id) {
            // chromedriver's death does not end its browser: end it here, by its id.
            if let Some(pid) = self.browser_pid {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// An element of the page, valid until the page changes.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl<'b> Element<'b> {
    fn from_value(browser: &'b Browser, v: &Value) -> Element<'b> {
        Element {
            browser,
            id: v[ELEMENT_KEY]
                .as_str()
                .expect("an element reference")
                .to_owned(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// This element as an argument of [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Clicks it (scrolled into view; fails if something covers it).
    pub async fn click(&self) {
        self.browser
            .must(Method::POST, &self.path("/click"), Some(json!({})))
            .await;
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) {
        self.browser
            .must(
                Method::POST,
                &self.path("/value"),
                Some(json!({ "text": text })),
            )
            .await;
    }

    /// Empties an input or textarea.
    pub async fn clear(&self) {
        self.browser
            .must(Method::POST, &self.path("/clear"), Some(json!({})))
            .await;
    }

    /// Its visible text.
    pub async fn text(&self) -> String {
        as_string(
            self.browser
                .must(Method::GET, &self.path("/text"), None)
                .await,
        )
    }

    /// An attribute (or, as WebDriver does, the property of that name), if set.
    pub async fn attr(&self, name: &str) -> Option<String> {
        let v = self
            .browser
            .must(Method::GET, &self.path(&format!("/attribute/{name}")), None)
            .await;
        v.as_str().map(str::to_owned)
    }

    /// The first element inside this one matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'b> {
        let v = self
            .browser
            .must(Method::POST, &self.path("/element"), Some(by_css(css)))
            .await;
        Element::from_value(self.browser, &v)
    }
}

/// One request to chromedriver; its `value`, or the error it names.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.map_err(|e| WebDriverError {
        error: "no answer from chromedriver".into(),
        message: e.to_string(),
    })?;
    let ok = res.status().is_success();
    let mut v: Value = res.json().await.map_err(|e| WebDriverError {
        error: "unreadable answer from chromedriver".into(),
        message: e.to_string(),
    })?;
    let value = v["value"].take();
    if ok {
        Ok(value)
    } else {
        Err(WebDriverError {
            error: as_string(value["error"].clone()),
            message: as_string(value["message"].clone()),
        })
    }
}

/// Ends a session from `Drop`, which cannot await: a plain HTTP/1.1 request on a
/// blocking socket. chromedriver answers once the browser has quit.
fn delete_session_blocking(port: u16, session_id: &str) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        s.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut status = [0u8; 12];
        s.read_exact(&mut status)?;
        Ok(status.starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

fn by_css(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn elements<'b>(browser: &'b Browser, v: &Value) -> Vec<Element<'b>> {
    v.as_array()
        .map(|a| a.iter().map(|e| Element::from_value(browser, e)).collect())
        .unwrap_or_default()
}

fn as_string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Decodes a base64 PNG from chromedriver and writes it to `path`.
fn write_png(path: &Path, v: &Value) {
    let png = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("screenshot as base64"))
        .expect("screenshot is base64");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("screenshot folder");
    }
    std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
