#!/usr/bin/env python3
"""Compare rocforge's next-token distribution with llama.cpp's on the same GGUF file.

llama.cpp runs through ../shared/tools/llama-peer.mjs (node-llama-cpp, installed outside the repo;
set NODE_PATH). The peer exposes probabilities only, so we compare log-probabilities of llama.cpp's
top-10 tokens and their gaps from the top token:
  rel_rms_logprob = ||lp_ours - lp_peer|| / ||lp_peer||
  rel_rms_gap     = ||gap_ours - gap_peer|| / ||gap_peer||   (stricter: gaps are small on random models)

usage: bench/compare_logits.py MODEL.gguf PROMPT [--rocforge build/rocforge] [--peer PATH]
"""
import argparse
import math
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("prompt")
ap.add_argument("--rocforge", default=os.path.join(here, "..", "build", "rocforge"))
ap.add_argument("--peer", default=os.path.join(os.environ.get("ROCFORGE_TEST_DATA", os.path.join(here, "..", "..", "shared")), "tools", "llama-peer.mjs"))
ap.add_argument("--kv-type", default="f32")
a = ap.parse_args()

env = dict(os.environ, LLAMA_PEER_KV_F32="1" if a.kv_type == "f32" else "0")
peer = subprocess.run(["node", a.peer, "logits", a.model, a.prompt], capture_output=True, text=True, env=env)
if peer.returncode != 0:
    sys.exit("llama-peer failed: " + peer.stderr)
peer_ids, peer_lp = None, {}
for line in peer.stdout.splitlines():
    if line.startswith("prompt_ids:"):
        peer_ids = line.split(":", 1)[1].split()
    if line.startswith("top10_logprob:"):
        for item in line.split(":", 1)[1].split():
            t, v = item.split(":")
            peer_lp[int(t)] = float(v)

ours = subprocess.run([a.rocforge, "logits", "-m", a.model, "-p", a.prompt, "--top", "200000", "--kv-type", a.kv_type],
                      capture_output=True, text=True)
if ours.returncode != 0:
    sys.exit("rocforge failed: " + ours.stderr)
our_ids, our_lp = None, {}
for line in ours.stdout.splitlines():
    if line.startswith("prompt_ids:"):
        our_ids = line.split(":", 1)[1].split()
    parts = line.split()
    if len(parts) == 4 and parts[0].isdigit():
        our_lp[int(parts[0])] = float(parts[2])

ids = list(peer_lp)
top = ids[0]
d_lp = [our_lp[i] - peer_lp[i] for i in ids]
d_gap = [(our_lp[i] - our_lp[top]) - (peer_lp[i] - peer_lp[top]) for i in ids]
norm_lp = math.sqrt(sum(peer_lp[i] ** 2 for i in ids))
norm_gap = math.sqrt(sum((peer_lp[i] - peer_lp[top]) ** 2 for i in ids)) or 1.0
our_top = max(our_lp, key=our_lp.get)
print(f"model={os.path.basename(a.model)} prompt_ids_equal={peer_ids == our_ids} top1_equal={our_top == top} "
      f"rel_rms_logprob={math.sqrt(sum(d * d for d in d_lp)) / norm_lp:.2e} "
      f"rel_rms_gap={math.sqrt(sum(d * d for d in d_gap)) / norm_gap:.2e} max_abs_logprob_diff={max(abs(d) for d in d_lp):.2e}")
