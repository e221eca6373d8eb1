// The Journey extension: starts `journey lsp` (the binary of the
// `journey.path` setting) for `.journey` files and restarts it when the
// setting changes. Everything else (diagnostics, hover, completion,
// definitions, references, formatting, quick fixes) is the server's.

import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;

function serverOptions(): ServerOptions {
  const path = vscode.workspace
    .getConfiguration("journey")
    .get<string>("path", "journey");
  return { command: path.trim() || "journey", args: ["lsp"] };
}

async function start(): Promise<void> {
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "journey" }],
    synchronize: {
      // A `.journey` file created, changed or deleted outside the editor
      // changes its project.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.journey"),
    },
  };
  client = new LanguageClient(
    "journey",
    "Journey",
    serverOptions(),
    clientOptions,
  );
  try {
    await client.start();
  } catch (error) {
    const path = vscode.workspace.getConfiguration("journey").get("path");
    void vscode.window.showErrorMessage(
      `Journey: could not start \`${path} lsp\` (${error}). Set \`journey.path\` to the journey binary.`,
    );
  }
}

export async function activate(
  context: vscode.ExtensionContext,
): Promise<void> {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("journey.path")) {
        await client?.stop();
        await start();
      }
    }),
  );
  await start();
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
