#!/bin/bash
# Instructions per call of each decoder and encoder in the codec benchmark, counted
# by callgrind: repeatable on a loaded machine, where criterion's times are not.
# Usage: bgp/benches/instructions.sh FILTER   (a criterion filter naming one input,
# e.g. "dense /32 UPDATEs/": the decoders are the same functions for every input)
# Needs valgrind; builds the benchmark first.
set -euo pipefail
cd "$(dirname "$0")/../.."
filter=${1:?usage: instructions.sh FILTER}
bin=$(cargo bench -p bgp --bench codec --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "codec" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp /tmp/codec-callgrind.XXXXXX)
trap 'rm -f "$out" "$out.txt"' EXIT
# Only inside criterion's timing loop: the set-up decodes every input once.
valgrind --tool=callgrind --toggle-collect='criterion::bencher::Bencher*::iter*' \
    --callgrind-out-file="$out" "$bin" --bench "$filter" --profile-time 5 >/dev/null 2>&1
callgrind_annotate --inclusive=yes --tree=caller "$out" >"$out.txt" 2>/dev/null
# Each function's inclusive count divided by the calls its callers made to it.
python3 - "$out.txt" <<'PY'
import re
import sys

lines = open(sys.argv[1]).read().split("\n")
names = ("tabby_decode", "bgpkit_decode", "zettabgp_decode", "dense::{{closure}}",
         "one_per_update::{{closure}}", "ipv6::{{closure}}")
for i, line in enumerate(lines):
    m = re.match(r"\s*([\d,]+) \([^)]*\)\s+\*\s+\S*?codec::(\S+)", line)
    if not m or not m.group(2).endswith(names):
        continue
    calls, j = 0, i - 1
    while j >= 0 and "<" in lines[j]:
        c = re.search(r"\(([\d,]+)x\)", lines[j])
        calls += int(c.group(1).replace(",", "")) if c else 0
        j -= 1
    total = int(m.group(1).replace(",", ""))
    if calls:
        print(f"{m.group(2):<32} {total / calls:>14,.0f} instructions per call ({calls} calls)")
PY
