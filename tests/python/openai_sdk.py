"""Drive a running omniroute with the official OpenAI Python SDK.

Env: OMNIROUTE_BASE_URL (…/v1), OMNIROUTE_KEY. Exits non-zero on any failed check.
"""
import os
import sys

import openai
from openai import OpenAI

base = os.environ["OMNIROUTE_BASE_URL"]
key = os.environ["OMNIROUTE_KEY"]
client = OpenAI(base_url=base, api_key=key, max_retries=0)

# non-streaming, with the upstream's usage
raw = client.chat.completions.with_raw_response.create(
    model="mock/gpt-4o-mini",
    messages=[{"role": "user", "content": "hello sdk"}],
)
resp = raw.parse()
assert resp.choices[0].message.content == "echo: hello sdk", resp
assert resp.usage.prompt_tokens == 11 and resp.usage.completion_tokens == 7, resp.usage
assert raw.headers["x-omniroute-provider"] == "mock"
print("overhead-ms", raw.headers["x-omniroute-overhead-ms"], "upstream-ms", raw.headers["x-omniroute-upstream-ms"])

# streaming, chunk by chunk, with usage when asked for
pieces = []
usage = None
stream = client.chat.completions.create(
    model="mock/gpt-4o-mini",
    messages=[{"role": "user", "content": "stream please"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
text = "".join(pieces)
assert text.startswith("echo: stream please"), text
assert len(pieces) == 5, pieces
assert usage is not None and usage.prompt_tokens == 11, usage

# streaming without asking for usage: no usage-only chunk reaches the client
chunks = list(client.chat.completions.create(
    model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))
assert all(c.choices for c in chunks), chunks

# a cut stream surfaces as an API error, not a hang
try:
    for _ in client.chat.completions.create(
            model="mock/cut-stream", messages=[{"role": "user", "content": "x"}], stream=True):
        pass
    raise AssertionError("cut stream did not raise")
except openai.APIError as e:
    assert "interrupted" in str(e) or "ended" in str(e), e

# errors come back as the SDK's typed exceptions
try:
    client.chat.completions.create(model="gpt-4o-mni", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body
try:
    OpenAI(base_url=base, api_key="sk-wrong", max_retries=0).chat.completions.create(
        model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("bad key accepted")
except openai.AuthenticationError:
    pass

models = [m.id for m in client.models.list()]
assert "mock/gpt-4o-mini" in models, models
assert "coding" in models, models

# a combo as the model: the first target is rate limited, the second answers
raw = client.chat.completions.with_raw_response.create(
    model="coding", messages=[{"role": "user", "content": "via combo"}])
assert raw.parse().choices[0].message.content == "echo: via combo"
assert raw.headers["x-omniroute-attempts"] == "2", dict(raw.headers)
assert raw.headers["x-omniroute-combo"] == "coding"
# and streaming through the combo skips the cooling target
text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
    model="coding", messages=[{"role": "user", "content": "s"}], stream=True) if c.choices)
assert text.startswith("echo: s"), text
print("openai sdk: all checks passed")
sys.exit(0)
