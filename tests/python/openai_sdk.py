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
# the Responses API (what Codex CLI speaks), through the same router
r = client.responses.create(model="coding", instructions="Be brief.", input="via responses")
assert r.status == "completed", r
assert r.output_text == "echo: via responses", r.output_text
assert r.usage.input_tokens == 11 and r.usage.output_tokens == 7, r.usage
kinds = []
final = None
with client.responses.stream(model="mock/gpt-4o-mini", input="streamed responses") as stream:
    for event in stream:
        kinds.append(event.type)
    final = stream.get_final_response()
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds, kinds
assert final.output_text == "echo: streamed responses[0][1][2][3][4]", final.output_text
assert final.usage is not None and final.usage.output_tokens == 5, final.usage
# a follow-up by previous_response_id: the gateway keeps the conversation
follow = client.responses.create(model="mock/gpt-4o-mini", previous_response_id=r.id, input="and then?")
assert follow.output_text == "echo: and then?", follow.output_text
assert client.responses.retrieve(r.id).output_text == "echo: via responses"
# a function call, as Codex's tools would get it
tools = [{"type": "function", "name": "read_file", "description": "Read a file",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
r = client.responses.create(model="mock/tool-call", input="open main", tools=tools)
calls = [o for o in r.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "read_file", r.output
assert calls[0].arguments == '{"path":"src/main.rs"}', calls[0].arguments
# chat completions against Anthropic- and Gemini-format upstreams
for model in ["claude/claude-fake", "gem/gemini-fake"]:
    r = client.chat.completions.create(model=model, max_tokens=32, messages=[{"role": "user", "content": "native"}])
    assert r.choices[0].message.content == "echo: native", (model, r)
    assert r.usage.completion_tokens == 4, (model, r.usage)
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=model, max_tokens=32, messages=[{"role": "user", "content": "native"}], stream=True) if c.choices)
    assert text == "echo: native[0][1]", (model, text)
print("openai sdk: all checks passed")
sys.exit(0)
