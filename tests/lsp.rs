//! `journey lsp` as an editor drives it: the real binary, JSON-RPC with
//! Content-Length framing over its stdin and stdout. One session over the
//! project of tests/fixtures/lsp/shop: diagnostics as files open, hover,
//! definition, references, completion, formatting, the "did you mean" quick
//! fix applied and its diagnostic gone after the change, then shutdown and
//! exit. The answers are snapshots, with the fixture's URI as `file:///ROOT`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// How long any one answer may take.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Session {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Notifications read while waiting for something else.
    seen: Vec<Value>,
    next_id: i64,
    root: String,
}

impl Session {
    fn start(root: &Path) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_journey"))
            .args(["lsp", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("journey lsp starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if send.send(message).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            stdin,
            incoming,
            seen: Vec::new(),
            next_id: 1,
            root: uri(root),
        }
    }

    fn write(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn next(&mut self) -> Value {
        self.incoming
            .recv_timeout(TIMEOUT)
            .expect("the server answers in time")
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its result (panics on an error answer).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.next();
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.seen.push(message);
        }
    }

    /// The first diagnostics published for `file` that pass `wanted`,
    /// among those not yet looked at.
    fn diagnostics(&mut self, file: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let uri = format!("{}/{file}", self.root);
        let matches = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri.as_str()
                && wanted(m["params"]["diagnostics"].as_array().unwrap())
        };
        if let Some(i) = self.seen.iter().position(matches) {
            let found = self.seen.remove(i);
            return found["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let message = self.next();
            if matches(&message) {
                return message["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.seen.push(message);
        }
    }

    fn uri(&self, file: &str) -> String {
        format!("{}/{file}", self.root)
    }

    /// `value` with the root's URI written `file:///ROOT`.
    fn normal(&self, value: &Value) -> Value {
        serde_json::from_str(&value.to_string().replace(&self.root, "file:///ROOT")).unwrap()
    }

    fn at(&self, file: &str, text: &str, needle: &str, delta: usize) -> Value {
        json!({"textDocument": {"uri": self.uri(file)}, "position": position(text, needle, delta)})
    }

    fn finish(mut self) {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        drop(self.stdin);
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "journey lsp exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("journey lsp did not exit");
    }
}

/// One framed message, or `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lsp/shop")
}

fn uri(path: &Path) -> String {
    url::Url::from_file_path(path).unwrap().to_string()
}

fn read(file: &str) -> String {
    std::fs::read_to_string(fixture().join(file)).unwrap()
}

/// The LSP position (UTF-16 columns) of the `delta`-th byte of the first
/// `needle` in `text`, counted here independently of the server.
fn position(text: &str, needle: &str, delta: usize) -> Value {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` in the text"))
        + delta;
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column: usize = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .encode_utf16()
        .count();
    json!({"line": line, "character": column})
}

/// `text` with one LSP edit applied.
fn apply(text: &str, edit: &Value) -> String {
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let character = p["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let mut units = 0;
        for (i, c) in text[start..].char_indices() {
            if units == character {
                return start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    };
    let range = &edit["range"];
    let (start, end) = (offset(&range["start"]), offset(&range["end"]));
    format!(
        "{}{}{}",
        &text[..start],
        edit["newText"].as_str().unwrap(),
        &text[end..]
    )
}

fn open(session: &mut Session, file: &str, text: &str) {
    let uri = session.uri(file);
    session.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "journey", "version": 1, "text": text}}),
    );
}

fn initialize(session: &mut Session) -> Value {
    let root = session.root.clone();
    let result = session.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": root,
            "workspaceFolders": [{"uri": root, "name": "shop"}],
            "capabilities": {}
        }),
    );
    session.notify("initialized", json!({}));
    result
}

#[test]
fn an_editor_session_over_a_project() {
    let mut session = Session::start(&fixture());
    let mut init = initialize(&mut session);
    init["serverInfo"]["version"] = json!("[version]");
    insta::assert_json_snapshot!("initialize", init);

    let cart = read("cart.journey");
    let welcome = read("welcome.journey");
    let schema = read("schema.journey");
    open(&mut session, "cart.journey", &cart);
    open(&mut session, "welcome.journey", &welcome);

    // The misspelt field, on a line with `é` and an emoji before it: its
    // columns are UTF-16 units.
    let errors = session.diagnostics("cart.journey", |d| !d.is_empty());
    let errors = session.normal(&Value::Array(errors));
    assert_eq!(errors[0]["range"]["start"], position(&cart, "totl", 0));
    insta::assert_json_snapshot!("diagnostics_cart", errors);
    assert!(
        session
            .diagnostics("welcome.journey", |d| d.is_empty())
            .is_empty()
    );

    let hovers = json!({
        "event field": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "total > 0", 1)),
        "nested profile field": session.request("textDocument/hover", session.at("schema.journey", &schema, "city", 0)),
        "event": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "signed_up", 2)),
        "template": session.request("textDocument/hover", session.at("cart.journey", &cart, "cart_reminder", 3)),
        "segment": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "in_france", 0)),
        "handle": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "welcome.opened", 1)),
        "journey with errors in the project": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "welcome {", 0)),
        "nothing": session.request("textDocument/hover", session.at("welcome.journey", &welcome, "within", 0)),
    });
    insta::assert_json_snapshot!("hover", session.normal(&hovers));

    let definitions = json!({
        "template": session.request("textDocument/definition", session.at("cart.journey", &cart, "cart_reminder", 0)),
        "field": session.request("textDocument/definition", session.at("welcome.journey", &welcome, "source", 0)),
        "quoted event": session.request("textDocument/definition", session.at("welcome.journey", &welcome, "\"Order Completed\"", 4)),
        "handle": session.request("textDocument/definition", session.at("welcome.journey", &welcome, "welcome.opened", 0)),
    });
    insta::assert_json_snapshot!("definition", session.normal(&definitions));

    let mut references = |needle: &str| {
        let mut params = session.at("schema.journey", &schema, needle, 0);
        params["context"] = json!({"includeDeclaration": true});
        session.request("textDocument/references", params)
    };
    let references = json!({
        "template": references("welcome {"),
        "field": references("total: number }\n\ntemplate"),
        "segment": references("in_france"),
    });
    insta::assert_json_snapshot!("references", session.normal(&references));

    let labels = |items: Value| -> Vec<String> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    i["label"].as_str().unwrap(),
                    i["detail"].as_str().unwrap_or("")
                )
                .trim_end()
                .to_string()
            })
            .collect()
    };
    let completions = json!({
        "event. in a where": labels(session.request("textDocument/completion", session.at("cart.journey", &cart, "event.cart_id", 6))),
        "templates of the send's channel": labels(session.request("textDocument/completion", session.at("cart.journey", &cart, "cart_reminder", 0))),
        "after trigger": labels(session.request("textDocument/completion", session.at("cart.journey", &cart, "cart_abandoned where", 0))),
    });
    insta::assert_json_snapshot!("completion", completions);
    let everywhere = session.request(
        "textDocument/completion",
        session.at("cart.journey", &cart, "wait 1h", 0),
    );
    let everywhere = labels(everywhere);
    for word in ["trigger", "send", "wait", "in_france", "days_since"] {
        assert!(
            everywhere.iter().any(|l| l.split(' ').next() == Some(word)),
            "{word} in {everywhere:?}"
        );
    }

    let formatting = session.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": session.uri("welcome.journey")}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let formatted = apply(&welcome, &formatting[0]);
    assert_eq!(
        formatted,
        journey::fmt::format_text("welcome.journey", &welcome).unwrap()
    );
    assert_ne!(formatted, welcome);
    insta::assert_json_snapshot!("formatting", formatting);

    // The quick fix of the diagnostic, applied as the editor would.
    let at_typo = position(&cart, "totl", 1);
    let actions = session.request(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": session.uri("cart.journey")},
            "range": {"start": at_typo, "end": at_typo},
            "context": {"diagnostics": []}
        }),
    );
    let actions = session.normal(&actions);
    insta::assert_json_snapshot!("code_action", actions);
    let edit = &actions[0]["edit"]["changes"]["file:///ROOT/cart.journey"][0];
    let fixed = apply(&cart, edit);
    assert!(fixed.contains("and event.total > 50"), "{fixed}");
    let uri = session.uri("cart.journey");
    session.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert!(
        session
            .diagnostics("cart.journey", |d| d.is_empty())
            .is_empty()
    );

    // Without errors the project compiles: a journey's hover has its limits.
    let hover = session.request(
        "textDocument/hover",
        session.at("welcome.journey", &welcome, "welcome {", 0),
    );
    insta::assert_json_snapshot!("hover_journey_limits", hover["contents"]);

    session.finish();
}

#[test]
fn bad_input_is_answered_never_fatal() {
    let mut session = Session::start(&fixture());
    initialize(&mut session);
    let broken = "journey broken {\n  trigger cart_abandoned where event.\n  send email \"é\n}\n\u{0}\u{7f}{{{";
    open(&mut session, "broken.journey", broken);
    let errors = session.diagnostics("broken.journey", |d| !d.is_empty());
    assert!(errors.iter().any(|d| d["code"] == "E0101"), "{errors:?}");

    let uri = session.uri("broken.journey");
    for (line, character) in [(0, 0), (1, 37), (1, 999), (2, 15), (4, 3), (99, 0)] {
        let at = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
        for method in [
            "textDocument/hover",
            "textDocument/definition",
            "textDocument/completion",
        ] {
            session.request(method, at.clone());
        }
    }
    // `event.` of the clause being typed: the fields of its event.
    let at = json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 37}});
    let fields = session.request("textDocument/completion", at);
    let fields: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["cart_id", "total"]);
    // A file with syntax errors is not formatted.
    let formatting = session.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(formatting, Value::Null);
    // A file outside the project and a URI that is no file.
    let elsewhere = json!({"textDocument": {"uri": "untitled:Untitled-1"}, "position": {"line": 0, "character": 0}});
    assert_eq!(
        session.request("textDocument/hover", elsewhere),
        Value::Null
    );
    session.finish();
}
