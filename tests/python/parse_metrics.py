"""Parse a Prometheus text exposition (stdin) with the official client's
parser and print every sample as a JSON line: family, type, name, labels,
value. A malformed exposition raises, so the calling test fails."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

count = 0
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name,
                          "labels": s.labels, "value": s.value}))
        count += 1
print(f"{count} samples", file=sys.stderr)
