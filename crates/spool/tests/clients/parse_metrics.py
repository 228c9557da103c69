"""Reads a Spool server's /metrics with the Prometheus project's own OpenMetrics parser and
prints every sample as JSON: {"families": [...], "samples": [{"name", "labels", "value"}]}.

Usage: parse_metrics.py URL, with the bearer token in SPOOL_TOKEN. A malformed exposition makes
the parser raise, and this script fail."""

import json
import os
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

request = urllib.request.Request(sys.argv[1])
request.add_header("Authorization", f"Bearer {os.environ['SPOOL_TOKEN']}")
with urllib.request.urlopen(request) as response:
    content_type = response.headers["Content-Type"]
    text = response.read().decode()
assert content_type.startswith("application/openmetrics-text"), content_type

families = []
samples = []
for family in text_string_to_metric_families(text):
    families.append({"name": family.name, "type": family.type})
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps({"families": families, "samples": samples}))
