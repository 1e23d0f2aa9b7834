"""Drive omniroute's MCP server with the official MCP Python SDK.

Usage: mcp_sdk.py MODE TRANSPORT
  MODE: legacy (initialize handshake) or auto (probe 2026-07-28, fall back)
  TRANSPORT: stdio (runs OMNIROUTE_BIN --data-dir OMNIROUTE_DATA_DIR --mcp)
             or http (OMNIROUTE_MCP_URL with OMNIROUTE_KEY as a bearer key)
Optional: OMNIROUTE_MODEL (a usable model for omniroute_route_request),
OMNIROUTE_EXPECT_REQUESTS (the health report's overhead.requests must be at least this).
Every non-error tool result is validated by the SDK against the tool's outputSchema.
"""

import asyncio
import json
import os
import sys

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
]
PENDING = [
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
        check(set(BUILT + PENDING) <= names, f"all {len(BUILT + PENDING)} tools listed")
        for t in tools:
            if t.name in BUILT:
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

        for name in PENDING:
            r = await client.call_tool(name, {})
            check(r.is_error and "routing core" in r.content[0].text, f"{name} says it waits on the routing core")

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
