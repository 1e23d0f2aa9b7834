"""The agent cards the real binary serves, validated with the `jsonschema`
package against the official A2A schemas vendored in tests/fixtures/a2a
(1.0 at /.well-known/agent-card.json, 0.3 at /.well-known/agent.json and for
`A2A-Version: 0.3`), plus the cache headers. Exits non-zero on any failure."""

import json
import os
import sys

import httpx
import jsonschema
import referencing
import referencing.jsonschema

BASE = os.environ["OMNIROUTE_BASE"]
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "a2a")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def validator(file, definition):
    with open(os.path.join(FIXTURES, file)) as f:
        bundle = json.load(f)
    cls = jsonschema.validators.validator_for(bundle)
    if "AgentCard" in bundle["definitions"]:
        # 0.3: one draft-07 document with local #/definitions refs.
        schema = dict(bundle)
        schema["$ref"] = "#/definitions/" + definition
        return cls(schema)
    # 1.0: definitions named "Agent Card" that refer to each other as
    # "lf.a2a.v1.AgentCard.jsonschema.json" (google.protobuf.* for the well-known
    # types): each is registered under those names.
    resources = []
    for name, schema in bundle["definitions"].items():
        camel = name.replace(" ", "")
        res = referencing.Resource.from_contents(
            schema, default_specification=referencing.jsonschema.DRAFT202012
        )
        for uri in (f"lf.a2a.v1.{camel}.jsonschema.json", f"a2a.v1.{camel}.jsonschema.json",
                    f"google.protobuf.{camel}.jsonschema.json"):
            resources.append((uri, res))
    registry = referencing.Registry().with_resources(resources)
    return jsonschema.Draft202012Validator(bundle["definitions"][definition], registry=registry)


v1 = validator("a2a-1.0.schema.json", "Agent Card")
v03 = validator("a2a-0.3.schema.json", "AgentCard")

for path, headers, v, label in [
    ("/.well-known/agent-card.json", {}, v1, "1.0"),
    ("/.well-known/agent-card.json", {"A2A-Version": "1.0"}, v1, "1.0"),
    ("/.well-known/agent.json", {}, v03, "0.3"),
    ("/.well-known/agent-card.json", {"A2A-Version": "0.3"}, v03, "0.3"),
]:
    r = httpx.get(BASE + path, headers=headers)
    check(r.status_code == 200, f"{path} {headers} answers 200")
    card = r.json()
    errors = sorted(v.iter_errors(card), key=lambda e: list(e.path))
    for e in errors[:5]:
        print("     ", list(e.path), e.message[:200])
    check(not errors, f"{path} {headers}: valid A2A {label} card")
    check("max-age" in r.headers.get("cache-control", ""), f"{path}: Cache-Control max-age")
    etag = r.headers.get("etag", "")
    check(etag.startswith('"'), f"{path}: ETag {etag}")
    again = httpx.get(BASE + path, headers={**headers, "If-None-Match": etag})
    check(again.status_code == 304, f"{path}: If-None-Match gets 304")

one = httpx.get(BASE + "/.well-known/agent-card.json").headers.get("etag")
old = httpx.get(BASE + "/.well-known/agent.json").headers.get("etag")
check(one != old, "the two cards have different ETags")

if failures:
    print(f"{len(failures)} checks failed")
    sys.exit(1)
print("all checks passed")
