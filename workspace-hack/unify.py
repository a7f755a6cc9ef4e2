#!/usr/bin/env python3
"""Finds the third-party crates whose feature set depends on which umbra package is built.

Cargo resolves features per selection: `cargo build -p umbra-relay`, `-p umbra-cli`
and `cargo test --workspace` each enable a different set of features on shared
crates (serde_core, syn, regex, tungstenite, ...), so each rebuilds those crates and
everything above them. umbra-workspace-hack depends on those crates with the union
of their features, so every selection compiles them once, identically.

    python3 workspace-hack/unify.py --check  # exit 1 if a selection still differs
    python3 workspace-hack/unify.py --write  # add what differs to workspace-hack/Cargo.toml

Run --write until --check passes (each pass can reveal crates the last one pulled in).

Run it after changing dependencies or their features. Needs only cargo (tree, metadata).
"""
import collections, json, os, re, subprocess, sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OURS = {"umbra-wire", "umbra-protocol", "umbra-client-core", "umbra-relay", "umbra-cli",
        "umbra-e2e", "umbra-test-support", "umbra-workspace-hack", "umbra-loadgen"}
# Left to each selection on purpose: sqlx's database backends are chosen per crate
# (the relay: SQLite and PostgreSQL; client-core: SQLite), so that the `umbra` client
# never builds sqlx-postgres. Unifying them here would put PostgreSQL back into every
# build; the price is that sqlx and the crates above it compile once per selection.
PER_SELECTION = {"sqlx", "sqlx-core", "sqlx-macros", "sqlx-macros-core", "sqlx-postgres",
                 "sqlx-sqlite"}
# What a newcomer and CI build: the two binaries, the e2e harness (it builds the
# binaries with `cargo build -p`), the workspace test run, and one crate's tests.
SELECTIONS = {
    "build relay": (["-p", "umbra-relay"], "normal,build"),
    "build cli": (["-p", "umbra-cli"], "normal,build"),
    "build e2e": (["-p", "umbra-e2e"], "normal,build"),
    "test workspace": (["--workspace"], "normal,build,dev"),
    **{f"test {p}": (["-p", p], "normal,build,dev")
       for p in ["umbra-wire", "umbra-protocol", "umbra-client-core", "umbra-relay", "umbra-cli",
                 "umbra-e2e"]},
}


def cargo(*args):
    return subprocess.check_output(["cargo", *args], stderr=subprocess.DEVNULL, text=True)


def units(sel, edges):
    """{(package, "host"|"target"): {feature sets seen}} for one selection."""
    out = cargo("tree", *sel, "-e", edges, "--prefix", "indent", "-f", "{p} [{f}]", "--no-dedupe")
    res, stack, build_section = collections.defaultdict(set), [], {}
    for line in out.splitlines():
        body = line.lstrip("│├└─ \u00a0")
        depth = (len(line) - len(body)) // 4
        if body.startswith("["):  # "[build-dependencies]": the children below are host-side
            build_section[depth + 1] = body.startswith("[build-dependencies]")
            continue
        m = re.match(r"(\S+ v\S+)(?: \([^)]*\))*? ?(\(proc-macro\))? ?\[(.*)\]", body)
        if not m:
            continue
        pkg, proc_macro, feats = m[1], bool(m[2]), m[3]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        for d in [d for d in build_section if d > depth]:
            del build_section[d]
        host = proc_macro or build_section.get(depth, False) or bool(stack and stack[-1][2])
        res[(pkg, "host" if host else "target")].add(frozenset(f for f in feats.split(",") if f))
        stack.append((depth, pkg, host))
    return res


def differing():
    per_sel = {name: units(sel, edges) for name, (sel, edges) in SELECTIONS.items()}
    out = {}
    for key in sorted(set().union(*per_sel.values())):
        if key[0].split(" v")[0] in OURS | PER_SELECTION:
            continue
        # Cargo gives a crate one feature set per side in a build; a second set seen
        # on one side is a host-side copy the tree walk could not tell apart.
        per = {n: frozenset().union(*r[key]) for n, r in per_sel.items() if key in r}
        union = frozenset().union(*per.values())
        if any(f != union for f in per.values()):
            out[key] = (sorted(union), {n for n, f in per.items() if f != union})
    return out


diff = differing()
if "--check" in sys.argv:
    for (pkg, side), (feats, sels) in diff.items():
        print(f"{pkg} ({side}): features differ in: {', '.join(sorted(sels))}")
    print(f"{len(diff)} crates compiled with selection-dependent features")
    sys.exit(1 if diff else 0)

meta = json.loads(cargo("metadata", "--format-version", "1"))
versions = collections.defaultdict(set)
for p in (f'{p["name"]} v{p["version"]}' for p in meta["packages"]):
    name, v = p.split(" v")
    versions[name].add(v)
tables = {"target": [], "host": []}
for (pkg, side), (feats, _) in diff.items():
    name, v = pkg.split(" v")
    major = "_".join(v.split(".")[:2])
    key = name if len(versions[name]) == 1 else f"{name}-{major}"
    rename = "" if key == name else f'package = "{name}", '
    flist = ", ".join(f'"{f}"' for f in feats)
    tables[side].append(f'{key} = {{ {rename}version = "{v}", default-features = false, features = [{flist}] }}')
manifest = "workspace-hack/Cargo.toml"
text = open(manifest).read()
head, _, old = text.partition("[dependencies]\n")
section, entries = "target", {"target": {}, "host": {}}
for line in old.splitlines():
    if line.startswith("[build-dependencies]"):
        section = "host"
    elif " = {" in line:
        entries[section][line.split(" = ")[0]] = line
for side, lines in tables.items():
    for line in lines:  # a new entry is a superset of the old one: the old one is in the tree it was computed from
        entries[side][line.split(" = ")[0]] = line
body = "[dependencies]\n" + "\n".join(entries["target"][k] for k in sorted(entries["target"]))
if entries["host"]:
    body += "\n\n[build-dependencies]\n" + "\n".join(entries["host"][k] for k in sorted(entries["host"]))
if "--write" in sys.argv:
    open(manifest, "w").write(head + body + "\n")
else:
    print(body)
