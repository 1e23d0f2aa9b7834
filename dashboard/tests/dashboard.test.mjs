// Browser tests: the real binary (started by tests/dashboard.rs) driven in
// Debian's headless Chromium through playwright-core. Screenshots of every
// page go to $OMNIROUTE_ARTIFACTS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through cargo test --test dashboard`);
  return v;
};
const BASE = env("OMNIROUTE_URL");
const ADMIN_KEY = env("OMNIROUTE_ADMIN_KEY");
const ARTIFACTS = env("OMNIROUTE_ARTIFACTS");
mkdirSync(ARTIFACTS, { recursive: true });

// Flags known to work on this machine's closed network (see the env notes).
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let browser, context, page, clientKey;
const timings = {};

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: FLAGS });
  context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on("pageerror", (e) => { throw e; });
});

after(async () => {
  await browser?.close();
  console.log(`timings ${JSON.stringify(timings)}`);
});

const shot = (name) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
const api = (path, init = {}) => fetch(`${BASE}${path}`, init);
const asClient = (key, path, init = {}) =>
  api(path, { ...init, headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers ?? {}) } });
const chat = (key, model) => asClient(key, "/v1/chat/completions", {
  method: "POST", body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
});
const admin = (path, init = {}) => asClient(ADMIN_KEY, path, init);

test("log in with the admin key", async () => {
  const t0 = Date.now();
  await page.goto(`${BASE}/`);
  await page.getByLabel("Admin key").waitFor();
  timings.login_page_ms = Date.now() - t0;
  await page.getByLabel("Admin key").fill("sk-omni-wrong");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "invalid API key" }).waitFor();
  await page.getByLabel("Admin key").fill(ADMIN_KEY);
  const t1 = Date.now();
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#overview-tiles .tile").first().waitFor();
  timings.overview_after_login_ms = Date.now() - t1;
  const cookies = await context.cookies(BASE);
  const c = cookies.find((c) => c.name === "omniroute_session");
  assert.ok(c, "session cookie set");
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, "Strict");
  const nav = await page.evaluate(() => performance.getEntriesByType("navigation")[0].toJSON());
  timings.dom_content_loaded_ms = Math.round(nav.domContentLoadedEventEnd);
  timings.load_ms = Math.round(nav.loadEventEnd);
});

test("create a key and copy it", async () => {
  await page.click('nav a[data-page="keys"]');
  await page.getByLabel("Key label").fill("browser");
  // Inference is ticked by default; read is added.
  assert.ok(await page.getByLabel("Scope inference", { exact: true }).isChecked());
  assert.ok(!(await page.getByLabel("Scope admin", { exact: true }).isChecked()));
  await page.getByLabel("Scope read", { exact: true }).check();
  await page.getByRole("button", { name: "Create key" }).click();
  const shown = (await page.locator("#new-key-value").textContent()).trim();
  assert.match(shown, /^sk-omni-[0-9a-f]{48}$/);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied.").waitFor();
  clientKey = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clientKey, shown);
  assert.equal((await asClient(clientKey, "/v1/models")).status, 200);
  const scopesOf = async () => (await (await admin("/api/keys")).json()).find((k) => k.label === "browser").scopes;
  assert.deepEqual(await scopesOf(), ["inference", "read"]);
  // Not admin: the admin API refuses it.
  assert.equal((await asClient(clientKey, "/api/keys")).status, 403);
  // Change its scopes from the list: read off again.
  const id = (await (await admin("/api/keys")).json()).find((k) => k.label === "browser").id;
  await page.getByLabel(`${id} scope read`, { exact: true }).uncheck();
  await page.locator(`[data-scopes="${id}"]`).waitFor();
  for (let i = 0; i < 50 && (await scopesOf()).includes("read"); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await scopesOf(), ["inference"]);
  await shot("keys");
});

test("import a subscription account from this machine's CLI", async () => {
  await page.click('nav a[data-page="providers"]');
  await page.locator("#sign-in select[name=kind]").selectOption("claude");
  await page.getByLabel("Subscription account name").fill("max-plan");
  await page.getByRole("button", { name: "Import from this machine's CLI" }).click();
  await page.getByText(/Imported account acc_[0-9a-f]+ \(max-plan\)/).waitFor();
  const accounts = await (await admin("/api/accounts")).json();
  assert.ok(accounts.some((a) => a.provider === "claude-code" && a.label === "max-plan"), JSON.stringify(accounts));
  await shot("providers-subscription");
});

test("add a provider key and see its models", async () => {
  const before = await (await asClient(clientKey, "/v1/models")).json();
  assert.ok(!before.data.some((m) => m.id === "fake/gpt-4o-mini"), "fake is not usable yet");
  await page.click('nav a[data-page="providers"]');
  await page.locator("#add-account select[name=provider]").selectOption("fake");
  await page.getByLabel("Label").fill("dash");
  await page.getByLabel("API key").fill("upstream-secret");
  await page.getByRole("button", { name: "Add key" }).click();
  await page.getByText(/Added account acc_\w+ for fake \(usable: yes\)/).waitFor();
  await page.locator('[data-account^="acc_"]').first().waitFor();
  const after = await (await asClient(clientKey, "/v1/models")).json();
  assert.ok(after.data.some((m) => m.id === "fake/gpt-4o-mini"), JSON.stringify(after));
  await shot("providers");
});

test("create a combo, reorder it by drag, and see /v1/models list it", async () => {
  await page.click('nav a[data-page="combos"]');
  await page.getByLabel("Combo name").fill("dash-combo");
  await page.getByLabel("Strategy").selectOption("priority");
  for (const t of ["fake/fail-500", "fake/gpt-4o-mini"]) {
    await page.getByLabel("Add target").fill(t);
    await page.getByRole("button", { name: "Add target" }).click();
  }
  await page.getByRole("button", { name: "Dry run" }).click();
  await page.locator("#combo-result").getByText("Dry run: nothing saved.").waitFor();
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/#\/combos\/dash-combo$/);
  await page.locator("#combo-targets li").nth(1).waitFor();
  let models = await (await asClient(clientKey, "/v1/models")).json();
  assert.ok(models.data.some((m) => m.id === "dash-combo"), "the combo is a model");
  // drag the second target above the first
  await page.locator('#combo-targets li[data-index="1"]').dragTo(page.locator('#combo-targets li[data-index="0"]'));
  assert.deepEqual(await page.locator("#combo-targets li").evaluateAll((els) => els.map((e) => e.dataset.target)),
    ["fake/gpt-4o-mini", "fake/fail-500"]);
  await page.getByRole("button", { name: "Dry run" }).click();
  await page.locator("#combo-result .diff").getByText(/^models: /).waitFor();
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#combo-result").getByText(/Saved dash-combo \(version 2\)/).waitFor();
  await page.locator("#combo-title").getByText("dash-combo · version 2").waitFor();
  const stored = await (await admin("/api/combos/dash-combo")).json();
  assert.deepEqual(stored.targets, ["fake/gpt-4o-mini", "fake/fail-500"]);
  await page.locator("#combo-history").getByText("upsert").first().waitFor();
  await page.getByRole("button", { name: "Test" }).click();
  await page.locator("#combo-test").getByText("1 ok, 1 failed").waitFor();
  models = await (await asClient(clientKey, "/v1/models")).json();
  assert.ok(models.data.some((m) => m.id === "dash-combo"));
  await shot("combos");
  // roll the reorder back
  await page.getByRole("button", { name: "Roll back" }).click();
  await page.locator("#combo-title").getByText("dash-combo · version 3").waitFor();
  assert.deepEqual(await page.locator("#combo-targets li").evaluateAll((els) => els.map((e) => e.dataset.target)),
    ["fake/fail-500", "fake/gpt-4o-mini"]);
  assert.deepEqual((await (await admin("/api/combos/dash-combo")).json()).targets, ["fake/fail-500", "fake/gpt-4o-mini"]);
  await page.locator("#combo-history").getByText("rollback").first().waitFor();
});

test("traffic shows up on the overview chart and the requests page", async () => {
  await page.click('nav a[data-page="overview"]');
  const tiles = page.locator("#overview-tiles");
  await tiles.locator(".tile").first().waitFor();
  const before = Number(await tiles.getAttribute("data-total-requests"));
  const plottedBefore = Number(await page.locator("#chart-requests").getAttribute("data-plotted"));
  for (let i = 0; i < 4; i++) assert.equal((await chat(clientKey, "dash-combo")).status, 200);
  // 502 when its attempt fails, 503 while the combo test's failure keeps it cooling
  assert.ok([502, 503].includes((await chat(clientKey, "fake/fail-500")).status));
  const t0 = Date.now();
  await page.waitForFunction((n) => Number(document.querySelector("#overview-tiles")?.dataset.totalRequests) >= n, before + 5, { timeout: 15000 });
  timings.overview_update_ms = Date.now() - t0;
  assert.ok(Number(await page.locator("#chart-requests").getAttribute("data-plotted")) >= plottedBefore + 5, "the chart plots the new requests");
  assert.equal(await page.locator("#chart-requests canvas").count(), 1);
  await shot("overview");

  await page.click('nav a[data-page="requests"]');
  await page.locator("#requests-table tbody tr[data-request]").first().waitFor();
  assert.ok(Number(await page.locator("#requests-table tbody").getAttribute("data-count")) >= 5);
  await page.getByLabel("Status").selectOption("error");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#requests-table tbody tr[data-request]")];
    return rows.length >= 1 && rows.every((r) => /50[23]/.test(r.textContent));
  });
  await page.locator("#requests-table tbody tr[data-request]").first().click();
  await page.locator(".route").getByText(/^(Failed attempts|Skipped)$/).first().waitFor();
  await page.locator(".route").getByText(/fake\/(fail-500 via acc_\w+: HTTP 500|acc_\w+\/fail-500: )/).first().waitFor();
  await shot("requests");
});

test("usage and health pages", async () => {
  await page.click('nav a[data-page="usage"]');
  await page.locator("#usage-report").getByText("By model").waitFor();
  await page.locator("#usage-report").getByText("fake/gpt-4o-mini").first().waitFor();
  await shot("usage");
  await page.click('nav a[data-page="health"]');
  await page.locator("#health").getByText("Targets").waitFor();
  await page.locator("#health").getByText(/fake\/acc_\w+\/fail-500/).first().waitFor();
  await shot("health");
});

test("revoke a key", async () => {
  await page.click('nav a[data-page="keys"]');
  page.once("dialog", (d) => d.accept());
  const id = (await (await admin("/api/keys")).json()).find((k) => k.label === "browser").id;
  await page.locator(`button[data-revoke="${id}"]`).click();
  await page.locator(`tr[data-key="${id}"]`).getByText("revoked").waitFor();
  assert.equal((await asClient(clientKey, "/v1/models")).status, 401);
});

test("split-port mode: the dashboard and admin API only on the dashboard port", async () => {
  const apiUrl = env("SPLIT_API_URL");
  const dashUrl = env("SPLIT_DASHBOARD_URL");
  const link = env("SPLIT_LOGIN_LINK");
  const root = await fetch(`${apiUrl}/`, { headers: { accept: "text/html" } });
  assert.match(root.headers.get("content-type"), /application\/json/);
  assert.equal((await fetch(`${apiUrl}/api/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status, 404);
  assert.equal((await fetch(`${apiUrl}/metrics`)).status, 404);
  assert.equal((await fetch(`${apiUrl}/assets/app.js`)).status, 404);
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const p = await ctx.newPage();
  await p.goto(link);
  await p.locator("#overview-tiles .tile").first().waitFor();
  assert.ok(p.url().startsWith(dashUrl));
  // the link works once
  const again = await fetch(link, { redirect: "manual" });
  assert.equal(again.status, 401);
  await p.screenshot({ path: `${ARTIFACTS}/split-port-overview.png`, fullPage: true });
  await ctx.close();
});
