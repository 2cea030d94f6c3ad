#!/usr/bin/env python3
"""Seeds the fuzz corpus with every message of the captured fixtures, each behind
two context bytes: 0x07 (4-octet AS, extended messages and next hops) and 0x7f (the
same with ADD-PATH in both directions). Usage: seed-corpus.py (from anywhere)."""
import hashlib
import pathlib

here = pathlib.Path(__file__).resolve().parent
corpus = here / "corpus" / "decode"
corpus.mkdir(parents=True, exist_ok=True)
messages = set()
for fixture in (here.parent / "tests" / "fixtures").glob("*.hex"):
    for line in fixture.read_text().splitlines():
        if line and not line.startswith("#"):
            messages.add(bytes.fromhex(line.split(" ", 1)[1]))
for message in messages:
    for ctx in (0x07, 0x7F):
        seed = bytes([ctx]) + message
        (corpus / hashlib.sha1(seed).hexdigest()[:16]).write_bytes(seed)
print(f"{len(messages) * 2} seeds in {corpus}")
