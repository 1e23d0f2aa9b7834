// The dashboard shell: login, navigation by URL hash, one page at a time.
import { get, post, setCsrf, Session } from "./api";
import { h, clear, errorBox } from "./dom";
import { overview } from "./pages/overview";
import { providers } from "./pages/providers";
import { combos } from "./pages/combos";
import { keys } from "./pages/keys";
import { requests } from "./pages/requests";
import { usage } from "./pages/usage";
import { health } from "./pages/health";

export type Page = (root: HTMLElement, arg: string) => Promise<(() => void) | void>;

const PAGES: [string, string, Page][] = [
  ["overview", "Overview", overview],
  ["providers", "Providers & accounts", providers],
  ["combos", "Combos", combos],
  ["keys", "Keys", keys],
  ["requests", "Requests", requests],
  ["usage", "Usage & cost", usage],
  ["health", "Health", health],
];

const app = document.getElementById("app")!;
let cleanup: (() => void) | void = undefined;

function showLogin(message?: string) {
  if (cleanup) cleanup();
  cleanup = undefined;
  const input = h("input", { type: "password", name: "key", placeholder: "sk-omni-…", autocomplete: "off", "aria-label": "Admin key" }) as HTMLInputElement;
  const err = h("div");
  const form = h("form", {
    onsubmit: async (e: Event) => {
      e.preventDefault();
      try {
        const s = await post<Session>("/api/login", { key: input.value.trim() });
        setCsrf(s.csrf_token);
        start();
      } catch (e) {
        clear(err, errorBox(e));
      }
    },
  },
    h("h1", {}, "omniroute"),
    h("p", { class: "muted" }, "Log in with the admin key (printed at first start), or open the one-time login link the gateway printed when it started."),
    input,
    h("button", { class: "primary", type: "submit" }, "Log in"),
    err);
  clear(app, h("div", { class: "login panel" }, message ? h("div", { class: "error" }, message) : null, form));
  input.focus();
}

function shell(): HTMLElement {
  const nav = h("nav", {},
    h("div", { class: "brand" }, "omniroute"),
    PAGES.map(([id, title]) => h("a", { href: `#/${id}`, "data-page": id }, title)),
    h("button", {
      class: "logout",
      onclick: async () => {
        try { await post("/api/logout"); } finally { showLogin(); }
      },
    }, "Log out"));
  const main = h("main", { id: "page" });
  clear(app, h("div", { class: "layout" }, nav, main));
  return main;
}

async function route() {
  const [id, ...rest] = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const entry = PAGES.find(([p]) => p === id) ?? PAGES[0];
  let main = document.getElementById("page");
  if (!main) main = shell();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", (a as HTMLElement).dataset.page === entry[0]);
  if (cleanup) cleanup();
  cleanup = undefined;
  clear(main, h("p", { class: "muted" }, "Loading…"));
  document.title = `${entry[1]} · omniroute`;
  try {
    cleanup = await entry[2](main, decodeURIComponent(rest.join("/")));
  } catch (e) {
    clear(main, h("h1", {}, entry[1]), errorBox(e));
  }
}

async function start() {
  try {
    const s = await get<Session>("/api/session");
    setCsrf(s.csrf_token);
  } catch {
    showLogin();
    return;
  }
  shell();
  await route();
}

window.addEventListener("hashchange", () => { if (document.getElementById("page")) route(); });
window.addEventListener("omniroute:logged-out", () => showLogin("Your session has ended; log in again."));
start();
