//! The web dashboard (`--web`) in a real browser: Debian's headless Chromium driven over
//! WebDriver (`/usr/bin/chromedriver`, started by each test on a free port) with `fantoccini`,
//! against the real binary.
//!
//! The tests are ignored by default because they need `chromium` and `chromium-driver`;
//! `.ci/run` installs both and runs them with
//! `cargo test -p wot-dashboard-example --test browser -- --ignored`.
//! `WOT_DASHBOARD_SCREENSHOT=1` makes the simulator test rewrite `docs/dashboard-web.png`.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The rule the simulator test loads: it holds for any temperature, so it fires one second
/// after the first reading whatever the simulated physics do.
const RULE_ID: &str = "browser-test";
const RULES: &str = r#"
rules:
  - id: browser-test
    thing: "urn:wot-live:sim:fridge-1"
    property: temperature
    condition: { gt: -1000000 }
    for: 1s
    severity: warning
    summary: "browser test: the cold room reads {{value}} {{unit}}"
"#;
const TOKEN: &str = "browser-test-token-0123456789abcdef";
/// Longest wait for anything the page should show.
const PATIENCE: Duration = Duration::from_secs(60);

/// One browser at a time: the machine's cores are shared, and the benchmark measures frames.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn one_browser() -> MutexGuard<'static, ()> {
    ONE_BROWSER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "wot-dashboard-browser-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the dashboard with `--web 127.0.0.1:0` (unless `args` name an address) and returns
/// it with the URL it printed.
fn dashboard(args: &[&str], envs: &[(&str, &str)]) -> (Running, String) {
    let any_port: &[&str] = if args.contains(&"--web") {
        &[]
    } else {
        &["--web", "127.0.0.1:0"]
    };
    let mut child = Command::new(BIN)
        .args(["--duration", "300s", "--no-state"])
        .args(any_port)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dashboard binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let child = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(url) = line.strip_prefix("web: ") {
                sent = tx.send(url.trim().to_owned()).is_ok();
            }
        }
    });
    let url = rx
        .recv_timeout(PATIENCE)
        .expect("the dashboard prints `web: URL` on stdout");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
}

/// A free TCP port on 127.0.0.1 (for chromedriver, which wants a number).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// chromedriver in a process group of its own, with the Chromium it starts: the whole group
/// is killed when the test ends, so a failed test leaves no browser behind.
struct DriverGroup(Child);

impl Drop for DriverGroup {
    fn drop(&mut self) {
        // `--` before the negative process-group id: without it, procps' kill reads the id
        // as options and signals other processes.
        let id = self.0.id();
        if id > 1 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{id}")])
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium under chromedriver, with a profile in `dir`.
struct Browser {
    client: Client,
    _driver: DriverGroup,
}

impl Browser {
    async fn start(dir: &Path) -> Self {
        let port = free_port();
        let driver = DriverGroup(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts (install chromium-driver)"),
        );
        let profile = dir.join("chromium-profile");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1600,1200",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let give_up = Instant::now() + PATIENCE;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(_) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from {CHROMEDRIVER}: {e}"),
            }
        };
        Self {
            client,
            _driver: driver,
        }
    }

    /// Runs `script` (a function body) in the page and returns its result.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something other than null, false, 0 or "".
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let value = self.js(script).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < give_up,
                "waited {PATIENCE:?} for {what}; the page says: {}",
                self.js("return document.body.innerText.slice(0, 3000)")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the page has loaded its snapshot and its live stream is open.
    async fn wait_live(&self) {
        self.wait_for(
            "the snapshot and an open stream",
            "return window.wotDashboard && window.wotDashboard.ready && window.wotDashboard.streamOpen",
        )
        .await;
    }

    /// Clicks the first element matching `css`, again if the page redrew it meanwhile.
    async fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            let result = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.click().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return,
                Err(_) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
    }

    /// The page's own counters of dropped repeats and CSP violations; all must be zero/empty.
    async fn assert_clean(&self) {
        let probe = self
            .js("const p = window.wotDashboard; \
                 return {ids: p.repeatedIds, seqs: p.repeatedSeqs, csp: p.cspViolations};")
            .await;
        assert_eq!(probe, json!({"ids": 0, "seqs": 0, "csp": []}));
    }

    /// The `seq` numbers of the timeline rows, as shown (newest first).
    async fn timeline_seqs(&self) -> Vec<u64> {
        let seqs = self
            .js("return [...document.querySelectorAll('#timeline li[data-seq]')].map(li => Number(li.dataset.seq))")
            .await;
        serde_json::from_value(seqs).expect("numbers")
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn snapshot(page: &str) -> Value {
    reqwest::get(format!("{page}api/snapshot"))
        .await
        .expect("GET /api/snapshot")
        .json()
        .await
        .expect("a JSON snapshot")
}

/// Checks that `seqs` (newest first) is a contiguous run: nothing lost, nothing repeated.
fn assert_contiguous(seqs: &[u64]) {
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[0],
            pair[1] + 1,
            "the timeline's seq numbers are not a contiguous run: {seqs:?}"
        );
    }
}

#[test]
#[ignore = "needs chromium and chromedriver; .ci/run runs it with --ignored"]
fn the_dashboard_in_chromium_against_the_simulator() {
    let _one = one_browser();
    let dir = TempDir::new("sim");
    let rules = dir.0.join("rules.yaml");
    std::fs::write(&rules, RULES).expect("the rules file");
    let rules = rules.to_str().expect("a UTF-8 path");
    let (_dashboard, url) = dashboard(
        &["--rules", rules, "--sim-tick", "50ms"],
        &[("WOT_DASHBOARD_WEB_TOKEN", TOKEN)],
    );
    let (page, fragment) = url.split_once('#').unwrap_or((&url, ""));
    assert_eq!(fragment, format!("token={TOKEN}"), "{url}");
    let page = page.to_owned();

    runtime().block_on(async {
        // A POST without the token is refused.
        let refused = reqwest::Client::new()
            .post(format!("{page}api/alerts/acknowledge"))
            .json(&json!({"rule": RULE_ID, "thing": "urn:wot-live:sim:fridge-1"}))
            .send()
            .await
            .expect("POST");
        assert_eq!(refused.status(), 401);

        let browser = Browser::start(&dir.0).await;
        browser.client.goto(&url).await.expect("the page loads");
        browser.wait_live().await;
        let things = snapshot(&page).await["things"]
            .as_array()
            .map_or(0, Vec::len);
        let cards = browser
            .js("return document.querySelectorAll('#things .card').length")
            .await;
        assert!(things > 0);
        assert_eq!(cards, json!(things), "one card per Thing");
        // The token left the address bar for sessionStorage.
        assert_eq!(browser.js("return location.hash").await, json!(""));

        // Values change, and the connections show as open.
        let values = "return [...document.querySelectorAll('.prop .value')].map(e => e.textContent).join('|')";
        let before = browser.js(values).await;
        browser
            .wait_for(
                "property values to change",
                &format!("const now = (() => {{ {values} }})(); return now !== {before} && now;"),
            )
            .await;
        browser
            .wait_for(
                "an open connection",
                "return document.querySelector('.links .chip[data-state=\"open\"]')",
            )
            .await;
        browser
            .wait_for(
                "a chart drawn",
                "return document.querySelector('.prop .chart canvas')",
            )
            .await;

        // A property's view switches from chart to plain value and back.
        let target = browser
            .js("const box = document.querySelector('.prop .chart').closest('.prop'); \
                 return `.card[data-thing=\"${box.closest('.card').dataset.thing}\"] .prop[data-property=\"${box.dataset.property}\"]`;")
            .await;
        let target = target.as_str().expect("a selector");
        browser.click(&format!("{target} button[data-mode=\"value\"]")).await;
        browser
            .wait_for(
                "the property shown as a plain value",
                &format!("return !document.querySelector('{target} canvas') && document.querySelector('{target} button.on').dataset.mode === 'value'"),
            )
            .await;
        browser.click(&format!("{target} button[data-mode=\"chart\"]")).await;
        browser
            .wait_for(
                "the property charted again",
                &format!("return document.querySelector('{target} canvas')"),
            )
            .await;

        // The rule fires; acknowledge and silence it from the page.
        let alert = format!("#alerts-active li[data-rule=\"{RULE_ID}\"]");
        browser
            .wait_for(
                "the test rule to fire",
                &format!("return document.querySelector('{alert}[data-state=\"firing\"] button.ack:enabled')"),
            )
            .await;
        assert!(
            browser
                .js("return document.title")
                .await
                .as_str()
                .is_some_and(|title| title.contains("firing")),
            "the tab's title counts firing alerts"
        );
        browser.click(&format!("{alert} button.ack")).await;
        browser
            .wait_for(
                "the alert shown as acknowledged",
                &format!("return document.querySelector('{alert} .chip.state-acknowledged')"),
            )
            .await;
        let acknowledged = snapshot(&page).await["alerts"]["active"]
            .as_array()
            .and_then(|active| active.iter().find(|a| a["rule"] == RULE_ID).cloned())
            .expect("the alert is active on the server");
        assert!(acknowledged["acknowledged"].is_object(), "{acknowledged}");
        browser.click(&format!("{alert} button.silence")).await;
        browser
            .wait_for(
                "the silence listed",
                "return document.querySelector('#silences li[data-silence]')",
            )
            .await;

        // Events arrive; filter them by Thing, event type, severity and text.
        browser
            .wait_for(
                "three events in the timeline",
                "return document.querySelectorAll('#timeline li[data-seq]').length >= 3",
            )
            .await;
        let first = browser
            .js("const li = document.querySelector('#timeline li[data-seq]'); return {thing: li.dataset.thing, event: li.dataset.event};")
            .await;
        let rows_where = |attribute: &str| {
            format!(
                "const rows = [...document.querySelectorAll('#timeline li[data-seq]')]; \
                 return rows.length > 0 && rows.every(li => li.dataset.{attribute} === arguments[0]);"
            )
        };
        let thing = first["thing"].as_str().expect("a Thing id");
        select(&browser, "f-thing", thing).await;
        let only_thing = browser
            .client
            .execute(&rows_where("thing"), vec![json!(thing)])
            .await
            .expect("script");
        assert_eq!(only_thing, json!(true), "Thing filter {thing}");
        select(&browser, "f-thing", "").await;
        let event = first["event"].as_str().expect("an event name");
        select(&browser, "f-event", event).await;
        let only_event = browser
            .client
            .execute(&rows_where("event"), vec![json!(event)])
            .await
            .expect("script");
        assert_eq!(only_event, json!(true), "event filter {event}");
        select(&browser, "f-event", "").await;
        select(&browser, "f-severity", "critical").await;
        let critical_only = browser
            .js("return [...document.querySelectorAll('#timeline li[data-seq]')].every(li => li.querySelector('.sev-critical'))")
            .await;
        assert_eq!(critical_only, json!(true));
        select(&browser, "f-severity", "").await;
        type_filter(&browser, "no such text anywhere").await;
        browser
            .wait_for(
                "an empty timeline that says why",
                "return !document.querySelector('#timeline li[data-seq]') && document.querySelector('#timeline li.empty').textContent.includes('no event matches')",
            )
            .await;
        type_filter(&browser, "").await;
        browser
            .wait_for(
                "the unfiltered timeline",
                "return document.querySelectorAll('#timeline li[data-seq]').length >= 3",
            )
            .await;

        // An event's detail view shows its data as JSON text.
        browser.click("#timeline li[data-seq] button.row").await;
        let detail = browser
            .wait_for(
                "an event's detail",
                "const pre = document.querySelector('#timeline pre.detail'); return pre && pre.textContent",
            )
            .await;
        serde_json::from_str::<Value>(detail.as_str().unwrap_or_default())
            .expect("the detail view shows the event's data as JSON");

        browser.wait_for("another second of data", "return new Promise(r => setTimeout(() => r(true), 1000))").await;
        if std::env::var_os("WOT_DASHBOARD_SCREENSHOT").is_some_and(|v| v == "1") {
            save_screenshot(&browser).await;
        }

        // Reload: the timeline keeps every event it showed, each once, in a contiguous run.
        let shown = browser.timeline_seqs().await;
        assert_contiguous(&shown);
        browser.assert_clean().await;
        browser.client.refresh().await.expect("reload");
        browser.wait_live().await;
        browser
            .wait_for(
                "a new event after the reload",
                &format!(
                    "const li = document.querySelector('#timeline li[data-seq]'); return li && Number(li.dataset.seq) > {}",
                    shown.first().copied().unwrap_or(0)
                ),
            )
            .await;
        let after = browser.timeline_seqs().await;
        assert_contiguous(&after);
        for seq in &shown {
            assert!(after.contains(seq), "event #{seq} was lost by the reload: {after:?}");
        }
        browser.assert_clean().await;
        // The page shows what the server has, no more and no less.
        let server: Vec<u64> = snapshot(&page).await["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .collect();
        let oldest_shown = after.last().copied().unwrap_or(0);
        let newest_shown = after.first().copied().unwrap_or(0);
        let expected: Vec<u64> = server
            .iter()
            .rev()
            .copied()
            .filter(|seq| (oldest_shown..=newest_shown).contains(seq))
            .collect();
        assert_eq!(after, expected, "the page's timeline against the server's");
        // The acknowledgement survived the reload too.
        browser
            .wait_for(
                "the alert still acknowledged after the reload",
                &format!("return document.querySelector('#alerts-active li[data-rule=\"{RULE_ID}\"] .chip.state-acknowledged')"),
            )
            .await;
        browser.close().await;
    });
}

/// Rewrites docs/dashboard-web.png: the top of the page with a minute of data in the charts.
async fn save_screenshot(browser: &Browser) {
    select(browser, "window", "60").await;
    tokio::time::sleep(Duration::from_secs(45)).await;
    browser
        .client
        .set_window_size(1600, 1900)
        .await
        .expect("a window size");
    browser.js("window.scrollTo(0, 0); return true").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let png = browser.client.screenshot().await.expect("a screenshot");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard-web.png");
    std::fs::write(&path, png).expect("docs/dashboard-web.png written");
}

/// Chooses `value` in the select `id` and lets the page redraw.
async fn select(browser: &Browser, id: &str, value: &str) {
    browser
        .client
        .execute(
            "const s = document.getElementById(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change')); \
             return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(s.value))));",
            vec![json!(id), json!(value)],
        )
        .await
        .expect("a select");
}

/// Types `text` into the free-text filter (replacing what was there).
async fn type_filter(browser: &Browser, text: &str) {
    let input = browser
        .client
        .find(Locator::Id("f-text"))
        .await
        .expect("the text filter");
    input.clear().await.expect("clear");
    if !text.is_empty() {
        input.send_keys(text).await.expect("typing");
    }
    browser
        .js("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
        .await;
}

/// A Thing whose TD, property title and event data hold HTML.
const HOSTILE_TITLE: &str =
    "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">Evil";
const HOSTILE_PROPERTY: &str = "<b>bold</b> level";
const HOSTILE_DATA: &str = "<img src=x onerror=\"window.pwned = 3\">";

/// Serves `/td` (a Thing with a polled property `level` and an SSE event `alarm`, whose texts
/// hold HTML) and returns its URL.
async fn hostile_thing() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:hostile", "title": HOSTILE_TITLE,
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "level": {"type": "number", "title": HOSTILE_PROPERTY, "unit": "<i>u</i>",
                      "forms": [{"href": format!("{base}/level")}]}
        },
        "events": {
            "alarm": {"forms": [{"href": format!("{base}/alarm"), "subprotocol": "sse"}]}
        }
    });
    let alarm = || async {
        let data = json!({"note": HOSTILE_DATA, "severity": "critical"});
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            format!("retry: 300\nevent: alarm\ndata: {data}\n\n"),
        )
    };
    let app = Router::new()
        .route("/td", get(move || async move { axum::Json(td) }))
        .route("/level", get(|| async { axum::Json(json!(21.5)) }))
        .route("/alarm", get(alarm));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("{base}/td")
}

#[test]
#[ignore = "needs chromium and chromedriver; .ci/run runs it with --ignored"]
fn remote_text_from_a_thing_shows_as_text() {
    let _one = one_browser();
    let dir = TempDir::new("hostile");
    let runtime = runtime();
    let td = runtime.block_on(hostile_thing());
    let (_dashboard, url) = dashboard(&["--thing", &td], &[]);
    runtime.block_on(async {
        let csp = reqwest::get(&url).await.expect("GET /");
        let policy = csp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{policy:?}");

        let browser = Browser::start(&dir.0).await;
        browser.client.goto(&url).await.expect("the page loads");
        browser.wait_live().await;
        let title = browser
            .wait_for(
                "the hostile Thing's card",
                "const h = document.querySelector('.card[data-thing=\"urn:dev:hostile\"] h2'); return h && h.textContent",
            )
            .await;
        assert_eq!(title, json!(HOSTILE_TITLE));
        browser
            .wait_for(
                "an alarm event in the timeline",
                "return document.querySelector('#timeline li[data-event=\"alarm\"]')",
            )
            .await;
        let page = browser
            .js(
                "return { \
                   property: document.querySelector('.prop .name').textContent, \
                   preview: document.querySelector('#timeline li[data-event=\"alarm\"] .preview').textContent, \
                   thingCell: document.querySelector('#timeline li[data-event=\"alarm\"] .thing').textContent, \
                   option: [...document.querySelectorAll('#f-thing option')].map(o => o.textContent).join('|'), \
                   scripts: document.scripts.length, \
                   images: document.images.length, \
                   bold: document.querySelectorAll('#things b, #timeline b, #things i').length, \
                   pwned: window.pwned === undefined ? null : window.pwned \
                 };",
            )
            .await;
        assert_eq!(page["property"], json!(HOSTILE_PROPERTY), "{page}");
        assert!(
            page["preview"].as_str().unwrap_or_default().contains(HOSTILE_DATA.replace('"', "\\\"").as_str()),
            "{page}"
        );
        assert_eq!(page["thingCell"], json!(HOSTILE_TITLE), "{page}");
        assert!(page["option"].as_str().unwrap_or_default().contains("<script>"), "{page}");
        assert_eq!(page["scripts"], json!(2), "only the page's own two scripts: {page}");
        assert_eq!(page["images"], json!(0), "{page}");
        assert_eq!(page["bold"], json!(0), "{page}");
        assert_eq!(page["pwned"], Value::Null, "{page}");
        // The alarm's data says `"severity": "critical"`: the severity filter keeps it or not.
        let rows = "return document.querySelectorAll('#timeline li[data-seq]').length";
        select(&browser, "f-severity", "critical").await;
        assert_ne!(browser.js(rows).await, json!(0));
        select(&browser, "f-severity", "info").await;
        assert_eq!(browser.js(rows).await, json!(0));
        select(&browser, "f-severity", "").await;
        browser.assert_clean().await;
        browser.close().await;
    });
}

#[test]
#[ignore = "needs chromium and chromedriver; .ci/run runs it with --ignored"]
fn chart_benchmark_records_frame_times() {
    let _one = one_browser();
    let dir = TempDir::new("bench");
    let (_dashboard, url) = dashboard(&[], &[]);
    runtime().block_on(async {
        let browser = Browser::start(&dir.0).await;
        browser
            .client
            .goto(&format!("{url}?bench=24x3600&hz=10&seconds=10"))
            .await
            .expect("the benchmark page loads");
        let result = browser
            .wait_for(
                "the benchmark's result",
                "return window.wotBench && window.wotBench.done && window.wotBench",
            )
            .await;
        println!("chart benchmark: {result}");
        assert_eq!(result["charts"], json!(24));
        assert_eq!(result["points"], json!(3600));
        let frames = result["frames"].as_u64().unwrap_or(0);
        let p50 = result["frameMs"]["p50"].as_f64().unwrap_or(f64::NAN);
        let work = result["chartWorkMs"]["p50"].as_f64().unwrap_or(f64::NAN);
        let rate = result["redrawsPerChartPerSecond"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(frames > 100, "{result}");
        // Generous bounds, for a shared machine without a GPU: the point is the figures printed.
        assert!(p50 < 50.0, "median frame time {p50} ms: {result}");
        assert!(
            work < 50.0,
            "median chart work per frame {work} ms: {result}"
        );
        assert!(rate > 2.0, "charts redrawn {rate} times a second: {result}");
        let probe = browser.js("return window.wotDashboard.cspViolations").await;
        assert_eq!(probe, json!([]));
        browser.close().await;
    });
}

#[test]
#[ignore = "needs chromium and chromedriver; .ci/run runs it with --ignored"]
fn the_page_recovers_when_the_server_restarts() {
    let _one = one_browser();
    let dir = TempDir::new("restart");
    let address = format!("127.0.0.1:{}", free_port());
    let args = ["--web", address.as_str(), "--sim-tick", "50ms"];
    let (first, url) = dashboard(&args, &[]);
    runtime().block_on(async {
        let browser = Browser::start(&dir.0).await;
        browser.client.goto(&url).await.expect("the page loads");
        browser.wait_live().await;
        assert_eq!(browser.js("return window.wotDashboard.snapshots").await, json!(1));

        // The server goes away: the page says so and keeps trying.
        drop(first);
        browser
            .wait_for(
                "the page to notice the server is gone",
                "return !window.wotDashboard.streamOpen && document.getElementById('feed').textContent !== 'live'",
            )
            .await;

        // A new run on the same address: its ids are not the old run's, so it answers the
        // browser's Last-Event-ID with `reset`, and the page reloads the snapshot.
        let (_second, _) = dashboard(&args, &[]);
        browser
            .wait_for(
                "the page to reload the new run's snapshot",
                "return window.wotDashboard.snapshots === 2 && window.wotDashboard.streamOpen",
            )
            .await;
        let notice = browser
            .js("return document.getElementById('notices').textContent")
            .await;
        assert!(
            notice.as_str().unwrap_or_default().contains("reloading the snapshot"),
            "{notice}"
        );
        let values = "return [...document.querySelectorAll('.prop .value')].map(e => e.textContent).join('|')";
        let before = browser.js(values).await;
        browser
            .wait_for(
                "values from the new run",
                &format!("const now = (() => {{ {values} }})(); return now !== {before} && now;"),
            )
            .await;
        browser.assert_clean().await;
        browser.close().await;
    });
}
