"""Official SDKs against a running omniroute whose upstreams speak their
clients' own formats, and others: the Anthropic SDK (as Claude Code) in front
of an Anthropic-format upstream (forwarded byte for byte: signed thinking and
a streamed tool call come back intact) and of a Gemini-format one
(translated); the OpenAI SDK's responses.create in front of a
Responses-format upstream (forwarded) with previous_response_id continuing on
an Anthropic upstream.

Env: OMNIROUTE_BASE (http://host:port), OMNIROUTE_KEY. Exits non-zero on any failed check.
"""
import os

import anthropic
from openai import OpenAI

base = os.environ["OMNIROUTE_BASE"]
key = os.environ["OMNIROUTE_KEY"]
claude = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
oai = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


tools = [{
    "name": "read_file",
    "description": "Read a file from the repository",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}]

# Claude Code's model name, mapped to an Anthropic-format upstream: streamed tool call.
with claude.messages.stream(
    model="claude-sonnet-4-5",
    max_tokens=1024,
    tools=tools,
    messages=[{"role": "user", "content": "open the main file"}],
    extra_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
) as stream:
    kinds = [event.type for event in stream]
    final = stream.get_final_message()
    headers = stream.response.headers
check(headers["x-omniroute-translation"] == "anthropic->anthropic", f"forwarded: {headers.get('x-omniroute-translation')}")
check(kinds[0] == "message_start", f"starts with message_start: {kinds[:3]}")
tool = [b for b in final.content if b.type == "tool_use"]
check(len(tool) == 1 and tool[0].id == "toolu_fake_1", f"the upstream's tool_use id: {final.content}")
check(tool[0].input == {"path": "src/main.rs"}, f"tool input assembled from deltas: {tool[0].input}")
check(final.stop_reason == "tool_use", f"stop_reason {final.stop_reason}")
check(final.usage.input_tokens == 9 and final.usage.cache_read_input_tokens == 2, f"usage as the upstream said: {final.usage}")

# Signed thinking survives the trip, so it can be sent back next turn.
with claude.messages.stream(
    model="claude/thinking",
    max_tokens=2048,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=[{"role": "user", "content": "think first"}],
) as stream:
    final = stream.get_final_message()
thinking = [b for b in final.content if b.type == "thinking"]
check(len(thinking) == 1 and thinking[0].signature == "sig-anthropic-1", f"signed thinking: {final.content}")
follow = claude.messages.create(
    model="claude/thinking",
    max_tokens=2048,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=[
        {"role": "user", "content": "think first"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "and again"},
    ],
)
check(any(b.type == "text" and b.text == "echo: and again" for b in follow.content), f"next turn: {follow.content}")

# The same client in front of a Gemini-format upstream: translated, tool call included.
with claude.messages.stream(
    model="gem/tool-call",
    max_tokens=1024,
    tools=tools,
    messages=[{"role": "user", "content": "open the main file"}],
) as stream:
    final = stream.get_final_message()
    headers = stream.response.headers
check(headers["x-omniroute-translation"] == "anthropic->gemini", "translated for Gemini")
tool = [b for b in final.content if b.type == "tool_use"]
check(len(tool) == 1 and tool[0].name == "read_file" and tool[0].input == {"path": "src/main.rs"}, f"tool_use from a functionCall: {final.content}")
check(final.stop_reason == "tool_use", f"stop_reason {final.stop_reason}")

# Codex's API against a Responses-format upstream: forwarded, under the gateway's ids.
first = oai.responses.create(model="resp/echo", input="My name is Ada.")
check(first.output_text == "echo: My name is Ada.", f"text: {first.output_text}")
check(first.id != "resp_upstream_fixed", f"the gateway's id: {first.id}")
events = []
with oai.responses.stream(model="claude/echo", input="What is my name?", previous_response_id=first.id) as stream:
    for event in stream:
        events.append(event.type)
    second = stream.get_final_response()
check(events[0] == "response.created" and events[-1] == "response.completed", f"event sequence: {events}")
check("response.output_item.done" in events, "output_item.done")
check(second.usage is not None and second.usage.output_tokens > 0, f"usage in response.completed: {second.usage}")
check(second.output_text.startswith("echo: What is my name?"), f"continued on an Anthropic upstream: {second.output_text}")
third = oai.responses.create(model="resp/tool-call", input="open main", previous_response_id=second.id,
                             tools=[{"type": "function", "name": "read_file", "parameters": tools[0]["input_schema"]}])
calls = [o for o in third.output if o.type == "function_call"]
check(len(calls) == 1 and calls[0].arguments == '{"path":"src/main.rs"}', f"function call: {third.output}")
check(oai.responses.retrieve(third.id).id == third.id, "retrieve by id")
print("all checks passed")
