// Shared harness for the JS SDK tests: starts the real mock provider binary and the real
// gateway binary once per test file (node --test runs every file in its own process), each on
// port 0 with a fresh temp SQLite db, and stops them afterwards, also when tests fail.
//
// Binaries come from $SWITCHYARD_BIN / $SWITCHYARD_MOCK_BIN, by default the debug builds in
// <repo>/target/debug/. A missing binary is a hard failure (build first:
// `cargo build -p switchyard -p switchyard-mock-provider`), never a skip.
//
// Usage in a test file:
//   import { useStack } from "./lib/stack.mjs";
//   const stack = useStack();            // registers before()/after() hooks
//   stack.test("name", async () => { ... stack.apiBase ... });  // failures get log tails

import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test as nodeTest } from "node:test";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const ADMIN_KEY = "sk-test-admin-key";
export const MODEL = "test/echo";

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const MAX_LOG_LINES = 2000;

// Everything we talk to lives on 127.0.0.1: never send it through a proxy from the CI env.
for (const v of ["NO_PROXY", "no_proxy"]) {
  process.env[v] = [process.env[v], "127.0.0.1", "localhost"].filter(Boolean).join(",");
}

// Environment variables that would make the gateway pick up real providers or another config.
const SCRUBBED_ENV = /^(SWITCHYARD_CONFIG|RUST_LOG|[A-Z0-9]+_API_KEY|[A-Z0-9]+_BASE_URL|AWS_[A-Z_]+)$/;

function gatewayConfig({ dbPath, mockBase }) {
  return `\
[storage]
url = "sqlite://${dbPath}"

[providers.mock]
kind = "openai"
base_url = "${mockBase}/v1"
api_key = "sk-upstream"

[[models]]
id = "${MODEL}"
name = "Test: Echo"
context_length = 8192
[[models.endpoints]]
provider = "mock"
model = "mock-echo"
pricing = { prompt = "0.000001", completion = "0.000002" }
`;
}

function binary(envVar, defaultPath, buildHint) {
  const path = process.env[envVar] || defaultPath;
  let ok = false;
  try {
    ok = statSync(path).isFile();
    accessSync(path, constants.X_OK);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(
      `${envVar}: binary not found or not executable: ${path}\n` +
        `Build it first (${buildHint}) or point ${envVar} at it.`,
    );
  }
  return path;
}

/** A child process whose stdout/stderr lines are kept (bounded) and can be waited on. */
class Service {
  constructor(name, cmd, args, opts) {
    this.name = name;
    this.lines = [];
    this.exited = null; // { code, signal } once the process is gone
    this.proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    this.exitPromise = new Promise((res) => {
      this.proc.once("exit", (code, signal) => {
        this.exited = { code, signal };
        res(this.exited);
      });
      this.proc.once("error", (err) => {
        this.lines.push(`[spawn error] ${err.message}`);
        this.exited = this.exited ?? { code: null, signal: null, error: err };
        res(this.exited);
      });
    });
    this.watchers = [];
    for (const [streamName, stream] of [["stdout", this.proc.stdout], ["stderr", this.proc.stderr]]) {
      stream.setEncoding("utf8");
      let buf = "";
      stream.on("data", (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.#line(streamName, buf.slice(0, nl).replace(/\r$/, ""));
          buf = buf.slice(nl + 1);
        }
      });
      stream.on("end", () => {
        if (buf) this.#line(streamName, buf);
        buf = "";
      });
    }
    LIVE.add(this);
  }

  #line(streamName, line) {
    this.lines.push(`[${streamName}] ${line}`);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
    for (const w of this.watchers) {
      if (w.stream === streamName) {
        const m = w.re.exec(line);
        if (m) w.resolve(m);
      }
    }
  }

  /** Resolves with the first match of `re` on `streamName`; rejects on exit or timeout. */
  waitFor(streamName, re, timeoutMs) {
    return new Promise((res, rej) => {
      let timer;
      const done = (fn, v) => {
        clearTimeout(timer);
        this.watchers = this.watchers.filter((w) => w !== watcher);
        fn(v);
      };
      const watcher = { stream: streamName, re, resolve: (m) => done(res, m) };
      this.watchers.push(watcher);
      timer = setTimeout(
        () => done(rej, new Error(`${this.name}: no line matching ${re} on ${streamName} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.exitPromise.then((e) => {
        // Let the last buffered lines arrive before giving up.
        setTimeout(
          () => done(rej, new Error(`${this.name} exited before it was ready (code ${e.code}, signal ${e.signal})`)),
          200,
        );
      });
    });
  }

  tail(n = 60) {
    const state = this.exited ? `exited code=${this.exited.code} signal=${this.exited.signal}` : "running";
    const lines = this.lines.slice(-n);
    return `--- ${this.name} (${state}), last ${lines.length} lines ---\n${lines.join("\n") || "(no output)"}`;
  }

  async stop() {
    if (!this.exited) {
      try {
        this.proc.kill("SIGTERM");
      } catch {
        /* already gone */
      }
      let timer;
      const timedOut = await Promise.race([
        this.exitPromise.then(() => false),
        new Promise((r) => (timer = setTimeout(() => r(true), STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (timedOut && !this.exited) {
        this.proc.kill("SIGKILL");
        await this.exitPromise;
      }
    }
    LIVE.delete(this);
    return this.exited;
  }
}

// Last resort: whatever happens to this test process (process.exit, an uncaught exception,
// SIGINT/SIGTERM), never leave a child or a temp dir behind.
const LIVE = new Set();
const WORKDIRS = new Set();
function killAllNow() {
  for (const s of LIVE) {
    try {
      s.proc.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
  LIVE.clear();
  for (const d of WORKDIRS) rmSync(d, { recursive: true, force: true });
  WORKDIRS.clear();
}
process.once("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    killAllNow();
    process.exit(128 + (sig === "SIGINT" ? 2 : 15));
  });
}

/** Starts mock + gateway. Returns { mockUrl, gatewayUrl, apiBase, adminKey, model, logs(), stop() }. */
export async function startStack() {
  const gatewayBin = binary("SWITCHYARD_BIN", join(REPO, "target", "debug", "switchyard"), "cargo build -p switchyard");
  const mockBin = binary(
    "SWITCHYARD_MOCK_BIN",
    join(REPO, "target", "debug", "switchyard-mock"),
    "cargo build -p switchyard-mock-provider",
  );
  const workdir = mkdtempSync(join(tmpdir(), "switchyard-js-sdk-tests-"));
  WORKDIRS.add(workdir);
  const services = [];
  const stop = async () => {
    for (const s of [...services].reverse()) await s.stop();
    rmSync(workdir, { recursive: true, force: true });
    WORKDIRS.delete(workdir);
  };
  const logs = (n = 60) => services.map((s) => s.tail(n)).join("\n");
  try {
    const mock = new Service("switchyard-mock", mockBin, ["--listen", "127.0.0.1:0"], { cwd: workdir });
    services.push(mock);
    const mm = await mock.waitFor("stdout", /^switchyard-mock listening on (http:\/\/[^\s/]+)\/?\s*$/, READY_TIMEOUT_MS);
    const mockUrl = mm[1];

    const configPath = join(workdir, "switchyard.toml");
    writeFileSync(configPath, gatewayConfig({ dbPath: join(workdir, "switchyard.db"), mockBase: mockUrl }));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SCRUBBED_ENV.test(k)));
    env.SWITCHYARD_ADMIN_KEY = ADMIN_KEY;
    env.SWITCHYARD_LOG = "info"; // the readiness line is an info-level log line
    env.NO_COLOR = "1";
    const gw = new Service(
      "switchyard",
      gatewayBin,
      ["serve", "--config", configPath, "--listen", "127.0.0.1:0"],
      { cwd: workdir, env },
    );
    services.push(gw);
    const gm = await gw.waitFor("stderr", /listening on (http:\/\/[^\s/]+)/, READY_TIMEOUT_MS);
    const gatewayUrl = gm[1];
    return {
      mockUrl,
      gatewayUrl,
      apiBase: `${gatewayUrl}/api/v1`,
      adminKey: ADMIN_KEY,
      model: MODEL,
      workdir,
      logs,
      stop,
    };
  } catch (err) {
    const out = logs(100);
    await stop();
    err.message += `\n${out}`;
    throw err;
  }
}

/**
 * Registers before()/after() hooks that start and stop the stack for the calling test file.
 * The returned object gets the stack's fields once before() ran, and a `test(name, fn)` that
 * appends the services' log tails and the recorded HTTP exchanges to a failing test's error.
 */
export function useStack() {
  const holder = {
    started: false,
    /** HTTP exchanges of the current test, filled by `holder.fetch`. */
    exchanges: [],
    test(name, fn) {
      return nodeTest(name, async (t) => {
        holder.exchanges = [];
        try {
          await fn(t);
        } catch (err) {
          const wire = await describeExchanges(holder.exchanges);
          const extra = `\n${wire}\n${holder.started ? holder.logs(40) : "(stack not started)"}`;
          if (err && typeof err === "object") {
            try {
              err.message = `${err.message}${extra}`;
            } catch {
              /* read-only message */
            }
          }
          throw err;
        }
      });
    },
    /** A fetch that records each exchange (request body, status, headers, response text). */
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      const rec = {
        method: init?.method ?? "GET",
        url: typeof input === "string" ? input : input.url ?? String(input),
        requestBody: typeof init?.body === "string" ? init.body : init?.body ? "(non-string body)" : "",
        status: res.status,
        headers: Object.fromEntries(res.headers.entries()),
        text: null,
      };
      holder.exchanges.push(rec);
      const clone = res.clone();
      rec.textPromise = clone.text().then(
        (t) => (rec.text = t),
        (e) => (rec.text = `(body read failed: ${e.message})`),
      );
      return res;
    },
  };
  before(async () => {
    Object.assign(holder, await startStack());
    holder.started = true;
  });
  after(async () => {
    if (holder.started) await holder.stop();
  });
  return holder;
}

/** The JSON body of the last recorded exchange whose URL ends with `suffix`. */
export async function lastJson(holder, suffix) {
  const rec = [...holder.exchanges].reverse().find((r) => r.url.endsWith(suffix));
  if (!rec) throw new Error(`no recorded exchange for *${suffix}`);
  await rec.textPromise;
  return { status: rec.status, headers: rec.headers, body: JSON.parse(rec.text) };
}

/** The SSE `data:` payloads (parsed JSON, `[DONE]` kept as a string) of the last exchange. */
export async function lastSse(holder, suffix) {
  const rec = [...holder.exchanges].reverse().find((r) => r.url.endsWith(suffix));
  if (!rec) throw new Error(`no recorded exchange for *${suffix}`);
  await rec.textPromise;
  const events = [];
  for (const line of rec.text.split(/\r?\n/)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    events.push(data === "[DONE]" ? data : JSON.parse(data));
  }
  return { status: rec.status, headers: rec.headers, events };
}

async function describeExchanges(exchanges) {
  if (!exchanges.length) return "--- no HTTP exchanges recorded ---";
  const out = ["--- HTTP exchanges of this test ---"];
  for (const r of exchanges) {
    let timer;
    await Promise.race([r.textPromise, new Promise((res) => (timer = setTimeout(res, 2000)))]);
    clearTimeout(timer);
    const body = r.text ?? "(body not read)";
    out.push(
      `> ${r.method} ${r.url}\n> ${truncate(r.requestBody, 2000)}\n< ${r.status} ${JSON.stringify(r.headers)}\n< ${truncate(body, 4000)}`,
    );
  }
  return out.join("\n");
}

function truncate(s, n) {
  return s && s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;
}
