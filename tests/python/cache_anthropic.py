"""The answer cache through the official Anthropic Python SDK (as Claude Code
calls the gateway), against the real binary in front of the fake upstream:
whole answers and streams replayed with Anthropic's own events. (This SDK
version's `create` takes no `temperature` argument; it goes in `extra_body`.)

Env: OMNIROUTE_BASE (http://host:port), OMNIROUTE_KEY, OMNIROUTE_KEY_B,
OMNIROUTE_UPSTREAM (the fake upstream, for its call counts).
"""
import json
import os
import time
import urllib.request

import anthropic

base = os.environ["OMNIROUTE_BASE"]
client = anthropic.Anthropic(base_url=base, api_key=os.environ["OMNIROUTE_KEY"], max_retries=0)
client_b = anthropic.Anthropic(base_url=base, api_key=os.environ["OMNIROUTE_KEY_B"], max_retries=0)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def calls(model):
    with urllib.request.urlopen(os.environ["OMNIROUTE_UPSTREAM"] + "/_calls") as r:
        return json.load(r).get(model, 0)


def ask(c, text, **kw):
    return c.messages.with_raw_response.create(
        model="mock/gpt-4o-mini", max_tokens=64, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": text}], **kw)


first = ask(client, "hello from claude")
check(first.headers["x-omniroute-cache"] == "miss", "first message is a miss")
n = calls("gpt-4o-mini")
second = ask(client, "hello from claude")
check(second.headers["x-omniroute-cache"] == "hit", "the same message is a hit")
m1, m2 = first.parse(), second.parse()
check(m2.content[0].text == "echo: hello from claude" and m2.model_dump() == m1.model_dump(), "the same Message")
check(calls("gpt-4o-mini") == n, "no upstream call for the hit")


def stream_once():
    kinds = []
    with client.messages.stream(model="mock/gpt-4o-mini", max_tokens=64, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "stream from claude"}]) as s:
        for event in s:
            kinds.append(event.type)
        final = s.get_final_message()
        status = s.response.headers["x-omniroute-cache"]
    return status, kinds, final


status, kinds, final = stream_once()
check(status == "miss", "first stream is a miss")
check(kinds[0] == "message_start" and kinds[-1] == "message_stop", f"Anthropic stream events: {kinds}")
n = calls("gpt-4o-mini")
early = 0
for _ in range(50):
    status2, kinds2, final2 = stream_once()
    if status2 == "hit":
        break
    early += 1
    time.sleep(0.02)
check(status2 == "hit", "the repeated stream is a hit")
check(kinds2 == kinds, f"replayed as the same Anthropic events: {kinds2}")
check(final2.model_dump() == final.model_dump(), "the same final message, usage included")
check(calls("gpt-4o-mini") == n + early, "no upstream call for the replay")

n = calls("gpt-4o-mini")
check(ask(client, "secret plans", extra_headers={"Cache-Control": "no-store"}).headers["x-omniroute-cache"] == "bypass",
      "no-store bypasses the cache")
check(ask(client, "secret plans").headers["x-omniroute-cache"] == "miss", "and nothing was kept")
check(ask(client_b, "hello from claude").headers["x-omniroute-cache"] == "miss", "key B does not see key A's answer")
check(calls("gpt-4o-mini") == n + 3, "all three went upstream")
print("all checks passed")
