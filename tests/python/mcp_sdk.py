"""Drive omniroute's MCP server with the official MCP Python SDK.

Usage: mcp_sdk.py MODE TRANSPORT
  MODE: legacy (initialize handshake) or auto (probe 2026-07-28, fall back)
  TRANSPORT: stdio (runs OMNIROUTE_BIN --data-dir OMNIROUTE_DATA_DIR --mcp)
             or http (OMNIROUTE_MCP_URL with OMNIROUTE_KEY as a bearer key)
Optional: OMNIROUTE_MODEL (a usable model for omniroute_route_request and the
combo the script creates), OMNIROUTE_EXPECT_REQUESTS (the health report's
overhead.requests must be at least this), OMNIROUTE_V1_URL (a running gateway's
/v1: a combo saved through MCP must serve chat there within one second).
Every non-error tool result is validated by the SDK against the tool's outputSchema.
"""

import asyncio
import json
import os
import sys
import time

import httpx

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BUILT = [
    "omniroute_get_health",
    "omniroute_list_providers",
    "omniroute_list_models",
    "omniroute_cost_report",
    "omniroute_route_request",
    "omniroute_get_audit_log",
    "omniroute_cache_stats",
    "omniroute_cache_flush",
]
ROUTING = [
    "omniroute_list_combos",
    "omniroute_get_combo",
    "omniroute_upsert_combo",
    "omniroute_delete_combo",
    "omniroute_rollback_combo",
    "omniroute_set_routing_strategy",
    "omniroute_check_quota",
    "omniroute_set_budget",
    "omniroute_explain_route",
    "omniroute_test_combo",
]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


async def combos(client, model, name):
    """The routing tools end to end on a combo of our own."""
    spec = {"name": name, "models": [model]}
    dry = await client.call_tool("omniroute_upsert_combo", {"combo": spec, "dry_run": True})
    check(not dry.is_error and dry.structured_content["saved"] is False, "upsert dry_run validates and saves nothing")
    check(any("models" in d for d in dry.structured_content["diff"]), "dry_run returns the diff")
    bad = await client.call_tool("omniroute_upsert_combo", {"combo": {"name": name, "models": ["nope/none"]}})
    check(bad.is_error and "nope/none" in bad.content[0].text, "an unknown target is refused, named")
    saved = await client.call_tool("omniroute_upsert_combo", {"combo": spec})
    check(saved.structured_content["saved"] is True, "upsert saves")
    listed = (await client.call_tool("omniroute_list_combos", {})).structured_content["combos"]
    check(name in [c["combo"]["name"] for c in listed], "the new combo is listed")

    v1 = os.environ.get("OMNIROUTE_V1_URL")
    if v1:
        deadline = time.monotonic() + 1.0
        async with httpx.AsyncClient() as http:
            while True:
                r = await http.post(
                    f"{v1}/chat/completions",
                    headers={"Authorization": f"Bearer {os.environ['OMNIROUTE_KEY']}"},
                    json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
                )
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        check(r.status_code == 200 and r.headers.get("x-omniroute-combo") == name,
              f"the running gateway serves the combo within 1 s ({r.status_code})")

    strat = await client.call_tool("omniroute_set_routing_strategy", {"name": name, "strategy": "round-robin"})
    check(not strat.is_error and strat.structured_content["diff"], "strategy changed")
    got = (await client.call_tool("omniroute_get_combo", {"name": name})).structured_content
    check(got["combo"]["strategy"] == "round-robin" and got["targets"] == [model], "get_combo shows the change")
    plan = (await client.call_tool("omniroute_explain_route", {"model": name})).structured_content
    check(plan["combo"] == name and len(plan["targets"]) >= 1, "explain_route gives the plan")
    back = (await client.call_tool("omniroute_rollback_combo", {"name": name})).structured_content
    check(back["restored"]["strategy"] == "priority", "rollback restores the previous version")
    res = await client.read_resource(f"omniroute://combos/{name}")
    check(json.loads(res.contents[0].text)["combo"]["name"] == name, "combo resource reads")
    budget = await client.call_tool("omniroute_set_budget", {"scope": "combo", "scope_id": name, "period": "day", "limit_usd": 2.5})
    check(not budget.is_error and budget.structured_content["limit_usd"] == 2.5, "budget set")
    quota = (await client.call_tool("omniroute_check_quota", {})).structured_content
    check(any(b["rule"]["scope_id"] == name for b in quota["budgets"]), "check_quota shows the budget")
    check(len(quota["accounts"]) >= 1, "check_quota lists accounts")
    gone = await client.call_tool("omniroute_delete_combo", {"name": name})
    check(not gone.is_error, "combo deleted")
    missing = await client.call_tool("omniroute_get_combo", {"name": name})
    check(missing.is_error and "not found" in missing.content[0].text, "a deleted combo is not found")


def server(transport):
    if transport == "stdio":
        return StdioServerParameters(
            command=os.environ["OMNIROUTE_BIN"],
            args=["--data-dir", os.environ["OMNIROUTE_DATA_DIR"], "--mcp", "--log-level", "warn"],
        )
    headers = {"Authorization": f"Bearer {os.environ['OMNIROUTE_KEY']}"}
    return streamable_http_client(
        os.environ["OMNIROUTE_MCP_URL"], http_client=create_mcp_http_client(headers=headers)
    )


async def main(mode, transport):
    async with Client(server(transport), mode=mode) as client:
        print(f"protocol version: {client.protocol_version}")
        if mode == "legacy":
            check(client.protocol_version in ("2025-06-18", "2025-11-25"), "handshake revision negotiated")
        else:
            check(client.protocol_version == "2026-07-28", "2026-07-28 adopted by discovery")

        tools = (await client.list_tools()).tools
        names = {t.name for t in tools}
        check(set(BUILT + ROUTING) <= names, f"all {len(BUILT + ROUTING)} tools listed")
        for t in tools:
            if t.name in BUILT + ROUTING:
                check(t.output_schema is not None, f"{t.name} has an outputSchema")

        health = await client.call_tool("omniroute_get_health", {})
        check(not health.is_error, "health is not an error")
        h = health.structured_content
        check(h["status"] == "ok" and h["store"]["ok"], "health says ok")
        print(f"health: pid={h['pid']} requests={h['overhead']['requests']} providers={[p['id'] for p in h['providers']]}")
        want = os.environ.get("OMNIROUTE_EXPECT_REQUESTS")
        if want:
            check(h["overhead"]["requests"] >= int(want), f"health shows the running gateway's {want} request(s)")

        providers = (await client.call_tool("omniroute_list_providers", {"usable_only": True})).structured_content
        check(len(providers["providers"]) >= 1, "a usable provider is listed")
        check(any(p["account_list"] for p in providers["providers"]), "accounts are listed per provider")
        check("upstream-secret" not in json.dumps(providers), "no upstream key in the provider list")

        models = (await client.call_tool("omniroute_list_models", {})).structured_content
        check(len(models["models"]) >= 1, "models listed")

        model = os.environ.get("OMNIROUTE_MODEL")
        if model:
            answer = await client.call_tool(
                "omniroute_route_request",
                {"model": model, "messages": [{"role": "user", "content": "say hi"}]},
            )
            check(not answer.is_error, f"route_request answered: {answer.content[0].text[:120]}")
            check(answer.structured_content["route"]["provider"] is not None, "route_request names the provider")

        cost = (await client.call_tool("omniroute_cost_report", {"since": "1d"})).structured_content
        check(cost["total_requests"] >= (1 if model else 0), f"cost report counts {cost['total_requests']} request(s)")

        audit = (await client.call_tool("omniroute_get_audit_log", {"limit": 5})).structured_content
        check(isinstance(audit["entries"], list), "audit log listed")

        bad = await client.call_tool("omniroute_cost_report", {"since": "yesterday"})
        check(bad.is_error and "7d" in bad.content[0].text, "a bad argument is an isError result saying what to write")

        if model:
            await combos(client, model, f"mcp-{transport}-{mode}")

        res = await client.read_resource("omniroute://health")
        check(json.loads(res.contents[0].text)["status"] == "ok", "omniroute://health resource reads")
        templates = (await client.list_resource_templates()).resource_templates
        check(any(t.uri_template == "omniroute://combos/{name}" for t in templates), "combo template listed")

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        check({"pick_model", "review_spend"} <= prompts, "prompts listed")
        prompt = await client.get_prompt("pick_model", {"task": "summarise a long log file"})
        text = prompt.messages[0].content.text
        check("summarise a long log file" in text and "/" in text, "pick_model lists models for the task")

        try:
            await client.call_tool("omniroute_no_such_tool", {})
            check(False, "unknown tool is refused")
        except Exception as e:  # the SDK raises the JSON-RPC error
            check("unknown tool" in str(e), f"unknown tool is a JSON-RPC error: {e}")
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
