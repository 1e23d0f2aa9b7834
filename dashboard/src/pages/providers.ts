// Providers and their accounts: usable or why not, add/remove an API key,
// upstream quota windows with a reset countdown, breakers and cooldowns.
import { get, post, del, qs, ProviderView, QuotaReport, Health } from "../api";
import { h, clear, table, dur, errorBox, pill } from "../dom";

export async function providers(root: HTMLElement) {
  const err = h("div");
  const list = h("div", { id: "providers-list" });
  const onlyUsable = h("input", { type: "checkbox", id: "only-usable" }) as HTMLInputElement;
  const filter = h("input", { type: "search", placeholder: "Filter providers", "aria-label": "Filter providers" }) as HTMLInputElement;
  const providerSel = h("select", { name: "provider", "aria-label": "Provider" }) as HTMLSelectElement;
  const label = h("input", { name: "label", placeholder: "label (default)", "aria-label": "Label" }) as HTMLInputElement;
  const key = h("input", { name: "api_key", type: "password", placeholder: "API key", autocomplete: "off", "aria-label": "API key" }) as HTMLInputElement;
  const tier = h("select", { name: "tier", "aria-label": "Tier" },
    h("option", { value: "" }, "provider's tier"),
    ["subscription", "api-key", "cheap", "free"].map((t) => h("option", { value: t }, t))) as HTMLSelectElement;
  const addMsg = h("div");
  // Subscription accounts: the provider's own sign-in, run by the gateway, or
  // the credential its CLI keeps on the gateway's machine.
  const subKind = h("select", { name: "kind", "aria-label": "Subscription" },
    [["claude", "Claude (Pro/Max)"], ["codex", "ChatGPT / Codex"], ["gemini", "Gemini CLI"], ["qwen", "Qwen Code"]]
      .map(([v, t]) => h("option", { value: v }, t))) as HTMLSelectElement;
  const subLabel = h("input", { name: "sub_label", placeholder: "label (default: its email)", "aria-label": "Subscription account name" }) as HTMLInputElement;
  const subMsg = h("div", { id: "sign-in-status" });
  const subInput = () => ({ kind: subKind.value, label: subLabel.value.trim() || undefined });
  async function signIn(e: Event) {
    e.preventDefault();
    try {
      const started = await post<{ id: string; url: string; code: string | null }>("/api/subscriptions/sign-in", subInput());
      const state = h("span", { class: "muted", id: "sign-in-state" }, "Waiting for the sign-in…");
      clear(subMsg, h("div", { class: "notice" },
        started.code
          ? h("p", {}, "Open ", h("a", { href: started.url, target: "_blank", rel: "noopener", id: "sign-in-url" }, started.url), " and enter the code ", h("b", { id: "sign-in-code" }, started.code))
          : h("p", {}, "Open this link on this machine and sign in: ", h("a", { href: started.url, target: "_blank", rel: "noopener", id: "sign-in-url" }, "sign in")),
        state));
      for (;;) {
        await new Promise((r) => setTimeout(r, 1000));
        const st = await get<{ state: string; account: { id: string; label: string } | null; error: string | null }>(`/api/subscriptions/sign-in/${encodeURIComponent(started.id)}`);
        if (st.state === "pending") continue;
        if (st.state === "signed_in" && st.account) {
          state.textContent = `Signed in: account ${st.account.id} (${st.account.label}).`;
          await load();
        } else {
          state.textContent = `Sign-in failed: ${st.error ?? "unknown reason"}`;
        }
        break;
      }
    } catch (e) {
      clear(subMsg, errorBox(e));
    }
  }
  async function importCli() {
    try {
      const a = await post<{ id: string; label: string }>("/api/subscriptions/import", subInput());
      clear(subMsg, h("div", { class: "notice" }, `Imported account ${a.id} (${a.label}).`));
      await load();
    } catch (e) {
      clear(subMsg, errorBox(e));
    }
  }
  const subForm = h("form", { class: "inline", id: "sign-in", onsubmit: signIn },
    subKind, subLabel,
    h("button", { class: "primary", type: "submit" }, "Sign in"),
    h("button", { type: "button", id: "import-cli", onclick: importCli }, "Import from this machine's CLI"));
  const addForm = h("form", {
    class: "inline", id: "add-account",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      try {
        const a = await post<{ id: string; usable: boolean }>("/api/accounts", {
          provider: providerSel.value, label: label.value.trim() || undefined,
          api_key: key.value.trim(), tier: tier.value || undefined,
        });
        key.value = "";
        clear(addMsg, h("div", { class: "notice" }, `Added account ${a.id} for ${providerSel.value} (usable: ${a.usable ? "yes" : "no"}).`));
        await load();
      } catch (e) {
        clear(addMsg, errorBox(e));
      }
    },
  }, providerSel, label, key, tier, h("button", { class: "primary", type: "submit" }, "Add key"));

  let data: ProviderView[] = [];
  let quota: QuotaReport = { accounts: [] };
  let health: Health | null = null;
  let loadedAt = Date.now();
  const countdown = (s: number) => h("span", { "data-until": String(loadedAt + s * 1000) }, dur(s));

  function render() {
    const q = filter.value.trim().toLowerCase();
    const shown = data.filter((p) => (!onlyUsable.checked || p.usable) && (!q || p.id.includes(q) || p.name.toLowerCase().includes(q)));
    const breakerOf = (id: string) => health?.routing.providers.find((p) => p.provider === id);
    clear(list, table(["Provider", "Format", "Tier", "State", "Accounts"], shown.map((p) => {
      const b = breakerOf(p.id);
      const state = p.usable
        ? pill(b ? `breakers ${b.state}${b.cooling ? `, ${b.cooling} cooling` : ""}` : "usable", b && b.state !== "closed" ? "warn" : "ok")
        : pill(p.account_list.find((a) => a.problem)?.problem ?? (p.env.length ? `set ${p.env.join(" or ")} or add a key` : "add a key"), "bad");
      const accounts = p.account_list.length
        ? h("div", {}, p.account_list.map((a) => {
            const qa = quota.accounts.find((x) => x.account === a.id);
            return h("div", { class: "row", "data-account": a.id },
              h("span", { class: "mono" }, a.id), h("span", {}, a.label), pill(a.tier),
              a.usable ? pill("usable", "ok") : pill(a.problem ?? "unusable", "bad"),
              qa?.cooldown_s ? h("span", { class: "pill warn" }, "cooling ", countdown(qa.cooldown_s), `: ${qa.cooldown_reason ?? ""}`) : null,
              qa?.upstream_remaining != null ? h("span", { class: "muted" }, `quota ${qa.upstream_remaining}/${qa.upstream_limit ?? "?"}`,
                qa.upstream_reset_s != null ? [", resets in ", countdown(qa.upstream_reset_s)] : null) : null,
              qa ? h("span", { class: "muted" }, `${qa.requests_today} req today`) : null,
              a.origin === "stored" || a.origin === "stored_env"
                ? h("button", {
                    class: "danger", "data-remove": a.id,
                    onclick: async () => {
                      if (!confirm(`Remove account ${a.id}?`)) return;
                      try { await del(`/api/accounts/${encodeURIComponent(a.id)}`); await load(); } catch (e) { clear(err, errorBox(e)); }
                    },
                  }, "Remove")
                : h("span", { class: "muted" }, a.origin === "env" ? `from $${a.env_var}` : ""));
          }))
        : h("span", { class: "muted" }, "none");
      return [h("b", {}, p.id), p.format, p.tier, state, accounts];
    })));
  }

  async function load() {
    try {
      [data, quota, health] = await Promise.all([
        get<ProviderView[]>(`/api/providers${qs({})}`),
        get<QuotaReport>("/api/quota"),
        get<Health>("/api/health"),
      ]);
      loadedAt = Date.now();
      const current = providerSel.value;
      clear(providerSel, data.map((p) => h("option", { value: p.id }, p.id)));
      if (current) providerSel.value = current;
      render();
      clear(err);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }

  filter.addEventListener("input", render);
  onlyUsable.addEventListener("change", render);
  clear(root,
    h("h1", {}, "Providers & accounts"),
    h("div", { class: "panel" }, h("h2", {}, "Add an API key"), addForm, addMsg,
      h("p", { class: "muted" }, "Keys are stored encrypted; they are never shown again.")),
    h("div", { class: "panel" }, h("h2", {}, "Sign in a subscription account"), subForm, subMsg,
      h("p", { class: "muted" }, "The sign-in's callback is on this machine's localhost: open the link in a browser here. Import takes the token that Claude Code, Codex CLI, Gemini CLI or Qwen Code stored on the gateway's machine. Tokens are stored encrypted and refreshed by the gateway.")),
    err,
    h("div", { class: "row" }, filter, h("label", {}, onlyUsable, " usable only")),
    h("div", { class: "panel" }, list));
  await load();
  // Countdowns move every second; figures reload every 10 s.
  const t1 = setInterval(() => {
    for (const el of list.querySelectorAll<HTMLElement>("[data-until]")) el.textContent = dur(Math.max(0, (Number(el.dataset.until) - Date.now()) / 1000));
  }, 1000);
  const t2 = setInterval(load, 10000);
  return () => { clearInterval(t1); clearInterval(t2); };
}
