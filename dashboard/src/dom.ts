// A tiny element builder and formatters: the whole "framework".

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h(tag: string, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el: HTMLElement, ...children: (Child | Child[])[]) {
  el.replaceChildren();
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
}

export function table(headers: string[], rows: (Child | Child[])[][], numeric: number[] = []): HTMLElement {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { class: numeric.includes(i) ? "num" : undefined }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : undefined }, c))))));
}

export const ms = (v: number | null | undefined) => (v === null || v === undefined ? "–" : v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`);
export const usd = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `$${v < 1 ? v.toFixed(6) : v.toFixed(2)}`);
export const pct = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
export const num = (v: number) => v.toLocaleString("en-US");
export const time = (t: number) => new Date(t).toLocaleString();
export function dur(s: number | null | undefined): string {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.ceil(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function errorBox(e: unknown): HTMLElement {
  return h("div", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e));
}

export function pill(text: string, kind: "ok" | "bad" | "warn" | "" = ""): HTMLElement {
  return h("span", { class: `pill ${kind}` }, text);
}
