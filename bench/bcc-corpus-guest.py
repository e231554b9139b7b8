# BCC's own figure for the tool corpus, run INSIDE a guest by bench/bcc-corpus-guest.ts
# (BCC 0.26, python3 and the guest kernel's headers staged in by bench/startup-guest.sh):
#   python3 bench/bcc-corpus-guest.py DIR [OUT]
# DIR holds corpus.json (the tools and their arguments), extract/ (the tools' Python and
# scripts/bcc-corpus.ts's driver) and, from the host, host/ (the host's text and tsbpf's
# manifest: how each function is loaded). For each tool, as a BCC user of this kernel:
#   1. the tool's Python runs up to BPF() with BCC's own feature checks answered by this
#      kernel (TSBPF_BCC_NATIVE=1), which records its text into DIR/guest/TOOL.json;
#   2. BPF(text=..., cflags=...) compiles it (loading and attaching the kprobe__/tracepoint__/...
#      functions, as BCC does), then load_func() loads every other function with the type
#      the tool attaches it as (the kind tsbpf's translation gave it; else by its prefix).
# One child process per step, two tools at a time; prints "BCC {json}" lines, then writes
# DIR/guest as a tar to OUT (a raw disk) for the host.
import concurrent.futures, json, os, subprocess, sys, tarfile, time

TIMEOUT = 900


def one(d, tool):
    from bcc import BPF, lib
    spec = json.load(open(os.path.join(d, "guest", tool + ".json")))
    kinds = {}
    try:
        manifest = json.load(open(os.path.join(d, "host", "manifest.json")))
        kinds = {f["name"]: f["kind"] for t in manifest["tools"] if t["tool"] == tool for f in t["functions"]}
    except OSError:
        pass
    types = {"kprobe": BPF.KPROBE, "tracepoint": BPF.TRACEPOINT, "raw_tracepoint": BPF.RAW_TRACEPOINT, "perf_event": BPF.PERF_EVENT}
    b = BPF(text=spec["text"], cflags=spec["cflags"])
    names = [lib.bpf_function_name(b.module, i).decode() for i in range(lib.bpf_num_functions(b.module))]
    loaded, reason = 0, None
    for name in names:
        kind = kinds.get(name)
        if kind in types:
            t = types[kind]
        elif name.startswith("lsm__"):
            t = BPF.LSM
        elif kind == "tracing" or name.startswith("kfunc__") or name.startswith("kretfunc__"):
            t = BPF.TRACING
        elif name.startswith("tracepoint__"):
            t = BPF.TRACEPOINT
        elif name.startswith("raw_tracepoint__"):
            t = BPF.RAW_TRACEPOINT
        else:
            t = BPF.KPROBE
        try:
            if name.encode() not in b.funcs:
                b.load_func(name.encode(), t)
            loaded += 1
        except Exception as e:
            reason = reason or "%s: %s" % (name, str(e).splitlines()[0][:200])
    b.cleanup()
    print(json.dumps({"loaded": loaded, "programs": len(names), "reason": reason}))


def first_error(stderr):
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for pat in (" error: ", "invalid", "Failed", "Exception", "Error"):
        for l in lines:
            if pat in l:
                return l[:240]
    return lines[-1][:240] if lines else "no output"


def run_tool(d, entry):
    tool, args = entry["tool"], entry.get("args", [])
    res = {"tool": tool, "ok": False, "loaded": 0, "programs": 0}
    started = time.time()
    ext = os.path.join(d, "extract")
    out = os.path.join(d, "guest", tool + ".json")
    env = dict(os.environ, TSBPF_BCC_NATIVE="1")
    try:
        r = subprocess.run([sys.executable, os.path.join(ext, "driver.py"), out, os.path.join(ext, tool + ".py"), os.path.join(ext, "bcc-overlay")] + args,
                           cwd=ext, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        if not os.path.exists(out):
            res.update(stage="extract", reason="extraction failed: " + first_error(r.stderr))
            return res
        guest = json.load(open(out))
        try:
            host = json.load(open(os.path.join(d, "host", tool + ".json")))
            res["same"] = host["text"] == guest["text"] and host["cflags"] == guest["cflags"]
        except OSError:
            pass
        res["extractMs"] = int((time.time() - started) * 1000)
        r = subprocess.run([sys.executable, __file__, "--one", d, tool], capture_output=True, text=True, timeout=TIMEOUT)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        if r.returncode == 0 and lines:
            res.update(json.loads(lines[-1]))
            res["ok"] = res["programs"] > 0 and res["loaded"] == res["programs"]
            if not res["ok"]:
                res["stage"] = "load"
                res["reason"] = res.get("reason") or "no programs"
        else:
            res["stage"] = "compile" if "compile" in r.stderr.lower() else "load"
            res["reason"] = first_error(r.stderr)
    except subprocess.TimeoutExpired:
        res.update(stage="timeout", reason="no answer in %d s" % TIMEOUT)
    finally:
        res["ms"] = int((time.time() - started) * 1000)
    return res


def main(d, out):
    os.makedirs(os.path.join(d, "guest"), exist_ok=True)
    corpus = json.load(open(os.path.join(d, "corpus.json")))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for res in pool.map(lambda e: run_tool(d, e), corpus):
            print("BCC " + json.dumps(res), flush=True)
    if out:
        with open(out, "wb") as f:
            with tarfile.open(fileobj=f, mode="w") as t:
                t.add(os.path.join(d, "guest"), arcname="guest")
            f.flush()
            os.fsync(f.fileno())
        print("BCC-TAR-DONE", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
