// Test harness for the browser tests: a `palaver serve` process per test
// group, Debian's Chromium driven by playwright-core, and small helpers that
// wait on conditions rather than sleeping.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(ROOT, ".tools/node/package.json"));
const { chromium } = require("playwright-core");

const BIN = process.env.PALAVER_BIN ?? path.join(ROOT, "target/debug/palaver");
/** Server logs and failure screenshots (git-ignored). */
export const OUTPUT = path.join(ROOT, "tests-output/web");
export const SCREENSHOTS = path.join(ROOT, "docs/screenshots");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `check` (which throws until satisfied) until it passes or `timeout` ms pass. */
export async function eventually(check, { timeout = 20_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await sleep(interval);
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Every server started, so a failing run still stops them all. */
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    for (const child of running) child.kill("SIGTERM");
    process.exit(1);
  });
}

/** Keeps the pids of running servers where scripts/test-web.sh can stop them should node be killed. */
function recordPids() {
  const file = process.env.PALAVER_E2E_PIDS;
  if (file) fs.writeFileSync(file, [...running].map((child) => `${child.pid}\n`).join(""));
}

/**
 * Set by the deploy workflow to run the suite against a deployed Palaver:
 * then no local server is started, usernames are random, and no test
 * assumes it made the first account.
 */
export const REMOTE = process.env.PALAVER_E2E_BASE_URL?.replace(/\/+$/, "") || null;

/** A password for every account the suite makes. */
export const PASSWORD = "e2e-password-123";

/** A fresh username for `name` (display names may be anything). */
export function username(name) {
  const slug = name.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 12) || "user";
  return `${slug.length < 2 ? slug + "x" : slug}-${Math.random().toString(36).slice(2, 10)}`;
}

/** One `palaver serve` on 127.0.0.1 with its own SQLite file; restartable on the same port. */
export class Server {
  /** `args`: more `palaver serve` options (`--max-file-bytes 100000`, say). */
  static async create(name, { args = [] } = {}) {
    fs.mkdirSync(OUTPUT, { recursive: true });
    if (REMOTE !== null) return new RemoteServer(name, REMOTE);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `palaver-web-${name}-`));
    const server = new Server(name, dir, await freePort());
    server.args = args;
    await server.start();
    return server;
  }

  constructor(name, dir, port) {
    this.name = name;
    this.dir = dir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.starts = 0;
  }

  async start() {
    this.starts += 1;
    const log = fs.openSync(path.join(OUTPUT, `server-${this.name}-${this.starts}.log`), "w");
    const child = spawn(
      BIN,
      [
        "serve",
        "--listen", `127.0.0.1:${this.port}`,
        "--database-url", `sqlite://${this.dir}/palaver.db`,
        "--rate-limit", "0",
        // Every person of every test registers from 127.0.0.1: lift the
        // per-address registration budget (its own tests are in Rust).
        "--registrations-per-ip-burst", "100000",
        "--log-format", "json",
        "--shutdown-grace", "5",
        // Uploads next to the database, removed with it.
        "--file-store", `file://${this.dir}/files`,
        ...(this.args ?? []),
      ],
      { stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    this.child = child;
    running.add(child);
    recordPids();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.once("exit", () => {
      running.delete(child);
      recordPids();
    });
    this.exited = exited;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`palaver exited with ${child.exitCode}`);
        const response = await fetch(`${this.url}/readyz`);
        if (response.status !== 200) throw new Error(`readyz ${response.status}`);
      },
      { timeout: 30_000 },
    ).catch((err) => {
      if (child.exitCode !== null) throw new Error(`palaver did not start: ${err.message}`);
      throw err;
    });
  }

  /** SIGTERM, and wait for the process to exit (SIGKILL after 20 s). */
  async stop() {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  async dispose() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends through the v1 API as an account whose display name is `author`; returns the stored message. */
  async post(room, author, text, clientId) {
    const cookie = await this.sessionFor(author);
    const response = await fetch(`${this.url}/api/v1/rooms/${room}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Cookie: cookie },
      body: JSON.stringify({ text, client_id: clientId }),
    });
    if (response.status !== 201) throw new Error(`send: ${response.status} ${await response.text()}`);
    return response.json();
  }

  /** The session cookie of this server's poster account named `author` (made on first use). */
  async sessionFor(author) {
    this.sessions ??= new Map();
    if (!this.sessions.has(author)) {
      const response = await fetch(`${this.url}/api/v1/auth/register`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: username(author), password: PASSWORD, display_name: author }),
      });
      if (response.status !== 201) throw new Error(`register ${author}: ${response.status} ${await response.text()}`);
      const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0];
      this.sessions.set(author, cookie);
    }
    return this.sessions.get(author);
  }
}

/** A deployed server (`PALAVER_E2E_BASE_URL`): nothing to start or stop. */
class RemoteServer extends Server {
  constructor(name, url) {
    super(name, null, null);
    this.url = url;
  }

  async start() {
    throw new Error("a remote server cannot be restarted from here");
  }

  async stop() {}

  async dispose() {}
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A page that records what must never happen: script errors, CSP violations
 * and dialogs (which are dismissed).
 */
export async function openPage(context, url) {
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on("pageerror", (err) => page.problems.push(`page error: ${err.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) {
      page.problems.push(`console: ${message.text()}`);
    }
  });
  page.on("dialog", async (dialog) => {
    page.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  if (url) await page.goto(url);
  return page;
}

/** Signs up in the page through the API (the page then holds the session) and opens `path`. */
export async function signUp(page, server, displayName, path = "/") {
  const user = username(displayName);
  await page.goto(`${server.url}/healthz`);
  const status = await page.evaluate(
    async ([username, password, display_name]) =>
      (
        await fetch("/api/v1/auth/register", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username, password, display_name }),
        })
      ).status,
    [user, PASSWORD, displayName],
  );
  assert.equal(status, 201, `register ${displayName}`);
  await page.goto(`${server.url}${path}`);
  return user;
}

/** An account made from node: `{username, cookie, call(method, path, body)}`. */
export async function account(server, displayName) {
  const user = username(displayName);
  const response = await fetch(`${server.url}/api/v1/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: user, password: PASSWORD, display_name: displayName }),
  });
  assert.equal(response.status, 201, `register ${displayName}`);
  const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0];
  const { user: me } = await response.json();
  return {
    ...me,
    cookie,
    async call(method, path, body) {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { Cookie: cookie, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text === "" ? null : JSON.parse(text) };
    },
    async post(room, text) {
      const res = await this.call("POST", `/api/v1/rooms/${room}/messages`, { text });
      assert.equal(res.status, 201, `post to ${room}: ${JSON.stringify(res.body)}`);
      return res.body;
    },
  };
}

/** Waits until the page reports the connection state `state`. */
export async function waitForState(page, state, timeout = 30_000) {
  await page.locator(`#connection[data-state="${state}"]`).waitFor({ timeout });
}

/** Creates an account shown as `name` on the sign-in screen and waits until the stream is live. */
export async function joinAs(page, name, { user = username(name), state = "connected" } = {}) {
  const form = page.locator("#auth-form");
  await form.getByRole("button", { name: "Create an account" }).click();
  await form.getByLabel("Username").fill(user);
  await form.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await form.getByLabel("Display name").fill(name);
  await form.getByRole("button", { name: "Create account", exact: true }).click();
  await page.getByRole("textbox", { name: "Message" }).waitFor();
  if (state !== null) await waitForState(page, state);
  return user;
}

/** The texts of the stored messages shown, in page order. */
export function shownTexts(page) {
  return page.locator("#messages .msg[data-seq] .msg-text").allTextContents();
}

/** The seqs of the stored messages shown, in page order. */
export function shownSeqs(page) {
  return page.locator("#messages .msg[data-seq]").evaluateAll((items) => items.map((i) => Number(i.dataset.seq)));
}

/** axe-core, installed by scripts/test-web.sh (`AXE_DIR`, default .tools/axe). */
const AXE_SOURCE = path.join(
  process.env.AXE_DIR ?? path.join(ROOT, ".tools/axe"),
  "node_modules/axe-core/axe.min.js",
);
let axeSource = null;

/**
 * The axe-core violations of what the page shows now, as readable lines
 * (`rule: target`). Evaluated through the DevTools protocol, so the page's
 * CSP stays on.
 */
export async function axeViolations(page) {
  axeSource ??= fs.readFileSync(AXE_SOURCE, "utf8");
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  return violations;
}

/** Saves a screenshot of a failing page next to the server logs. */
export async function keepEvidence(page, name) {
  try {
    await page.screenshot({ path: path.join(OUTPUT, `failure-${name}.png`), fullPage: true });
  } catch {
    // The page may already be gone.
  }
}
