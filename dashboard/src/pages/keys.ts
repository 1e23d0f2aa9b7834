// Client keys: create (the value is shown once, with a copy button), list, revoke.
import { get, post, del, KeyRow, CreatedKey } from "../api";
import { h, clear, table, time, errorBox, pill } from "../dom";

export async function keys(root: HTMLElement) {
  const err = h("div");
  const created = h("div", { id: "created-key" });
  const list = h("div", { class: "panel", id: "keys-list" });
  const label = h("input", { name: "label", placeholder: "label, e.g. laptop", "aria-label": "Key label" }) as HTMLInputElement;

  async function load() {
    try {
      const rows = await get<KeyRow[]>("/api/keys");
      clear(list, table(["Id", "Hint", "Label", "Source", "Created", "Status", ""], rows.map((k) => [
        h("span", { class: "mono" }, k.id), h("span", { class: "mono" }, k.hint), k.label, k.source, time(k.created_ms),
        k.revoked_ms ? pill("revoked", "bad") : pill(k.label === "first-start" ? "active (admin)" : "active", "ok"),
        k.revoked_ms ? "" : h("button", {
          class: "danger", "data-revoke": k.id,
          onclick: async () => {
            if (!confirm(`Revoke ${k.hint} (${k.label})? Clients using it stop working at once.`)) return;
            try { await del(`/api/keys/${encodeURIComponent(k.id)}`); await load(); } catch (e) { clear(err, errorBox(e)); }
          },
        }, "Revoke"),
      ])));
      list.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-key", rows[i].id));
      clear(err);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }

  const form = h("form", {
    class: "inline", id: "create-key",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      try {
        const k = await post<CreatedKey>("/api/keys", { label: label.value.trim() || undefined });
        label.value = "";
        const value = h("div", { class: "secret", id: "new-key-value" }, k.key);
        const copied = h("span", { class: "muted" });
        clear(created, h("div", { class: "notice" },
          h("p", {}, `Key ${k.id} (${k.label}) — shown only now; copy it:`), value,
          h("div", { class: "row", style: "margin-top:6px" },
            h("button", {
              type: "button", class: "primary", id: "copy-key",
              onclick: async () => {
                try { await navigator.clipboard.writeText(k.key); copied.textContent = "Copied."; }
                catch { copied.textContent = "Copy failed: select the key and copy it by hand."; }
              },
            }, "Copy"),
            h("button", { type: "button", onclick: () => clear(created) }, "Done, hide it"), copied)));
        await load();
      } catch (e) {
        clear(created, errorBox(e));
      }
    },
  }, label, h("button", { class: "primary", type: "submit" }, "Create key"));

  clear(root, h("h1", {}, "Keys"),
    h("div", { class: "panel" }, h("h2", {}, "Create a client key"), form,
      h("p", { class: "muted" }, "New keys call the API (/v1, /mcp, /a2a); the first-start key is the admin key that logs in here."), created),
    err, list);
  await load();
}
