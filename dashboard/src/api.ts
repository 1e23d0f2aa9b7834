// Calls to the admin API: same origin, the session cookie, and the CSRF
// token on every change. Errors come back in OpenAI's shape.

let csrf = "";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export function setCsrf(token: string) {
  csrf = token;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  const resp = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const msg = data?.error?.message ?? `${resp.status} ${resp.statusText}`;
    const loggingIn = path === "/api/login" || path === "/api/session";
    if (resp.status === 401 && !loggingIn) window.dispatchEvent(new CustomEvent("omniroute:logged-out"));
    throw new ApiError(resp.status, msg);
  }
  return data as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => call<T>("POST", path, body ?? {});
export const put = <T>(path: string, body: unknown) => call<T>("PUT", path, body);
export const del = <T>(path: string) => call<T>("DELETE", path);

export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

// The shapes the pages use (see schemas/openapi.json for the full ones).
export interface Session { csrf_token: string; key_id: string | null; expires_in_s: number }
export interface Point {
  ts_ms: number; requests: number; requests_per_min: number; errors: number;
  error_rate: number | null; cache_hits: number; cache_hit_rate: number | null; cost_usd: number;
  latency_p50_ms: number | null; latency_p95_ms: number | null; latency_p99_ms: number | null;
  overhead_p50_ms: number | null; overhead_p95_ms: number | null; overhead_p99_ms: number | null;
}
export interface Overview {
  window: string; step_s: number; points: Point[]; totals: Point;
  spend_today_usd: number; spend_month_usd: number; requests_today: number;
  usable_providers: number; uptime_s: number;
}
export interface AccountView {
  id: string; provider: string; label: string; origin: string; env_var: string | null;
  tier: string; priority: number; enabled: boolean; usable: boolean; problem: string | null;
}
export interface ProviderView {
  id: string; name: string; prefix: string; format: string; base_url: string; tier: string;
  origin: string; env: string[]; local: boolean; usable: boolean; accounts: number;
  account_list: AccountView[]; models: string[];
}
export interface AccountQuota {
  account: string; provider: string; label: string; tier: string; usable: boolean;
  cooldown_s: number | null; cooldown_reason: string | null; upstream_remaining: number | null;
  upstream_limit: number | null; upstream_reset_s: number | null; spent_today_usd: number; requests_today: number;
}
export interface QuotaReport { accounts: AccountQuota[] }
export interface TargetReport {
  target: string; breaker: string; cooldown_s: number | null; cooldown_reason: string | null;
  requests: number; errors: number; error_rate: number;
  latency_p50_ms: number | null; latency_p95_ms: number | null; latency_p99_ms: number | null;
}
export interface Health {
  status: string; version: string; pid: number; uptime_s: number;
  store: { ok: boolean; schema_version: number | null; error: string | null };
  usable_providers: number;
  overhead: { requests: number; p50_ms: number | null; p95_ms: number | null; p99_ms: number | null };
  recent_window_s: number;
  providers: { id: string; usable: boolean; usable_accounts: number; accounts: number; requests: number; errors: number; error_rate: number | null; avg_latency_ms: number | null; last_error: string | null }[];
  routing: {
    providers: { provider: string; state: string; targets: number; open: number; cooling: number; requests: number; errors: number }[];
    targets: TargetReport[];
    accounts: { account: string; cooldown_s: number | null; reason: string | null; quota_remaining: number | null; quota_limit: number | null; quota_reset_s: number | null }[];
  };
}
export type Step = string | { model: string; account?: string | null; weight?: number | null } | { combo: string };
export interface Combo {
  name: string; strategy: string; models: Step[]; sticky?: boolean; description?: string | null;
  [extra: string]: unknown;
}
export interface ComboView { combo: Combo; version: number; builtin: boolean; targets: string[] }
export interface UpsertResult {
  name: string; saved: boolean; created: boolean; changed: boolean; version: number;
  diff: string[]; warnings: string[];
}
export interface ComboTest { name: string; ok: number; failed: number; results: { target: string; ok: boolean; latency_ms: number; status: number | null; error: string | null }[] }
export interface AuditEntry { id: number; ts_ms: number; actor: string; action: string; entity: string; entity_id: string; before: unknown; after: unknown }
export type Scope = "inference" | "read" | "admin";
export const SCOPES: Scope[] = ["inference", "read", "admin"];
export interface KeyRow { id: string; hint: string; label: string; source: string; created_ms: number; revoked_ms: number | null; scopes: Scope[] }
export interface CreatedKey { id: string; key: string; label: string; scopes: Scope[] }
export interface RouteTrace {
  combo: string | null; strategy: string | null; tier: string | null; attempts: number;
  failed: string[]; skipped: string[]; translation: string | null; translation_notes: string[]; context_relay: string | null;
  spans: { target: string; start_ms: number; duration_ms: number; status: number | null; error: string | null }[];
}
export interface RequestRecord {
  id: number; ts_ms: number; request_id: string; key_id: string | null; endpoint: string;
  requested_model: string; provider: string | null; account: string | null; model: string | null;
  stream: boolean; status: number; outcome: string; input_tokens: number; output_tokens: number;
  cached_tokens: number; cost_usd: number | null; latency_ms: number; upstream_ms: number | null;
  overhead_ms: number | null; error: string | null; tier: string | null; combo: string | null; route: RouteTrace | null;
}
export interface RequestsPage { requests: RequestRecord[]; next_before: number | null }
export interface UsageLine { group: string; requests: number; errors: number; input_tokens: number; output_tokens: number; cached_tokens: number; cost_usd: number; avg_latency_ms: number }
export interface Saving { model: string; spent_usd: number; requests: number; alternative: string; alternative_provider: string; alternative_tier: string; kind: string; estimated_cost_usd: number; estimated_saving_usd: number }
export interface CostReport {
  since: string; total_requests: number; total_errors: number; total_input_tokens: number; total_output_tokens: number;
  total_cost_usd: number; by_provider: UsageLine[]; by_model: UsageLine[]; by_key: UsageLine[]; by_day: UsageLine[]; suggestions: Saving[];
}
export interface ModelView { id: string; provider: string; tier: string }
