"""Drive a running omniroute with the official Anthropic Python SDK, as Claude
Code would (ANTHROPIC_BASE_URL = the gateway, no /v1), against an
OpenAI-format upstream.

Env: OMNIROUTE_BASE (http://host:port), OMNIROUTE_KEY. Exits non-zero on any failed check.
"""
import os

import anthropic

client = anthropic.Anthropic(base_url=os.environ["OMNIROUTE_BASE"], api_key=os.environ["OMNIROUTE_KEY"], max_retries=0)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


# A Claude Code model name, mapped to the `coding` combo (first target fails, fallback answers).
raw = client.messages.with_raw_response.create(
    model="claude-sonnet-4-5-20250929",
    max_tokens=64,
    system="You are a careful coding assistant.",
    messages=[{"role": "user", "content": "hello sdk"}],
)
msg = raw.parse()
check(msg.content[0].type == "text" and msg.content[0].text == "echo: hello sdk", f"text answer: {msg.content}")
check(msg.model == "claude-sonnet-4-5-20250929", "the client's model name comes back")
check(msg.stop_reason == "end_turn", f"stop_reason {msg.stop_reason}")
check(msg.usage.input_tokens == 8 and msg.usage.cache_read_input_tokens == 3 and msg.usage.output_tokens == 7, f"usage {msg.usage}")
check(raw.headers["x-omniroute-combo"] == "coding", "routed through the combo")
check(raw.headers["x-omniroute-translation"] == "anthropic->openai", "translation header")

# Streaming with a tool call (claude-haiku-* is mapped to the fake's tool-calling model).
tools = [{
    "name": "read_file",
    "description": "Read a file from the repository",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}]
seen = []
with client.messages.stream(
    model="claude-haiku-4-5",
    max_tokens=128,
    tools=tools,
    messages=[{"role": "user", "content": "open the main file"}],
) as stream:
    for event in stream:
        seen.append(event.type)
    final = stream.get_final_message()
check(seen[0] == "message_start", f"stream starts with message_start: {seen[:3]}")
check("input_json" in seen or "content_block_delta" in seen, "tool input streamed as deltas")
tool = [b for b in final.content if b.type == "tool_use"]
check(len(tool) == 1 and tool[0].name == "read_file", f"one tool_use block: {final.content}")
check(tool[0].input == {"path": "src/main.rs"}, f"tool input assembled from deltas: {tool[0].input}")
check(final.stop_reason == "tool_use", f"stop_reason {final.stop_reason}")
check(final.usage.output_tokens == 9, f"usage in message_delta: {final.usage}")

# The tool result goes back in the next turn and is answered.
follow = client.messages.create(
    model="claude-sonnet-4-5",
    max_tokens=64,
    tools=tools,
    messages=[
        {"role": "user", "content": "open the main file"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tool[0].id, "name": "read_file", "input": tool[0].input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool[0].id, "content": "fn main() {}"},
                                     {"type": "text", "text": "now explain it"}]},
    ],
)
check(follow.content[0].text.startswith("echo:"), f"tool_result turn answered: {follow.content}")

# Token counting and errors in Anthropic's shape.
count = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "count me please"}])
check(count.input_tokens > 0, f"count_tokens {count.input_tokens}")
try:
    client.messages.create(model="nope/none", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    check(False, "unknown model refused")
except anthropic.NotFoundError as e:
    check(e.body["error"]["type"] == "not_found_error", f"404 not_found_error: {e.body}")
bad = anthropic.Anthropic(base_url=os.environ["OMNIROUTE_BASE"], api_key="sk-wrong", max_retries=0)
try:
    bad.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    check(False, "a wrong key is refused")
except anthropic.AuthenticationError as e:
    check(e.status_code == 401, "401 authentication_error")
print("all checks passed")
