//! `journey lsp`: the language server, over stdin and stdout
//! (tower-lsp-server). A project is the `.journey` files of a workspace
//! folder (or, for a file outside every folder, of its directory), read
//! from disk with the open buffers in place of their files; every change to
//! a buffer rebuilds its project ([`analysis`]) and publishes the
//! diagnostics of all its files. Requests read the last build: hover,
//! definition and references from its symbol index, completion from the
//! text at the cursor ([`complete`]), formatting through [`crate::fmt`],
//! and quick fixes from the diagnostics' "did you mean" suggestions.
//!
//! No input may take the server down: every build and request runs under
//! [`guard`], which turns a panic into a log message to the editor.

pub mod analysis;
pub mod complete;
pub mod position;

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService};

use crate::diagnostic::{Diagnostic as Problem, Severity};
use crate::project::{LoadError, load_paths_from};
use crate::source::FileId;
use analysis::Analysis;
use complete::What;

/// Serves the protocol on stdin and stdout until the client says `exit`.
pub fn run() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (service, socket) = LspService::new(Server::new);
        tower_lsp_server::Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    Ok(())
}

/// The server: the client to notify, and what it knows of the workspace.
pub struct Server {
    client: Client,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The workspace folders.
    roots: Vec<PathBuf>,
    /// The open buffers' texts, by path.
    open: BTreeMap<PathBuf, String>,
    /// The last build of each project, by its root.
    projects: BTreeMap<PathBuf, Arc<Analysis>>,
}

/// Runs `f`; a panic becomes its message.
pub fn guard<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string())
    })
}

/// The project root of a file: the deepest workspace folder holding it,
/// else its directory.
fn root_of(roots: &[PathBuf], path: &Path) -> PathBuf {
    roots
        .iter()
        .filter(|r| path.starts_with(r))
        .max_by_key(|r| r.components().count())
        .cloned()
        .unwrap_or_else(|| path.parent().unwrap_or(Path::new("/")).to_path_buf())
}

/// The files of the project at `root`: its `.journey` files on disk with
/// the `open` buffers in their place, and the open buffers under it that
/// are not on disk yet. A load error is returned beside what could be read
/// (the open buffers alone).
fn project_files(
    root: &Path,
    open: &BTreeMap<PathBuf, String>,
) -> (Vec<(PathBuf, String, String)>, Option<String>) {
    let mut files = Vec::new();
    let mut problem = None;
    match load_paths_from(&[root.to_path_buf()], Some(root)) {
        Ok(sources) => {
            for file in sources.files() {
                let path = root.join(&file.name);
                let text = open
                    .get(&path)
                    .cloned()
                    .unwrap_or_else(|| file.text.to_string());
                files.push((path, file.name.clone(), text));
            }
        }
        Err(LoadError::NoJourneyFiles { .. }) => {}
        Err(e) => problem = Some(e.to_string()),
    }
    for (path, text) in open {
        let journey = path.extension().is_some_and(|e| e == "journey");
        if journey && path.starts_with(root) && !files.iter().any(|(p, _, _)| p == path) {
            let name = path.strip_prefix(root).unwrap_or(path);
            let name = name.to_string_lossy().replace('\\', "/");
            files.push((path.clone(), name, text.clone()));
        }
    }
    (files, problem)
}

impl Server {
    pub fn new(client: Client) -> Server {
        Server {
            client,
            state: Mutex::new(State::default()),
        }
    }

    /// The state; a panic while it was held left nothing half-written (every
    /// write is one insert or remove), so a poisoned lock is taken as is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn log(&self, kind: MessageType, message: String) {
        self.client.log_message(kind, message).await;
    }

    /// Rebuilds the project at `root` and publishes the diagnostics of every
    /// file it has or had.
    async fn rebuild(&self, root: PathBuf) {
        let open = self.state().open.clone();
        let built = guard(|| {
            let (files, problem) = project_files(&root, &open);
            (Analysis::new(files), problem)
        });
        let (analysis, problem) = match built {
            Ok(built) => built,
            Err(panic) => {
                let message = format!(
                    "journey lsp: internal error building {}: {panic}",
                    root.display()
                );
                return self.log(MessageType::ERROR, message).await;
            }
        };
        if let Some(problem) = problem {
            self.log(MessageType::WARNING, format!("journey lsp: {problem}"))
                .await;
        }
        let analysis = Arc::new(analysis);
        let before = self.state().projects.insert(root, analysis.clone());
        let mut published: Vec<(Uri, Vec<Diagnostic>)> = Vec::new();
        for (i, path) in analysis.paths.iter().enumerate() {
            let Some(uri) = Uri::from_file_path(path) else {
                continue;
            };
            let file = FileId(i as u32);
            let diagnostics = analysis
                .diagnostics(file)
                .map(|d| lsp_diagnostic(&analysis, d))
                .collect();
            published.push((uri, diagnostics));
        }
        // A file that left the project (deleted, or closed and never saved)
        // keeps no diagnostics.
        for path in before.iter().flat_map(|b| &b.paths) {
            if !analysis.paths.contains(path)
                && let Some(uri) = Uri::from_file_path(path)
            {
                published.push((uri, Vec::new()));
            }
        }
        for (uri, diagnostics) in published {
            self.client
                .publish_diagnostics(uri, diagnostics, None)
                .await;
        }
    }

    /// The project of the file at `uri` and the file's id in it, building
    /// it when it was never built.
    async fn file(&self, uri: &Uri) -> Option<(Arc<Analysis>, FileId)> {
        let path = uri.to_file_path()?.into_owned();
        let root = root_of(&self.state().roots, &path);
        let known = self.state().projects.get(&root).cloned();
        let analysis = match known {
            Some(analysis) => analysis,
            None => {
                self.rebuild(root.clone()).await;
                self.state().projects.get(&root).cloned()?
            }
        };
        let file = analysis.file(&path)?;
        Some((analysis, file))
    }

    /// Runs a request's work under [`guard`]; a panic is logged and
    /// answered with nothing.
    async fn answer<T>(&self, what: &str, f: impl FnOnce() -> Option<T>) -> Result<Option<T>> {
        match guard(f) {
            Ok(answer) => Ok(answer),
            Err(panic) => {
                self.log(
                    MessageType::ERROR,
                    format!("journey lsp: internal error in {what}: {panic}"),
                )
                .await;
                Ok(None)
            }
        }
    }

    async fn opened(&self, uri: &Uri, text: String) {
        let Some(path) = uri.to_file_path().map(|p| p.into_owned()) else {
            return self
                .log(
                    MessageType::WARNING,
                    format!(
                        "journey lsp: `{}` is not a file; it is not checked",
                        uri.as_str()
                    ),
                )
                .await;
        };
        let root = {
            let mut state = self.state();
            state.open.insert(path.clone(), text);
            root_of(&state.roots, &path)
        };
        self.rebuild(root).await;
    }
}

/// A diagnostic as the protocol has it: the help after the message, the
/// related spans as related information.
fn lsp_diagnostic(analysis: &Analysis, d: &Problem) -> Diagnostic {
    let text = analysis.text(d.span.file);
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .related
        .iter()
        .filter_map(|(span, label)| {
            let uri = Uri::from_file_path(analysis.paths.get(span.file.0 as usize)?)?;
            Some(DiagnosticRelatedInformation {
                location: Location::new(uri, position::range(analysis.text(span.file), *span)),
                message: label.clone(),
            })
        })
        .collect();
    Diagnostic {
        range: position::range(text, d.span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.id.to_string())),
        source: Some("journey".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    }
}

fn location(analysis: &Analysis, span: crate::source::Span) -> Option<Location> {
    let uri = Uri::from_file_path(analysis.paths.get(span.file.0 as usize)?)?;
    Some(Location::new(
        uri,
        position::range(analysis.text(span.file), span),
    ))
}

fn completion_kind(what: What) -> CompletionItemKind {
    match what {
        What::Keyword => CompletionItemKind::KEYWORD,
        What::Event => CompletionItemKind::EVENT,
        What::Field => CompletionItemKind::FIELD,
        What::Template => CompletionItemKind::TEXT,
        What::Segment => CompletionItemKind::VARIABLE,
        What::Function => CompletionItemKind::FUNCTION,
        What::Engagement => CompletionItemKind::PROPERTY,
    }
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        #[allow(deprecated)]
        let mut uris: Vec<Uri> = params.root_uri.into_iter().collect();
        if let Some(folders) = params.workspace_folders {
            uris = folders.into_iter().map(|f| f.uri).collect();
        }
        self.state().roots = uris
            .iter()
            .filter_map(|u| u.to_file_path().map(|p| p.into_owned()))
            .collect();
        let capabilities = ServerCapabilities {
            text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
            hover_provider: Some(HoverProviderCapability::Simple(true)),
            definition_provider: Some(OneOf::Left(true)),
            references_provider: Some(OneOf::Left(true)),
            completion_provider: Some(CompletionOptions {
                trigger_characters: Some(vec![".".to_string(), " ".to_string()]),
                ..CompletionOptions::default()
            }),
            document_formatting_provider: Some(OneOf::Left(true)),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                ..CodeActionOptions::default()
            })),
            ..ServerCapabilities::default()
        };
        Ok(InitializeResult {
            capabilities,
            server_info: Some(ServerInfo {
                name: "journey".to_string(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            }),
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        self.opened(&params.text_document.uri, params.text_document.text)
            .await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Full synchronisation: the last change is the whole text.
        if let Some(change) = params.content_changes.into_iter().last() {
            self.opened(&params.text_document.uri, change.text).await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Some(path) = params
            .text_document
            .uri
            .to_file_path()
            .map(|p| p.into_owned())
        else {
            return;
        };
        let root = {
            let mut state = self.state();
            state.open.remove(&path);
            root_of(&state.roots, &path)
        };
        self.rebuild(root).await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let roots: std::collections::BTreeSet<PathBuf> = {
            let state = self.state();
            params
                .changes
                .iter()
                .filter_map(|c| c.uri.to_file_path())
                .map(|path| root_of(&state.roots, &path))
                .collect()
        };
        for root in roots {
            self.rebuild(root).await;
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let at = params.text_document_position_params;
        let Some((analysis, file)) = self.file(&at.text_document.uri).await else {
            return Ok(None);
        };
        self.answer("hover", || {
            let text = analysis.text(file);
            let (symbol, span) = analysis.symbol_at(file, position::offset(text, at.position))?;
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: symbol.hover.clone(),
                }),
                range: Some(position::range(text, span)),
            })
        })
        .await
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let at = params.text_document_position_params;
        let Some((analysis, file)) = self.file(&at.text_document.uri).await else {
            return Ok(None);
        };
        self.answer("definition", || {
            let offset = position::offset(analysis.text(file), at.position);
            let (symbol, _) = analysis.symbol_at(file, offset)?;
            let locations: Vec<Location> = symbol
                .defs
                .iter()
                .filter_map(|s| location(&analysis, *s))
                .collect();
            Some(GotoDefinitionResponse::Array(locations))
        })
        .await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let at = params.text_document_position;
        let Some((analysis, file)) = self.file(&at.text_document.uri).await else {
            return Ok(None);
        };
        self.answer("references", || {
            let offset = position::offset(analysis.text(file), at.position);
            let (symbol, _) = analysis.symbol_at(file, offset)?;
            let declarations = params.context.include_declaration.then_some(&symbol.defs);
            let spans = declarations.into_iter().flatten().chain(&symbol.refs);
            Some(spans.filter_map(|s| location(&analysis, *s)).collect())
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let at = params.text_document_position;
        let Some((analysis, file)) = self.file(&at.text_document.uri).await else {
            return Ok(None);
        };
        self.answer("completion", || {
            let offset = position::offset(analysis.text(file), at.position);
            let items = complete::complete(&analysis, file, offset)
                .into_iter()
                .map(|c| CompletionItem {
                    label: c.label,
                    kind: Some(completion_kind(c.kind)),
                    detail: c.detail,
                    ..CompletionItem::default()
                })
                .collect();
            Some(CompletionResponse::Array(items))
        })
        .await
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let Some((analysis, file)) = self.file(&params.text_document.uri).await else {
            return Ok(None);
        };
        let formatted = guard(|| {
            let source = analysis.sources().get(file);
            crate::fmt::format_file(source).map(|out| (out, source.text.len()))
        });
        match formatted {
            Ok(Ok((out, len))) => {
                let text = analysis.text(file);
                if out == text {
                    return Ok(Some(Vec::new()));
                }
                let whole = Range::new(Position::new(0, 0), position::position(text, len));
                Ok(Some(vec![TextEdit::new(whole, out)]))
            }
            Ok(Err(crate::fmt::FormatError::Syntax(_))) => {
                self.log(
                    MessageType::INFO,
                    "journey lsp: not formatted, the file has syntax errors".to_string(),
                )
                .await;
                Ok(None)
            }
            Ok(Err(crate::fmt::FormatError::Unstable)) => {
                let message = "journey lsp: not formatted, the formatted text would not mean the same (a bug of `journey fmt`)";
                self.log(MessageType::ERROR, message.to_string()).await;
                Ok(None)
            }
            Err(panic) => {
                self.log(
                    MessageType::ERROR,
                    format!("journey lsp: internal error in formatting: {panic}"),
                )
                .await;
                Ok(None)
            }
        }
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let Some((analysis, file)) = self.file(&uri).await else {
            return Ok(None);
        };
        self.answer("code actions", || {
            let text = analysis.text(file);
            let range = position::offset(text, params.range.start)
                ..position::offset(text, params.range.end);
            let actions = analysis
                .fixes(file, range)
                .into_iter()
                .map(|fix| {
                    let edit = TextEdit::new(
                        position::range(text, fix.diagnostic.span),
                        fix.replacement.clone(),
                    );
                    let changes = HashMap::from([(uri.clone(), vec![edit])]);
                    CodeActionOrCommand::CodeAction(CodeAction {
                        title: format!("replace with `{}`", fix.replacement),
                        kind: Some(CodeActionKind::QUICKFIX),
                        diagnostics: Some(vec![lsp_diagnostic(&analysis, fix.diagnostic)]),
                        edit: Some(WorkspaceEdit {
                            changes: Some(changes),
                            ..WorkspaceEdit::default()
                        }),
                        is_preferred: Some(true),
                        ..CodeAction::default()
                    })
                })
                .collect();
            Some(actions)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
