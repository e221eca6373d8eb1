//! The HTML report of `journey simulate --report FILE.html`, loaded in
//! headless Chromium: every number the page shows (each marked with the
//! JSON pointer of its place in the JSON report, `data-json`) equals the
//! JSON report's, the page fetches nothing, and the same run writes the
//! same bytes. Without a browser the test is skipped with a message, unless
//! `CI=true` (`.ci/run` installs Debian's `chromium`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use lol_html::{HtmlRewriter, Settings, element, text};
use serde_json::Value;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// A directory of its own under the target directory, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Runs `journey simulate PROJECT --events EVENTS --report REPORT`.
fn simulate(project: &Path, events: &Path, report: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_journey"))
        .arg("simulate")
        .arg(project)
        .arg("--events")
        .arg(events)
        .arg("--report")
        .arg(report)
        .output()
        .unwrap_or_else(|e| panic!("cannot run journey: {e}"));
    assert!(
        output.status.success(),
        "journey simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first browser found: `$JOURNEY_CHROMIUM`, else Chromium or Chrome
/// on the `PATH`.
fn browser() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("JOURNEY_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The page's DOM as the browser built it.
fn dump_dom(browser: &Path, page: &Path) -> String {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        browser.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("the DOM is not UTF-8: {e}"))
}

/// What a DOM says: each `data-json` element's pointer and text, and the
/// `src`/`href` of every element that has one.
#[derive(Default)]
struct Dom {
    numbers: Vec<(String, String)>,
    links: Vec<String>,
    scripts: usize,
}

fn read_dom(html: &str) -> Dom {
    let dom = Rc::new(RefCell::new(Dom::default()));
    let (on_number, on_text, on_link, on_script) =
        (dom.clone(), dom.clone(), dom.clone(), dom.clone());
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!("[data-json]", move |el| {
                    let pointer = el.get_attribute("data-json").unwrap_or_default();
                    let pointer = htmlize::unescape_attribute(&pointer).into_owned();
                    on_number
                        .borrow_mut()
                        .numbers
                        .push((pointer, String::new()));
                    Ok(())
                }),
                text!("[data-json]", move |t| {
                    if let Some(last) = on_text.borrow_mut().numbers.last_mut() {
                        last.1.push_str(t.as_str());
                    }
                    Ok(())
                }),
                element!("[src], [href], link", move |el| {
                    let target = el
                        .get_attribute("src")
                        .or_else(|| el.get_attribute("href"))
                        .unwrap_or_default();
                    on_link.borrow_mut().links.push(target);
                    Ok(())
                }),
                element!("script", move |_| {
                    on_script.borrow_mut().scripts += 1;
                    Ok(())
                }),
            ],
            ..Settings::new()
        },
        |_: &[u8]| {},
    );
    rewriter
        .write(html.as_bytes())
        .and_then(|()| rewriter.end())
        .unwrap_or_else(|e| panic!("cannot read the DOM: {e}"));
    Rc::try_unwrap(dom)
        .map(RefCell::into_inner)
        .unwrap_or_else(|_| panic!("the handlers are gone"))
}

/// Whether `shown` is how the page writes `value`: a count with thousands
/// separators, or a proportion as a percentage (`12.3%`, `+4.0%`) or in
/// points (`+3.2 pts`) to one decimal; `n/a` for no value.
fn shows(shown: &str, value: &Value) -> bool {
    let shown = htmlize::unescape(shown.trim()).into_owned();
    if value.is_null() {
        return shown == "n/a";
    }
    if let Some(n) = value.as_u64() {
        let digits = shown.replace(',', "");
        let grouped = shown.split(',').skip(1).all(|g| g.len() == 3);
        return grouped && digits.parse::<u64>() == Ok(n);
    }
    let Some(x) = value.as_f64() else {
        return false;
    };
    let number = shown
        .strip_suffix('%')
        .or_else(|| shown.strip_suffix(" pts"))
        .and_then(|s| s.parse::<f64>().ok());
    if number.is_none() {
        // A credit or a value: the number itself, to 3 decimals.
        return shown
            .parse::<f64>()
            .is_ok_and(|d| (d - x).abs() <= 0.0005 + 1e-9);
    }
    number.is_some_and(|p| (p - x * 100.0).abs() <= 0.05 + 1e-9)
}

#[test]
fn the_html_report_shows_the_json_reports_numbers_in_a_browser() {
    let Some(browser) = browser() else {
        let message =
            "no browser found; install chromium: apt-get install chromium; .ci/run installs it";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    };
    let dir = scratch("report_html");
    let project = Path::new(MANIFEST).join("journeys");
    let events = project.join("events.ndjson");
    let (page, again, json) = (
        dir.join("report.html"),
        dir.join("again.html"),
        dir.join("report.json"),
    );
    simulate(&project, &events, &page);
    simulate(&project, &events, &again);
    simulate(&project, &events, &json);
    assert!(
        read(&page) == read(&again),
        "two runs wrote different pages"
    );
    let report: Value = serde_json::from_str(&read(&json))
        .unwrap_or_else(|e| panic!("the JSON report does not parse: {e}"));

    let dom = read_dom(&dump_dom(&browser, &page));
    assert_eq!(dom.scripts, 0, "the page runs no script");
    for link in &dom.links {
        assert!(
            link.starts_with('#'),
            "the page links outside itself: {link}"
        );
    }
    for (pointer, shown) in &dom.numbers {
        let value = report.pointer(pointer).unwrap_or_else(|| {
            panic!("`{pointer}` (shown as {shown:?}) is not in the JSON report")
        });
        assert!(
            shows(shown, value),
            "`{pointer}`: the page shows {shown:?}, the JSON report has {value}"
        );
    }
    // Every journey's headline numbers and every step's arrivals are shown.
    let shown: std::collections::BTreeSet<&str> =
        dom.numbers.iter().map(|(p, _)| p.as_str()).collect();
    let journeys = report["journeys"].as_array().map_or(&[][..], Vec::as_slice);
    assert!(journeys.len() >= 10, "{} journeys", journeys.len());
    for (i, journey) in journeys.iter().enumerate() {
        for field in ["entered", "held_out", "sent"] {
            let pointer = format!("/journeys/{i}/{field}");
            assert!(shown.contains(pointer.as_str()), "{pointer} is not shown");
        }
        let steps = journey["steps"].as_array().map_or(0, Vec::len);
        for s in 0..steps {
            let pointer = format!("/journeys/{i}/steps/{s}/arrived");
            assert!(shown.contains(pointer.as_str()), "{pointer} is not shown");
        }
        for (d, day) in journey["sent_by_day"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let pointer = format!("/journeys/{i}/sent_by_day/{d}/sent");
            assert!(shown.contains(pointer.as_str()), "{pointer} is not shown");
            assert!(day["sent"].as_u64().is_some_and(|n| n > 0));
        }
        let funnel = journey["funnel"].as_array().map_or(0, Vec::len);
        assert!(funnel >= 1, "journey {i} has no funnel");
    }
    // The sends per day add up to the sends.
    for journey in journeys {
        let days: u64 = journey["sent_by_day"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["sent"].as_u64())
            .sum();
        assert_eq!(
            Some(days),
            journey["sent"].as_u64(),
            "{}",
            journey["journey"]
        );
    }
}

#[test]
fn the_html_report_escapes_what_the_journeys_say() {
    let dir = scratch("report_html_escape");
    std::fs::write(
        dir.join("welcome.journey"),
        "/// Says <b>hello</b> & \"welcome\".\njourney welcome {\n  name \"<script>alert(1)</script> & co\"\n  trigger signed_up\n  goal \"Order Completed\" within 7d\n  holdout 50%\n\n  send email welcome_email\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let events = dir.join("events.ndjson");
    // In time order: profiles, sign-ups over three days, then orders.
    let mut lines = String::new();
    for i in 0..40 {
        lines.push_str(&format!(
            "{{\"type\":\"identify\",\"userId\":\"u{i}\",\"traits\":{{\"email\":\"u{i}@example.com\"}},\"timestamp\":\"2026-03-02T09:00:{i:02}Z\"}}\n"
        ));
    }
    for day in 2..5 {
        for i in (0..40).filter(|i| 2 + i % 3 == day) {
            lines.push_str(&format!(
                "{{\"type\":\"track\",\"userId\":\"u{i}\",\"event\":\"signed_up\",\"timestamp\":\"2026-03-0{day}T10:{i:02}:00Z\"}}\n"
            ));
        }
    }
    for i in (0..40).step_by(4) {
        lines.push_str(&format!(
            "{{\"type\":\"track\",\"userId\":\"u{i}\",\"event\":\"Order Completed\",\"timestamp\":\"2026-03-06T10:{i:02}:00Z\"}}\n"
        ));
    }
    std::fs::write(&events, lines).unwrap_or_else(|e| panic!("{e}"));
    let page = dir.join("report.html");
    simulate(&dir, &events, &page);
    let html = read(&page);
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>hello"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; co"));
    assert!(html.contains("Says &lt;b&gt;hello&lt;&#x2f;b&gt; &amp; &quot;welcome&quot;."));
    // The holdout's comparison is there, with its interval.
    assert!(html.contains("95% interval"), "no interval in the page");
    let json = dir.join("report.json");
    simulate(&dir, &events, &json);
    let report: Value = serde_json::from_str(&read(&json)).unwrap_or_default();
    let ci = &report["journeys"][0]["conversion_difference_ci95"];
    let (low, high) = (ci[0].as_f64(), ci[1].as_f64());
    let difference = report["journeys"][0]["conversion_difference"].as_f64();
    assert!(
        matches!((low, difference, high), (Some(l), Some(d), Some(h)) if l <= d && d <= h),
        "{ci} around {difference:?}"
    );
    let days = report["journeys"][0]["sent_by_day"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(days, 3, "{}", report["journeys"][0]["sent_by_day"]);
}

/// Sums a per-step map (`steps[].FIELD`) over the steps, per key.
fn step_sums(journey: &Value, field: &str) -> std::collections::BTreeMap<String, u64> {
    let mut sums = std::collections::BTreeMap::new();
    for step in journey["steps"].as_array().into_iter().flatten() {
        for (key, n) in step[field].as_object().into_iter().flatten() {
            *sums.entry(key.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
        }
    }
    sums
}

#[test]
fn the_steps_counts_add_up_to_their_journeys() {
    let dir = scratch("report_html_sums");
    let project = Path::new(MANIFEST).join("journeys");
    let json = dir.join("report.json");
    simulate(&project, &project.join("events.ndjson"), &json);
    let report: Value = serde_json::from_str(&read(&json)).unwrap_or_default();
    let journeys = report["journeys"].as_array().map_or(&[][..], Vec::as_slice);
    assert!(!journeys.is_empty());
    let nonzero = |map: &Value| -> std::collections::BTreeMap<String, u64> {
        map.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, n)| n.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
            .collect()
    };
    for journey in journeys {
        let name = &journey["journey"];
        assert_eq!(
            step_sums(journey, "sent_by_channel"),
            nonzero(&journey["sent_by_channel"]),
            "{name}"
        );
        assert_eq!(
            step_sums(journey, "suppressed_by_reason"),
            nonzero(&journey["suppressed"]),
            "{name}"
        );
        // Held-out users end at no step.
        let mut exits = nonzero(&journey["exited"]);
        exits.remove("holdout");
        assert_eq!(step_sums(journey, "exited"), exits, "{name}");
        let treated =
            journey["entered"].as_u64().unwrap_or(0) - journey["held_out"].as_u64().unwrap_or(0);
        assert_eq!(journey["treated"].as_u64(), Some(treated), "{name}");
        assert_eq!(
            journey["funnel"][0]["count"].as_u64(),
            Some(treated),
            "{name}"
        );
    }
}
