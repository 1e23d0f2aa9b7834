"""The answer cache, coalescing and idempotency through the official OpenAI
Python SDK, against the real binary in front of the fake upstream.

Env: OMNIROUTE_BASE_URL (…/v1), OMNIROUTE_KEY, OMNIROUTE_KEY_B (another
client key), OMNIROUTE_UPSTREAM (the fake upstream, for its call counts),
OMNIROUTE_PHASE: "main", "restart" (after the gateway restarted on the same
data dir) or "idempotency". Exits non-zero on any failed check.
"""
import json
import os
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
from openai import OpenAI

base = os.environ["OMNIROUTE_BASE_URL"]
client = OpenAI(base_url=base, api_key=os.environ["OMNIROUTE_KEY"], max_retries=0)
client_b = OpenAI(base_url=base, api_key=os.environ["OMNIROUTE_KEY_B"], max_retries=0)
phase = os.environ.get("OMNIROUTE_PHASE", "main")


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def calls(model):
    with urllib.request.urlopen(os.environ["OMNIROUTE_UPSTREAM"] + "/_calls") as r:
        return json.load(r).get(model, 0)


def ask(c, text, **kw):
    return c.chat.completions.with_raw_response.create(
        model="mock/gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": text}], **kw)


if phase == "restart":
    before = calls("gpt-4o-mini")
    raw = ask(client, "kept across restarts")
    check(raw.headers["x-omniroute-cache"] == "hit", "an entry made before the restart is a hit after it")
    check(raw.parse().choices[0].message.content == "echo: kept across restarts", "with the stored answer")
    check(calls("gpt-4o-mini") == before, "and no upstream call")
    print("all checks passed")
    raise SystemExit(0)

if phase == "idempotency":
    key = f"retry-{uuid.uuid4()}"
    body = dict(model="mock/slow", messages=[{"role": "user", "content": "charge me once"}])
    try:
        client.with_options(timeout=0.1).chat.completions.create(**body, extra_headers={"Idempotency-Key": key})
        check(False, "the first attempt times out on the client")
    except openai.APITimeoutError:
        print("ok: the first attempt timed out on the client")
    raw = client.chat.completions.with_raw_response.create(**body, extra_headers={"Idempotency-Key": key})
    check(raw.headers.get("idempotent-replayed") == "true", "the retry gets the first request's answer")
    check(raw.parse().choices[0].message.content == "echo: charge me once", "the answer")
    check(calls("slow") == 1, "one upstream call for the request and its retry")
    try:
        client.chat.completions.create(model="mock/slow", messages=[{"role": "user", "content": "something else"}],
                                       extra_headers={"Idempotency-Key": key})
        check(False, "another body under the same key is refused")
    except openai.UnprocessableEntityError as e:
        check(e.status_code == 422 and e.body["code"] == "idempotency_key_reused", f"422 idempotency_key_reused: {e.body}")
    print("all checks passed")
    raise SystemExit(0)

# Hit after miss: the upstream call count does not move.
first = ask(client, "kept across restarts")
check(first.headers["x-omniroute-cache"] == "miss", "first request is a miss")
n = calls("gpt-4o-mini")
second = ask(client, "kept across restarts")
check(second.headers["x-omniroute-cache"] == "hit", "the same deterministic request is a hit")
check(second.headers["x-omniroute-cache-kind"] == "exact", "an exact hit")
check(second.parse().model_dump() == first.parse().model_dump(), "the same completion")
check(calls("gpt-4o-mini") == n, "no upstream call for the hit")

# A streamed answer replayed as the same chunks.
def stream_once():
    raw = client.chat.completions.with_raw_response.create(
        model="mock/gpt-4o-mini", temperature=0, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream it"}])
    chunks = [c.model_dump() for c in raw.parse()]
    return raw.headers["x-omniroute-cache"], chunks

status, original = stream_once()
check(status == "miss", "first stream is a miss")
check(original[-1]["usage"] is not None and original[-1]["choices"] == [], "it ends with the usage chunk asked for")
# The entry lands once the stream's usage row is written (a moment after its end).
n = calls("gpt-4o-mini")
early = 0
for _ in range(50):
    status, replay = stream_once()
    if status == "hit":
        break
    early += 1
    time.sleep(0.02)
check(status == "hit", "the repeated stream is a hit")
check(all(c["object"] == "chat.completion.chunk" for c in replay), "replayed as chat.completion.chunk events")
check(replay == original, f"the same {len(original)} chunks in order")
check(calls("gpt-4o-mini") == n + early, "no upstream call for the replay")

# Cache-Control: no-store is honoured: not answered from, not kept.
n = calls("gpt-4o-mini")
raw = ask(client, "do not keep this", extra_headers={"Cache-Control": "no-store"})
check(raw.headers["x-omniroute-cache"] == "bypass", "no-store bypasses the cache")
raw = ask(client, "do not keep this")
check(raw.headers["x-omniroute-cache"] == "miss", "nothing was kept from the no-store request")
check(calls("gpt-4o-mini") == n + 2, "both went upstream")

# Key A's entry is invisible to key B.
n = calls("gpt-4o-mini")
raw = ask(client_b, "kept across restarts")
check(raw.headers["x-omniroute-cache"] == "miss", "key B does not see key A's answer")
check(calls("gpt-4o-mini") == n + 1, "key B's request went upstream")

# 20 identical requests at once: one upstream call.
def one(_):
    r = client.chat.completions.with_raw_response.create(
        model="mock/slow", temperature=0, messages=[{"role": "user", "content": "twenty at once"}])
    return r.headers["x-omniroute-cache"], r.parse().choices[0].message.content

with ThreadPoolExecutor(20) as pool:
    results = list(pool.map(one, range(20)))
check(calls("slow") == 1, f"20 concurrent identical requests made {calls('slow')} upstream call(s)")
check(sorted(s for s, _ in results).count("miss") == 1, "one miss, the others hits")
check(all(t == "echo: twenty at once" for _, t in results), "every client got the answer")

# Semantic cache on the `faq` combo: a paraphrase hits, another question misses.
def faq(text):
    return client.chat.completions.with_raw_response.create(
        model="faq", messages=[{"role": "system", "content": "One word."}, {"role": "user", "content": text}])

check(faq("What is the capital of France?").headers["x-omniroute-cache"] == "miss", "semantic: first question misses")
para = faq("Tell me the capital city of France, please")
check(para.headers["x-omniroute-cache"] == "hit" and para.headers["x-omniroute-cache-kind"] == "semantic",
      "a paraphrase is a semantic hit")
check(float(para.headers["x-omniroute-cache-similarity"]) >= 0.9, "with its similarity in a header")
check(para.parse().choices[0].message.content == "echo: What is the capital of France?", "the cached answer")
check(faq("What is the capital of Spain?").headers["x-omniroute-cache"] == "miss", "below the threshold: a miss")

# Embeddings through the router (the SDK asks for base64 and decodes it).
emb = client.embeddings.create(model="embed", input=["hello world"])
check(len(emb.data) == 1 and len(emb.data[0].embedding) == 64, "embeddings passthrough")
check(emb.usage.prompt_tokens == 2, f"with usage: {emb.usage}")
print("all checks passed")
