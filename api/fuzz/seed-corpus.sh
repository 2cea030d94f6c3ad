#!/bin/sh
# Seeds both targets: every example resource (as YAML and, stored, as JSON) and the
# selectors the examples and tests use.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode corpus/selector
kinds="ippool ipamblock blockaffinity ipamhandle ipamconfig ipreservation node bgpconfiguration bgppeer bgpfilter workloadendpoint"
n=0
for kind in $kinds; do
    file=../../docs/examples/$kind.yaml
    # The first byte picks the kind; 0x80 says YAML.
    { printf "\\$(printf %o $((n + 128)))"; cat "$file"; } > corpus/decode/$kind-yaml
    python3 -c 'import sys, json, yaml
doc = next(yaml.safe_load_all(open(sys.argv[1])))
sys.stdout.buffer.write(bytes([int(sys.argv[2])]) + json.dumps(doc).encode())' "$file" $n > corpus/decode/$kind-json
    n=$((n + 1))
done
grep -ho "[sS]elector: .*" ../../docs/examples/*.yaml | sed 's/^[^:]*: //; s/^"//; s/"$//' | sort -u |
    while read -r selector; do printf %s "$selector" > "corpus/selector/$(printf %s "$selector" | sha1sum | cut -c1-12)"; done
printf %s 'has(a) && !(b in {"x", "y"}) || c == "d"' > corpus/selector/mixed
