#!/usr/bin/env python3
"""Writes the captured FRR and BIRD packets of bfd/src/packet/tests.rs (the hex
constants) into corpus/decode/ as the fuzzer's seeds."""
import pathlib
import re

here = pathlib.Path(__file__).resolve().parent
tests = (here.parent / "src" / "packet" / "tests.rs").read_text()
corpus = here / "corpus" / "decode"
corpus.mkdir(parents=True, exist_ok=True)
for name, body in re.findall(r'const (\w+): &str =\s*((?:"[^"]*"\s*)+);', tests):
    digits = "".join(re.findall(r'"([^"]*)"', body)).replace("\\", "")
    data = bytes.fromhex("".join(digits.split()))
    (corpus / name.lower()).write_bytes(data)
    print(f"{name}: {len(data)} bytes")
