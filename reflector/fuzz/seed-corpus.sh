#!/bin/sh
# Seeds config with the reflector configuration the manifests ship and the example
# in the config module's documentation.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/config
python3 - <<'PY'
import yaml
for document in yaml.safe_load_all(open("../../manifests/reflector/config.yaml")):
    if document and document.get("kind") == "ConfigMap":
        for key, text in document["data"].items():
            open(f"corpus/config/manifest-{key}", "w").write(text)
lines = [l[4:] for l in open("../src/config/mod.rs") if l.startswith("//! ")]
start = lines.index("```yaml\n") + 1
open("corpus/config/documented", "w").write("".join(lines[start:lines.index("```\n", start)]))
PY
