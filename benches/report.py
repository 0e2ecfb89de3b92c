#!/usr/bin/env python3
"""Prints the ratio table of one benchmark run, in Markdown.

Reads criterion's medians (target/criterion/**/new/{benchmark,estimates}.json),
the open-store figures (target/bench-results/open.json) and the host scripts'
results (target/bench-results/host-*.json), all written by scripts/bench.sh.
Every ratio compares figures of the same run. Writes the table to
target/bench-results/table.md as well as stdout.

usage: benches/report.py [target dir]
"""

import glob
import json
import os
import platform
import subprocess
import sys

target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target")
results_dir = os.path.join(target, "bench-results")


def load_criterion():
    """full_id -> median ns per iteration."""
    medians = {}
    pattern = os.path.join(target, "criterion", "**", "new", "benchmark.json")
    for bench_file in glob.glob(pattern, recursive=True):
        new_dir = os.path.dirname(bench_file)
        with open(bench_file) as f:
            bench = json.load(f)
        with open(os.path.join(new_dir, "estimates.json")) as f:
            estimates = json.load(f)
        medians[bench["full_id"]] = estimates["median"]["point_estimate"]
    return medians


def load_json(name):
    path = os.path.join(results_dir, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt_ns(ns):
    if ns is None:
        return "—"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


crit = load_criterion()
open_figures = load_json("open.json")
hosts = {h: load_json(f"host-{h}.json") for h in ("php", "ruby", "python")}
paired = load_json("paired.json")
latency = load_json("write_latency.json")


def c(full_id):
    return crit.get(full_id)


lines = []
out = lines.append


def machine():
    model, cores = platform.processor() or "?", os.cpu_count()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {cores} cores, {platform.system()} {platform.release()}"


out(f"Machine: {machine()}")
out("")

# ---- Targets -------------------------------------------------------------
rows = []


def target_row(what, goal, measured, met):
    status = "—" if met is None else ("met" if met else "**missed**")
    rows.append((what, goal, measured, status))


ex1m = c("verify_1M/apikeys_exclusive_valid")
floor1m = c("verify_1M/floor_valid")
sq1m = c("verify_1M/sqlite_sanctum_valid")
r = ratio(ex1m, floor1m)
target_row("verify valid, 1M, exclusive vs floor", "≤ 1.30x",
           f"{fmt_ratio(r)} ({fmt_ns(ex1m)} vs {fmt_ns(floor1m)})", None if r is None else r <= 1.3)
r = ratio(sq1m, ex1m)
target_row("verify valid, 1M, exclusive vs SQLite Sanctum-style", "≥ 20x faster",
           f"{fmt_ratio(r)} faster ({fmt_ns(sq1m)})", None if r is None else r >= 20)
if paired:
    r = paired["exclusive_over_floor_median"]
    target_row("  same, paired rounds (median of per-round ratios)", "≤ 1.30x",
               f"{r:.2f}x ({fmt_ns(paired['exclusive_ns_median'])} vs "
               f"{fmt_ns(paired['floor_ns_median'])})", r <= 1.3)
    r = paired["sqlite_over_exclusive_median"]
    target_row("  same vs SQLite, paired rounds", "≥ 20x faster",
               f"{r:.2f}x faster ({fmt_ns(paired['sqlite_ns_median'])})", r >= 20)
for n in ("100k", "1M"):
    sh, raw = c(f"verify_{n}/apikeys_shared_valid"), c(f"verify_{n}/raw_redb_multiwriter_valid")
    r = ratio(sh, raw)
    target_row(f"verify valid, {n}, shared vs raw redb (same multi-process mode)", "≤ 1.20x",
               f"{fmt_ratio(r)} ({fmt_ns(sh)} vs {fmt_ns(raw)})", None if r is None else r <= 1.2)
if paired and "shared_over_raw_redb_median" in paired:
    r = paired["shared_over_raw_redb_median"]
    target_row(f"  same, paired rounds ({paired['tracking_keys']:,} keys)", "≤ 1.20x",
               f"{r:.2f}x ({fmt_ns(paired['shared_ns_median'])} vs "
               f"{fmt_ns(paired['raw_redb_multiwriter_ns_median'])})", r <= 1.2)
if paired and "shared_over_raw_redb_big_median" in paired:
    r = paired["shared_over_raw_redb_big_median"]
    target_row(f"  same, paired rounds ({paired['keys']:,} keys)", "≤ 1.20x", f"{r:.2f}x", r <= 1.2)
if paired and "shared_over_exclusive_big_median" in paired:
    r = paired["shared_over_exclusive_big_median"]
    target_row(f"verify valid, shared (shared index) vs exclusive, paired rounds ({paired['keys']:,} keys)",
               "≤ 1.50x", f"{r:.2f}x ({fmt_ns(paired['shared_big_ns_median'])} vs "
               f"{fmt_ns(paired['exclusive_big_ns_median'])})", r <= 1.5)
worst = None
for mode in ("exclusive", "shared"):
    for kind in ("malformed", "bad_checksum"):
        for n in ("100k", "1M"):
            v = c(f"verify_{n}/apikeys_{mode}_{kind}")
            if v is not None and (worst is None or v > worst[0]):
                worst = (v, f"{mode} {kind} {n}")
target_row("malformed or bad-checksum key (worst case)", "≤ 60 ns",
           "—" if worst is None else f"{fmt_ns(worst[0])} ({worst[1]})",
           None if worst is None else worst[0] <= 60)
for mode in ("exclusive", "shared"):
    on, off = c(f"verify_1M/apikeys_{mode}_valid"), c(f"verify_1M/apikeys_{mode}_untracked_valid")
    r = ratio(on, off)
    target_row(f"usage tracking on vs off, 1M, {mode}", "≤ +10%",
               "—" if r is None else f"{(r - 1) * 100:+.1f}% ({fmt_ns(on)} vs {fmt_ns(off)})",
               None if r is None else r <= 1.10)
if paired:
    r = paired["tracking_on_over_off_median"]
    target_row(f"  usage tracking on vs off, exclusive, paired rounds ({paired['tracking_keys']:,} keys)",
               "≤ +10%", f"{(r - 1) * 100:+.1f}%", r <= 1.10)
    if "shared_tracking_on_over_off_median" in paired:
        r = paired["shared_tracking_on_over_off_median"]
        target_row(f"  usage tracking on vs off, shared, paired rounds ({paired['tracking_keys']:,} keys)",
                   "≤ +10%", f"{(r - 1) * 100:+.1f}%", r <= 1.10)
commit = c("writes/redb_durable_commit")
sized = c("writes/redb_durable_commit_store_sized")
for op in ("generate", "revoke"):
    v = c(f"writes/apikeys_{op}")
    r = ratio(v, commit)
    target_row(f"{op} vs one durable redb commit", "≤ 1.30x",
               f"{fmt_ratio(r)} ({fmt_ns(v)} vs {fmt_ns(commit)})", None if r is None else r <= 1.3)
    r = ratio(v, sized)
    target_row(f"  {op} vs one durable commit into a store-sized table", "≤ 1.30x",
               f"{fmt_ratio(r)} ({fmt_ns(v)} vs {fmt_ns(sized)})", None if r is None else r <= 1.3)
    raw = c(f"writes/raw_redb_{op}_rows")
    r = ratio(raw, commit)
    target_row(f"  raw redb writing {op}'s rows (the layout's floor) vs one durable commit", "—",
               f"{fmt_ratio(r)} ({fmt_ns(raw)} vs {fmt_ns(commit)})", None)
    r = ratio(v, raw)
    target_row(f"  {op} vs raw redb writing the same rows", "—",
               f"{fmt_ratio(r)} ({fmt_ns(v)} vs {fmt_ns(raw)})", None)
batch = c("writes/apikeys_generate_batch_1000")
kps = None if batch is None else 1000 / (batch / 1e9)
target_row("batch generate (1000 per call)", "≥ 50,000 keys/s",
           "—" if kps is None else f"{kps:,.0f} keys/s", None if kps is None else kps >= 50_000)
big = c("writes/apikeys_generate_batch_10000")
kps = None if big is None else 10_000 / (big / 1e9)
target_row("  same, a batch of 10,000 (MAX_BATCH) per call", "≥ 50,000 keys/s",
           "—" if kps is None else f"{kps:,.0f} keys/s", None if kps is None else kps >= 50_000)
if latency:
    kps = latency["batch_keys_per_second"]
    target_row(f"  same, batches of 1000 into a {latency['keys']:,}-key store "
               f"(mean of {latency['batch']['calls']}, moves included)", "≥ 50,000 keys/s",
               f"{kps:,.0f} keys/s", kps >= 50_000)
if open_figures:
    s, b = open_figures["open_seconds_median"], open_figures["bytes_per_key_median"]
    target_row("open a 1M-key store", "≤ 1 s", f"{s:.3f} s", s <= 1.0)
    target_row("memory of an open 1M-key store", "≤ 150 B/key", f"{b:.0f} B/key", b <= 150)
else:
    target_row("open a 1M-key store", "≤ 1 s", "—", None)
t1 = c("threads_1M/apikeys_exclusive_valid/1")
t2 = c("threads_1M/apikeys_exclusive_valid/2")
r = ratio(t1, t2)
control = ratio(c("threads_1M/floor_valid/1"), c("threads_1M/floor_valid/2"))
target_row("verifies/s, 2 threads vs 1 (1M, exclusive)", "≥ 1.70x",
           f"{fmt_ratio(r)} (control: the floor scales {fmt_ratio(control)} in the same run)",
           None if r is None else r >= 1.7)
if paired and "two_threads_over_one_median" in paired:
    r = paired["two_threads_over_one_median"]
    target_row("  same, paired rounds", "≥ 1.70x",
               f"{r:.2f}x (control: the floor scales {paired['floor_two_threads_over_one_median']:.2f}x)",
               r >= 1.7)
    if "two_threads_scaling_over_floor_scaling_median" in paired:
        r = paired["two_threads_scaling_over_floor_scaling_median"]
        target_row("  apikeys' scaling over the floor's, per round", "—", f"{r:.2f}", None)
for host, floor_goal, sqlite_goal in (("php", None, 10), ("ruby", None, 10), ("python", 1.5, 5)):
    h = hosts[host]
    if not h:
        target_row(f"{host}: apikeys vs its floor", "—", "not run", None)
        continue
    f = h["ns_per_verify"]
    # The floor is one inline expression (hash, then a lookup); its peer is
    # one FFI call of apikeys_key_validate, the same question ("is this key
    # good?") through the library. apikeys_key_check (four arguments), the
    # package's is_valid and verify_id (the call inside a method, the id
    # copied out) and the six-argument apikeys_key_verify follow, judged
    # against the same goal, and the host table has every row.
    fl, sq = f.get("floor_valid"), f.get("sqlite_valid")
    peers = [("FFI call apikeys_key_validate", f.get("validate_exclusive_valid")),
             ("FFI call apikeys_key_check", f.get("check_exclusive_valid")),
             ("package is_valid", f.get("package_is_valid_exclusive_valid")),
             ("package verify_id", f.get("package_verify_id_exclusive_valid")),
             ("raw apikeys_key_verify", f.get("apikeys_exclusive_valid"))]
    for index, (label, ak) in enumerate(peers):
        if ak is None:
            continue
        prefix = f"{host}: apikeys" if index == 0 else "  same, "
        r = ratio(ak, fl)
        if floor_goal is None:
            target_row(f"{prefix} ({label}) vs {host}'s in-memory floor", "faster (< 1.00x)",
                       f"{fmt_ratio(r)} ({fmt_ns(ak)} vs {fmt_ns(fl)})", None if r is None else r < 1.0)
        else:
            target_row(f"{prefix} ({label}) vs dict floor", f"≤ {floor_goal:.2f}x",
                       f"{fmt_ratio(r)} ({fmt_ns(ak)} vs {fmt_ns(fl)})",
                       None if r is None else r <= floor_goal)
    # Against SQLite: the package's verify_id, the slowest way an
    # application asks for the key's id (else the raw calls that ran).
    measured = dict(peers)
    ak = next((measured[label] for label in ("package verify_id", "FFI call apikeys_key_check",
                                             "raw apikeys_key_verify")
               if measured[label] is not None), None)
    r = ratio(sq, ak)
    target_row(f"{host}: apikeys vs {host}'s SQLite approach", f"≥ {sqlite_goal}x faster",
               f"{fmt_ratio(r)} faster ({fmt_ns(sq)})", None if r is None else r >= sqlite_goal)

out("### Targets")
out("")
out("| what | target | measured | |")
out("|---|---|---|---|")
for what, goal, measured, status in rows:
    out(f"| {what} | {goal} | {measured} | {status} |")
out("")

# ---- Verify, every peer --------------------------------------------------
names = [
    ("floor_valid", "floor: BLAKE3 + hash map, valid"),
    ("floor_unknown", "floor: BLAKE3 + hash map, unknown"),
    ("apikeys_exclusive_valid", "apikeys exclusive, valid"),
    ("apikeys_exclusive_untracked_valid", "apikeys exclusive, valid, no usage tracking"),
    ("apikeys_exclusive_unknown", "apikeys exclusive, unknown"),
    ("apikeys_exclusive_malformed", "apikeys exclusive, malformed"),
    ("apikeys_exclusive_bad_checksum", "apikeys exclusive, bad checksum"),
    ("raw_redb_valid", "raw redb (default mode): read txn + get, valid"),
    ("raw_redb_multiwriter_valid", "raw redb (multi-process mode): read txn + get, valid"),
    ("raw_redb_multiwriter_unknown", "raw redb (multi-process mode), unknown"),
    ("apikeys_shared_valid", "apikeys shared, valid"),
    ("apikeys_shared_untracked_valid", "apikeys shared, valid, no usage tracking"),
    ("apikeys_shared_unknown", "apikeys shared, unknown"),
    ("apikeys_shared_malformed", "apikeys shared, malformed"),
    ("apikeys_shared_bad_checksum", "apikeys shared, bad checksum"),
    ("sqlite_sanctum_valid", "SQLite Sanctum-style: SHA-256 hex + SELECT, valid"),
    ("sqlite_sanctum_unknown", "SQLite Sanctum-style, unknown"),
    ("sqlite_sanctum_touch_valid", "SQLite Sanctum-style + UPDATE last_used_at, valid"),
]
sizes = [n for n in ("100k", "1M") if any(k.startswith(f"verify_{n}/") for k in crit)]
out("### Verify (median per call; ratio to the floor of the same N)")
out("")
out("| peer | " + " | ".join(f"N = {n} | × floor" for n in sizes) + " |")
out("|---|" + "---|---|" * len(sizes))
for key, title in names:
    cells = []
    for n in sizes:
        v = c(f"verify_{n}/{key}")
        cells += [fmt_ns(v), fmt_ratio(ratio(v, c(f"verify_{n}/floor_valid")))]
    out(f"| {title} | " + " | ".join(cells) + " |")
pb = c("pbkdf2/pbkdf2_sha256_1500k_valid")
if pb is not None:
    cells = []
    for n in sizes:
        cells += [fmt_ns(pb), fmt_ratio(ratio(pb, c(f"verify_{n}/floor_valid")))]
    out("| PBKDF2-SHA256, 1.5M iterations (Django), valid | " + " | ".join(cells) + " |")
out("")

out("### Writes, listing, threads")
out("")
out("| operation | median | note |")
out("|---|---|---|")
for key, title, note in (
    ("writes/redb_durable_commit", "one durable redb commit (one 64-byte row)", "yardstick"),
    ("writes/redb_durable_commit_store_sized", "the same commit into a table of N rows (N = store size)", "second yardstick"),
    ("writes/raw_redb_generate_rows", "raw redb: generate's rows (record, digest row, event), one durable commit", "the layout's floor"),
    ("writes/raw_redb_revoke_rows", "raw redb: revoke's rows, one durable commit", "the layout's floor"),
    ("writes/apikeys_generate", "generate one key", "durable"),
    ("writes/apikeys_revoke", "revoke one key", "durable"),
    ("writes/apikeys_generate_batch_1000", "generate a batch of 1000", "one durable commit"),
    ("writes/apikeys_generate_batch_10000", "generate a batch of 10,000 (MAX_BATCH)", "one durable commit"),
    ("list/apikeys_list_10k", "list 10k keys", "with usage"),
    ("threads_1M/apikeys_exclusive_valid/1", "verify, 1 thread (wall time per verify)", ""),
    ("threads_1M/apikeys_exclusive_valid/2", "verify, 2 threads (wall time per verify)", ""),
    ("threads_1M/floor_valid/1", "floor, 1 thread (control)", ""),
    ("threads_1M/floor_valid/2", "floor, 2 threads (control)", ""),
):
    v = c(key)
    if "batch_" in key and v:
        size = int(key.rsplit("_", 1)[1])
        note = f"{size / (v / 1e9):,.0f} keys/s"
    out(f"| {title} | {fmt_ns(v)} | {note} |")
if open_figures:
    out(f"| open a {open_figures['keys']:,}-key store (exclusive: loads the index) | "
        f"{open_figures['open_seconds_median']:.3f} s | "
        f"{open_figures['bytes_per_key_median']:.0f} B/key resident, median of "
        f"{open_figures['runs']} fresh processes |")
if latency:
    for kind, title in (("batch", "generate a batch of 1000"), ("single", "generate one key")):
        f = latency[kind]
        out(f"| {title} into a {latency['keys']:,}-key store, one call at a time | "
            f"{f['median_ms']:.2f} ms | mean {f['mean_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, "
            f"slowest {f['max_ms']:.1f} ms (a commit that moves digest rows on), "
            f"{f['calls']:,} calls |")
out("")

out("### From each host (N = 100k filler + 256 sample keys; median ns per call)")
out("")
out("Package rows call the host package as an application does (`verify_id`: the key's id; "
    "`is_valid`: a boolean; `verify`: every detail); raw rows call the C ABI directly "
    "(`apikeys_key_verify` with out = NULL; `apikeys_key_check` without id; "
    "`apikeys_key_validate`, store and key only); "
    "`*_call_overhead` is the same raw call with a one-byte key, rejected before any work.")
out("")
host_rows = (
    ("package_verify_id_exclusive_valid", "package verify_id, exclusive, valid"),
    ("package_is_valid_exclusive_valid", "package is_valid, exclusive, valid"),
    ("package_verify_exclusive_valid", "package verify (all details), exclusive, valid"),
    ("package_verify_id_shared_valid", "package verify_id, shared, valid"),
    ("apikeys_exclusive_valid", "raw apikeys_key_verify, exclusive, valid"),
    ("apikeys_exclusive_bad_checksum", "raw apikeys_key_verify, exclusive, bad checksum"),
    ("apikeys_shared_valid", "raw apikeys_key_verify, shared, valid"),
    ("check_exclusive_valid", "raw apikeys_key_check, exclusive, valid"),
    ("validate_exclusive_valid", "raw apikeys_key_validate, exclusive, valid"),
    ("ffi_call_overhead", "ffi_call_overhead (apikeys_key_verify, 1-byte key)"),
    ("check_call_overhead", "check_call_overhead (apikeys_key_check, 1-byte key)"),
    ("validate_call_overhead", "validate_call_overhead (apikeys_key_validate, 1-byte key)"),
    ("floor_valid", "floor: SHA-256 + array / Hash / dict"),
    ("sqlite_valid", "SQLite, the language's usual way"),
)
present = [name for name in hosts if hosts[name]]
out("| row | " + " | ".join(f"{name} {hosts[name].get('version', '')}" for name in present) + " |")
out("|---|" + "---|" * len(present))
for key, title in host_rows:
    cells = [fmt_ns(hosts[name]["ns_per_verify"].get(key)) for name in present]
    if any(cell != "—" for cell in cells):
        out(f"| {title} | " + " | ".join(cells) + " |")
for name in hosts:
    if not hosts[name]:
        out(f"\n{name}: not run")


def chart(n):
    """A horizontal bar chart (log scale) of verify medians at N = n, as SVG."""
    bars = [(title, c(f"verify_{n}/{key}")) for key, title in names]
    bars = [(t, v) for t, v in bars if v]
    if pb is not None:
        bars.append(("PBKDF2-SHA256, 1.5M iterations", pb))
    if not bars:
        return None
    import math
    lo, hi = 1.0, math.log10(max(v for _, v in bars)) + 0.3
    width, left, row = 900, 380, 22
    height = row * len(bars) + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<text x="8" y="16" font-weight="bold">verify, N = {n}: median time per call '
           f'(log scale)</text>']
    for i, (title, v) in enumerate(bars):
        y = 28 + i * row
        length = max(2, (math.log10(v) - lo) / (hi - lo) * (width - left - 90))
        color = "#2b7bb9" if title.startswith("apikeys") else (
            "#999999" if title.startswith("floor") else "#d9822b")
        svg.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{title}</text>')
        svg.append(f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
                   f'fill="{color}"/>')
        svg.append(f'<text x="{left + length + 4:.1f}" y="{y + 14}">{fmt_ns(v)}</text>')
    svg.append("</svg>")
    return "\n".join(svg)


for n in sizes:
    drawing = chart(n)
    if drawing:
        os.makedirs(results_dir, exist_ok=True)
        with open(os.path.join(results_dir, f"verify-{n}.svg"), "w") as f:
            f.write(drawing + "\n")

table = "\n".join(lines)
print(table)
os.makedirs(results_dir, exist_ok=True)
with open(os.path.join(results_dir, "table.md"), "w") as f:
    f.write(table + "\n")
