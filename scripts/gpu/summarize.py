#!/usr/bin/env python3
"""Prints a Markdown table of the `m3train bench` JSON reports in a folder (or of the files given).

    scripts/gpu/summarize.py out/gpu/results            # every *.json in the folder
    scripts/gpu/summarize.py benchmarks/cpu-baseline/*.json

Rows with a FlagEmbedding anchor (issue 10's table, measured on an H200) show the ratios to it; the goal is
at least 1.5x its tokens/s at most 0.5x its peak memory.
"""
import json
import pathlib
import os
import sys


def reports(args):
    for arg in args or ["."]:
        path = pathlib.Path(arg)
        for file in sorted(path.glob("*.json")) if path.is_dir() else [path]:
            try:
                data = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            if str(data.get("schema", "")).startswith("m3train-bench/"):
                yield file.stem, data


def fmt(value, digits=2):
    return "" if value is None else f"{value:,.{digits}f}"


def main():
    print("| run | device | mode | preset | B x G | Lq / Lp | precision | ckpt | sub-batch | step s (p50) | tokens/s | peak GiB | fwd / bwd / opt | vs FlagEmbedding (H200): tokens/s, memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in reports(sys.argv[1:]):
        s, res, m = r["settings"], r["result"], r["machine"]
        timing = res.get("step_seconds") or res.get("batch_seconds") or (res.get("steps") or {}).get("step_seconds") or {}
        memory = res.get("memory") or (res.get("steps") or {}).get("memory") or {}
        phases = res.get("phases") or {}
        split = " / ".join(fmt(phases.get(f"{p}_fraction", 0) * 100, 0) + "%" for p in ("forward", "backward", "optimizer")) if phases else ""
        checkpointing = ("on" if s["checkpointing"] else "off") if s["mode"] in ("step", "data") else ""
        anchor = r.get("anchor")
        versus = ""
        if anchor:
            memory_ratio = anchor.get("peak_memory_ratio")
            versus = f"{fmt(anchor['tokens_per_second_ratio'])}x, {fmt(memory_ratio)}x" + (" (goal met)" if anchor.get("goal_met") else "")
        if s["mode"] == "tokenize":
            # No model and no batch shape: the tokenizer folder, its tokens per character and the round time.
            chars = res.get("chars_per_token")
            print(f"| {name} | {m.get('device_name')} | tokenize | {os.path.basename(str(s.get('tokenizer') or ''))} | "
                  f"{res.get('threads')} thread(s) | {fmt(chars)} chars/token |  |  |  | {fmt(res.get('best_round_seconds'), 3)} (best) | "
                  f"{fmt(res.get('tokens_per_second'), 0)} |  |  |  |")
            continue
        print(f"| {name} | {m.get('device_name')} | {s['mode']} | {s['preset']} | {s['queries']} x {s['group']} | "
              f"{s['query_length']} / {s['passage_length']} | {s['precision']} | {checkpointing} | "
              f"{s.get('sub_batch') or ''} | {fmt(timing.get('mean'), 3)} ({fmt(timing.get('p50'), 3)}) | "
              f"{fmt(res.get('tokens_per_second'), 0)} | {fmt(memory.get('device_peak_gib'))} | {split} | {versus} |")


if __name__ == "__main__":
    main()
