//! One `chromedriver` process per browser: started on a free port, killed on drop.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often a port is tried before giving up (another process may take the free port
/// between our look and chromedriver's bind).
const PORT_TRIES: u32 = 5;

/// How long chromedriver may take to answer `/status` with `ready: true`.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `chromedriver`; the process is killed when this is dropped.
pub struct ChromeDriver {
    child: Child,
    /// The port it listens on (127.0.0.1 only: chromedriver allows local connections).
    pub port: u16,
}

impl ChromeDriver {
    /// Starts `driver` on a free port and waits until it is ready for sessions. Its
    /// output goes to `log`, which the panic message quotes when it does not start.
    pub async fn start(driver: &Path, log: &Path, http: &reqwest::Client) -> ChromeDriver {
        for _ in 0..PORT_TRIES {
            let port = free_port();
            let out = File::create(log).expect("chromedriver log file");
            let err = out.try_clone().expect("chromedriver log file");
            let child = Command::new(driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
            let mut started = ChromeDriver { child, port };
            if started.wait_ready(http).await {
                return started;
            }
            // Dropping `started` kills it if it is still running; try another port.
        }
        panic!(
            "chromedriver did not start on any of {PORT_TRIES} ports; its last output:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// True once `/status` says ready and the process answering is still ours; false if
    /// our process ended (typically: the port was taken).
    async fn wait_ready(&mut self, http: &reqwest::Client) -> bool {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if self.exited() {
                return false;
            }
            let ready = match http.get(&url).send().await {
                Ok(res) => res
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            // A parallel test's chromedriver may have won the same port and answer in
            // ours' stead; ours then exits with "address in use". Only a live child counts.
            if ready && !self.exited() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "chromedriver on port {} was not ready within {READY_WITHIN:?}",
            self.port
        );
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago: bound on 127.0.0.1:0, then released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
