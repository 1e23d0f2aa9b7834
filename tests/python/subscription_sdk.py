"""The official Anthropic and OpenAI Python SDKs against a running omniroute
whose subscription accounts (Claude, Codex, Gemini Code Assist) answer from
the fake subscriber endpoints of tests/support/fake_subscriptions.rs.

Env: OMNIROUTE_BASE (http://host:port), OMNIROUTE_BASE_URL (…/v1), OMNIROUTE_KEY.
Exits non-zero on any failed check.
"""
import os

import anthropic
import openai


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


claude = anthropic.Anthropic(base_url=os.environ["OMNIROUTE_BASE"], api_key=os.environ["OMNIROUTE_KEY"], max_retries=0)
raw = claude.messages.with_raw_response.create(
    model="cc/claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "sdk hello"}]
)
msg = raw.parse()
check(msg.content[0].text == "served by alice", f"Claude subscription answers: {msg.content}")
check(raw.headers["x-omniroute-tier"] == "subscription", "served from tier 1")
check(raw.headers["x-omniroute-translation"] == "anthropic->anthropic", "forwarded as Anthropic Messages")
with claude.messages.stream(
    model="cc/claude-haiku-4-5", max_tokens=32, messages=[{"role": "user", "content": "stream please"}]
) as stream:
    text = "".join(stream.text_stream)
check(text == "served by alice", f"streamed from the subscription: {text!r}")

oai = openai.OpenAI(base_url=os.environ["OMNIROUTE_BASE_URL"], api_key=os.environ["OMNIROUTE_KEY"], max_retries=0)
chat = oai.chat.completions.create(model="cx/gpt-5.5", messages=[{"role": "user", "content": "hi codex"}])
check(chat.choices[0].message.content == "served by bob", f"Codex backend via chat.completions: {chat.choices[0]}")
check(chat.usage.prompt_tokens == 5 and chat.usage.completion_tokens == 3, f"usage carried over: {chat.usage}")
events = list(oai.responses.create(model="cx/gpt-5.5", input="hi again", stream=True))
done = [e for e in events if e.type == "response.completed"]
check(len(done) == 1 and done[0].response.output_text == "served by bob", "Codex backend via responses.create(stream=True)")
parts = []
for chunk in oai.chat.completions.create(model="gc/gemini-2.5-pro", messages=[{"role": "user", "content": "hi gemini"}], stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
check("".join(parts) == "served by carol", f"Gemini Code Assist streamed: {parts}")
print("all checks passed")
