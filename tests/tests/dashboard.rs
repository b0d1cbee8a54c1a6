//! The live dashboard in a real headless Chromium, driven through
//! ChromeDriver (the WebDriver protocol) on loopback: the feed shows a new
//! event after a command is sent, the lag goes to zero, an invalid command
//! sent from the page's form shows its problem. A screenshot is saved to
//! `target/dashboard.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test
//! says `SKIPPED` and passes, unless `CQRS_REQUIRE_CHROMIUM=1` (as in CI).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cqrs_core::http::{HttpOptions, axum, router};
use cqrs_core::{Engine, MemoryStore};
use cqrs_examples::bank::BankServices;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// A WebDriver session, spoken to with `curl`.
struct Driver {
    process: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = call(
            "DELETE",
            &format!("{}/session/{}", self.base, self.session),
            None,
        );
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One WebDriver call: its `value`, or the WebDriver error.
fn call(method: &str, url: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "--max-time",
        "30",
        "-X",
        method,
        "-H",
        "content-type: application/json",
    ]);
    if let Some(body) = body {
        command.args(["--data-binary", &body.to_string()]);
    }
    let output = command.arg(url).output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    let value = answer["value"].clone();
    if value.get("error").is_some() {
        return Err(value.to_string());
    }
    Ok(value)
}

impl Driver {
    fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
            assert!(
                std::env::var_os("CQRS_REQUIRE_CHROMIUM").is_none(),
                "Chromium is required (CQRS_REQUIRE_CHROMIUM) but {CHROMIUM} or {DRIVER} is missing"
            );
            eprintln!("SKIPPED: install chromium and chromium-driver to run the dashboard test");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now() + Duration::from_secs(20);
        while call("GET", &format!("{base}/status"), None).is_err() {
            assert!(
                Instant::now() < ready,
                "chromedriver did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium off the network it would try at start
        // (refused on a closed machine) and let it run as root.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let session = call(
            "POST",
            &format!("{base}/session"),
            Some(&json!({ "capabilities": { "alwaysMatch": {
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
            }}})),
        )
        .expect("a Chromium session starts");
        let session = session["sessionId"].as_str().unwrap().to_owned();
        Some(Self {
            process,
            base,
            session,
            _profile: profile,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn open(&self, url: &str) {
        call("POST", &self.url("/url"), Some(&json!({ "url": url }))).unwrap();
    }

    /// Runs `script` in the page; its return value.
    fn script(&self, script: &str) -> Value {
        call(
            "POST",
            &self.url("/execute/sync"),
            Some(&json!({ "script": script, "args": [] })),
        )
        .unwrap()
    }

    /// Waits (at most 10 s) until `script` returns true.
    fn wait_until(&self, what: &str, script: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.script(script) != json!(true) {
            if Instant::now() > until {
                let page = self.script(
                    "return document.body.innerText + '\\nrequests: ' + performance.getEntriesByType('resource').map(e => e.name + ' ' + e.responseStatus).join(', ')",
                );
                panic!(
                    "the page did not show {what} in 10 s; it shows:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = call(
            "POST",
            &self.url("/element"),
            Some(&json!({ "using": "css selector", "value": css })),
        )
        .unwrap();
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        call(
            "POST",
            &self.url(&format!("/element/{id}/click")),
            Some(&json!({})),
        )
        .unwrap();
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        call(
            "POST",
            &self.url(&format!("/element/{id}/clear")),
            Some(&json!({})),
        )
        .unwrap();
        call(
            "POST",
            &self.url(&format!("/element/{id}/value")),
            Some(&json!({ "text": text })),
        )
        .unwrap();
    }

    fn screenshot(&self, to: &Path) {
        let png = call("GET", &self.url("/screenshot"), None).unwrap();
        let encoded = png.as_str().unwrap().to_owned();
        let mut decode = Command::new("base64")
            .args(["-d"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            decode
                .stdin
                .take()
                .unwrap()
                .write_all(encoded.as_bytes())
                .unwrap();
        }
        let output = decode.wait_with_output().unwrap();
        std::fs::write(to, output.stdout).unwrap();
    }
}

async fn serve() -> SocketAddr {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let app = router(engine, HttpOptions::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn post(addr: SocketAddr, path: &str, body: &str) {
    let status = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .args(["--data-binary", body])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "200",
        "{path} {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_events_lag_and_problems_live() {
    let addr = serve().await;
    let Some(driver) = tokio::task::spawn_blocking(Driver::start).await.unwrap() else {
        return;
    };
    let page = format!("http://{addr}/dashboard");
    tokio::task::spawn_blocking(move || {
        post(addr, "/commands/OpenAccount", r#"{"account":"ada","owner":"Ada"}"#);
        driver.open(&page);
        driver.wait_until(
            "the projections",
            "return document.querySelectorAll('#projections tr').length > 0",
        );
        driver.wait_until(
            "the first event",
            "return document.querySelector('#feed').textContent.includes('account.opened')",
        );
        // A command sent while the page is open shows up in the feed.
        post(addr, "/commands/Deposit", r#"{"account":"ada","amount":4242}"#);
        driver.wait_until(
            "the deposit in the feed",
            "return [...document.querySelectorAll('#feed li')].some(li => li.textContent.includes('account.deposited') && li.textContent.includes('4242'))",
        );
        driver.wait_until(
            "the lag at zero",
            "const cells = [...document.querySelectorAll('#projections td.lag')]; \
             return cells.length > 0 && cells.every(td => td.textContent === '0')",
        );
        // An invalid command sent from the page's form shows its problem.
        driver.wait_until(
            "the command list",
            "return [...document.querySelectorAll('#command-name option')].some(o => o.value === 'Deposit')",
        );
        driver.script("document.querySelector('#command-name').value = 'Deposit'; return true;");
        driver.type_into("#command-body", r#"{"account":"ada","amount":"lots"}"#);
        driver.click("#send");
        driver.wait_until(
            "the problem",
            "const r = document.querySelector('#result'); \
             return r.className === 'problem' && r.textContent.startsWith('400 invalid body') && r.textContent.includes('amount')",
        );
        // And a valid one its receipt.
        driver.type_into("#command-body", r#"{"account":"ada","amount":1}"#);
        driver.click("#send");
        driver.wait_until(
            "the receipt",
            "const r = document.querySelector('#result'); return r.className === 'ok' && r.textContent.includes('\"version\":3')",
        );
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        std::fs::create_dir_all(&target).unwrap();
        let shot = target.join("dashboard.png");
        driver.screenshot(&shot);
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        assert!(png.len() > 10_000, "the screenshot is {} bytes", png.len());
    })
    .await
    .unwrap();
}
