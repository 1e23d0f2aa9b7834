#!/usr/bin/env python3
"""Writes a coding-agent-sized request body, shaped like what Claude Code sends:
a long system prompt, ~20 tools with JSON schemas, and a long history of user
turns, assistant tool calls and tool results (file contents), until the body
reaches SIZE bytes. Deterministic (same size, same bytes).

    bench/agent_body.py 100000 openai  > body-100k-openai.json
    bench/agent_body.py 400000 anthropic > body-400k-anthropic.json
"""
import json, sys

size, fmt = int(sys.argv[1]), sys.argv[2]
words = ("the function returns a result when the input is valid otherwise it raises an error "
         "and the caller retries with a smaller batch so that the queue drains before the deadline").split()

def text(n, seed):
    out, i = [], seed
    while sum(len(w) + 1 for w in out) < n:
        out.append(words[i % len(words)]); i += 7
    return " ".join(out)

def code(n, seed):
    lines, i = [], seed
    while sum(len(l) + 1 for l in lines) < n:
        lines.append(f"    fn step_{i}(&mut self, input: &[u8]) -> Result<usize, Error> {{ self.pos += input.len(); Ok(self.pos) }}")
        i += 1
    return "\n".join(lines)

system = "You are an interactive CLI coding agent. " + text(12000, 1)
tools = []
for t in range(20):
    tools.append({
        "name": f"tool_{t}",
        "description": text(400, t),
        "schema": {"type": "object", "properties": {
            "path": {"type": "string", "description": "Absolute path of the file"},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "pattern": {"type": "string"}}, "required": ["path"]},
    })

def build(turns):
    if fmt == "openai":
        msgs = [{"role": "system", "content": system}]
        for i in range(turns):
            msgs.append({"role": "user", "content": text(300, i)})
            msgs.append({"role": "assistant", "content": None, "tool_calls": [{"id": f"call_{i}", "type": "function",
                         "function": {"name": f"tool_{i % 20}", "arguments": json.dumps({"path": f"/repo/src/m{i}.rs"})}}]})
            msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": code(3000, i)})
        msgs.append({"role": "user", "content": "Now fix the failing test."})
        return {"model": "x", "max_tokens": 4096, "messages": msgs,
                "tools": [{"type": "function", "function": {"name": t["name"], "description": t["description"], "parameters": t["schema"]}} for t in tools]}
    msgs = []
    for i in range(turns):
        msgs.append({"role": "user", "content": [{"type": "text", "text": text(300, i)}] if i == 0 else
                     [{"type": "tool_result", "tool_use_id": f"toolu_{i-1}", "content": code(3000, i)}, {"type": "text", "text": text(300, i)}]})
        msgs.append({"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{i}", "name": f"tool_{i % 20}", "input": {"path": f"/repo/src/m{i}.rs"}}]})
    msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{turns-1}", "content": "ok"},
                                             {"type": "text", "text": "Now fix the failing test.", "cache_control": {"type": "ephemeral"}}]})
    return {"model": "x", "max_tokens": 4096, "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "messages": msgs, "tools": [{"name": t["name"], "description": t["description"], "input_schema": t["schema"]} for t in tools]}

turns = 1
while len(json.dumps(build(turns))) < size:
    turns += 1
sys.stdout.write(json.dumps(build(turns)))
