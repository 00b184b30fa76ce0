"""Statistics and the printed table of the container start benchmark."""

import statistics


def nearest_rank(values, q):
    s = sorted(values)
    k = max(1, -(-int(q * 1000) * len(s) // 1000))  # ceil(q * n) without float surprises
    return s[min(k, len(s)) - 1]


def summary(values):
    return {"median": statistics.median(values), "p99": nearest_rank(values, 0.99),
            "min": min(values), "max": max(values), "n": len(values)}


def report(res):
    seq, n = res["sequential"], res["config"]["n"]
    rows = [("troupe: request -> container process runs", [s["proc"] for s in seq["troupe"]]),
            ("runc run -d: spawn -> container process runs", [s["proc"] for s in seq["runc_run"]]),
            ("runc create+start: spawn -> process runs", [s["proc"] for s in seq["runc_create_start"]]),
            ("troupe: request -> API shows running", [s["api"] for s in seq["troupe"]]),
            ("troupe: request -> POST reply (pending)", [s["reply"] for s in seq["troupe"]]),
            ("runc run -d: spawn -> runc returned", [s["ret"] for s in seq["runc_run"]]),
            ("one runc call (state of an absent id)", res["runc_state_probe"])]
    peer = summary(rows[1][1])
    p99_note = " (= max at N<100)" if n < 100 else ""
    lines = [f"Container start, warm image, {n} sequential starts per variant, order rotated each round",
             f"{'':46} {'median ms':>10} {'p99 ms':>8} {'min':>7} {'max':>7}   median / runc run -d",
             "-" * 104]
    res["summary"] = {}
    for label, values in rows:
        s = summary(values)
        res["summary"][label] = s
        lines.append(f"{label:46} {s['median']:10.1f} {s['p99']:8.1f} {s['min']:7.1f} {s['max']:7.1f}"
                     f"   {s['median'] / peer['median']:.2f}x (p99 {s['p99'] / peer['p99']:.2f}x)")
    paired = [t["proc"] / r["proc"] for t, r in zip(seq["troupe"], seq["runc_run"])]
    res["summary"]["paired ratio troupe / runc run -d"] = summary(paired)
    lines.append(f"p99 is nearest-rank{p99_note}. Median of the {len(paired)} per-round ratios troupe / runc run -d"
                 f" (each pair measured back to back, so drift cancels): {statistics.median(paired):.2f}x")
    if res.get("phases"):
        lines += ["", "Where a Troupe start goes (medians; agent log stamps, whole milliseconds)"]
        lines += [f"  {k:44} {v:8.1f} ms" for k, v in res["phases"].items()]
    lines.append(f"  {'one fdatasync on the data dir disk':44} {res['fdatasync_ms']:8.1f} ms"
                 "   (an LMDB commit makes two)")
    b = res["burst"]
    tb, rb = b["troupe"], b["runc_run"]
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    rounds = lambda xs: ", ".join("%.0f" % x["all_proc"] for x in xs)
    lines += ["", f"{res['config']['burst']} containers requested at once, {len(tb)} rounds each (median of rounds)",
              f"  {'troupe: request -> every process runs':44} {med(tb, 'all_proc'):8.0f} ms   rounds: {rounds(tb)}",
              f"  {'troupe: request -> API shows all running':44} {med(tb, 'all_api'):8.0f} ms",
              f"  {'troupe: request -> last POST answered':44} {med(tb, 'all_replied'):8.0f} ms"
              f"   rounds: " + ", ".join("%.0f" % x["all_replied"] for x in tb),
              f"  {'troupe: SYNs dropped, listen queue full':44} {med(tb, 'listen_overflows'):8.0f}"
              f"      rounds: " + ", ".join(str(x["listen_overflows"]) for x in tb),
              f"  {'troupe: connections reset (POST retried)':44} {med(tb, 'resets'):8.0f}"
              f"      rounds: " + ", ".join(str(x["resets"]) for x in tb),
              f"  {'runc run -d, all in parallel -> every runs':44} {med(rb, 'all_proc'):8.0f} ms   rounds: {rounds(rb)}",
              f"  {'ratio troupe / runc (every process runs)':44} {med(tb, 'all_proc') / med(rb, 'all_proc'):8.2f}x",
              "", "Agent memory (VmRSS of the troupe process)"]
    rss, burst = res["rss"], res["config"]["burst"]
    mib = lambda kib: f"{kib / 1024:6.1f} MiB"
    if rss.get("at_start_kib"):
        lines.append(f"  {'just started, no image yet':44} {mib(rss['at_start_kib'])}")
    lines += [f"  {'idle: image imported, no container yet':44} {mib(rss['idle_before_kib'])}"
              f"  ({rss['idle_before_threads']} threads)",
              f"  {f'with {burst} running (max of rounds)':44} {mib(max(x['agent_rss_kib'] for x in tb))}"
              f"  ({max(x['agent_threads'] for x in tb)} threads)   rounds: "
              + ", ".join("%.1f" % (x["agent_rss_kib"] / 1024) for x in tb),
              f"  {'idle again after every run':44} {mib(rss['idle_after_kib'])}"
              f"  ({rss['idle_after_threads']} threads)",
              f"  {f'troupe-shim processes, {burst} running (PSS)':44} {mib(max(x['shims_pss_kib'] for x in tb))}"
              f"  (summed over {tb[0]['shims']})",
              "", f"load average before: {res['loadavg'][0]}   after: {res['loadavg'][1]}"]
    return "\n".join(lines)
