"""PyTorch's time for the step suite's training step (bench/train-step.bench.ts), on the CPU.

The same Llama-style model as blockgrad's LlamaForCausalLM, in plain torch (no transformers
package): RMSNorm, rotary embeddings in the rotate-half layout, causal multi-head attention in the
eager layout (scores, masked fill, softmax, context), SwiGLU MLP, untied lm_head, shifted causal-LM
cross-entropy; torch.optim.Adam. One step = zero_grad, forward, backward, Adam update.

    python3 bench/torch_step.py --threads 1 [--steps 10] [--warmup 3]    one JSON summary line
    python3 bench/torch_step.py --threads 1 --serve                      line protocol (below)

--serve (used by train-step.bench.ts, so that PyTorch's rounds interleave with the others): after
building the model and running the warm-up steps, prints one JSON line describing itself, then for
each stdin line {"steps": k} runs k steps and prints {"times": [...], "loss": x}; stops at EOF.

Threads: OpenBLAS, OpenMP and MKL read their thread counts from the environment when the library
loads (torch.set_num_threads does not limit OpenBLAS), so the variables are set here before torch
is imported, and torch.set_num_threads is called too. OMP_WAIT_POLICY=PASSIVE: Debian's torch runs
its own ops on OpenMP threads and its products on OpenBLAS's separate pthreads; by default the idle
OpenMP threads spin and take the cores from OpenBLAS's (measured on the 2-core machine: a
2-thread step took 0.30 s with the default policy, 0.13 s with PASSIVE, against 0.15 s on 1 thread),
so PASSIVE gives PyTorch its better time. The summary names the BLAS library that
torch loaded: Debian's torch uses whatever libblas.so.3 points to, and the reference BLAS (package
libblas3) is ~20x slower than OpenBLAS (package libopenblas0-pthread).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--serve", action="store_true")
parser.add_argument("--config", default="{}", help="JSON: vocab, hidden, intermediate, layers, heads, batch, seq, lr, ids")
args = parser.parse_args()

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
cfg = {"vocab": 259, "hidden": 256, "intermediate": 688, "layers": 8, "heads": 4, "batch": 4, "seq": 64, "lr": 1e-3}
cfg.update(json.loads(args.config))
V, H, I, L, NH = cfg["vocab"], cfg["hidden"], cfg["intermediate"], cfg["layers"], cfg["heads"]
B, T = cfg["batch"], cfg["seq"]
D = H // NH


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm(H)
        self.q_proj = nn.Linear(H, H, bias=False)
        self.k_proj = nn.Linear(H, H, bias=False)
        self.v_proj = nn.Linear(H, H, bias=False)
        self.o_proj = nn.Linear(H, H, bias=False)
        self.post_attention_layernorm = RMSNorm(H)
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x, cos, sin, mask):
        h = self.input_layernorm(x)

        def heads(y):  # [B, T, H] -> [B, NH, T, D]
            return y.view(B, T, NH, D).transpose(1, 2)

        q = heads(self.q_proj(h))
        k = heads(self.k_proj(h))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        v = heads(self.v_proj(h))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        context = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = x + self.o_proj(context)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, H)
        self.layers = nn.ModuleList(Layer() for _ in range(L))
        self.norm = RMSNorm(H)
        self.lm_head = nn.Linear(H, V, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, ids, labels):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))


def blas_library():
    """The BLAS shared library this process loaded (after a product has run)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()}
    except OSError:
        return "unknown"
    names = sorted(os.path.basename(p) for p in libs if p.startswith("/"))
    for path in sorted(libs):
        if "openblas" in path:
            return "openblas (" + path + ")"
    return ", ".join(names) or "none found"


torch.manual_seed(0)
model = Llama()
opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
if "ids" in cfg:
    ids = torch.tensor(cfg["ids"], dtype=torch.long).view(B, T)
else:
    ids = torch.randint(0, V, (B, T))


def step():
    opt.zero_grad(set_to_none=True)
    loss = model(ids, ids)
    loss.backward()
    opt.step()
    return loss.item()


def timed(k):
    times, loss = [], float("nan")
    for _ in range(k):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    return times, loss


first_loss = float("nan")
for i in range(args.warmup):
    loss = step()
    first_loss = loss if i == 0 else first_loss
info = {
    "torch": torch.__version__,
    "threads": args.threads,
    "torchThreads": torch.get_num_threads(),
    "blas": blas_library(),
    "parameters": sum(p.numel() for p in model.parameters()),
    "firstLoss": first_loss,
}
if args.serve:
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        times, loss = timed(int(json.loads(line)["steps"]))
        print(json.dumps({"times": times, "loss": loss}), flush=True)
else:
    times, loss = timed(args.steps)
    info.update({"warmup": args.warmup, "times": times, "medianSeconds": statistics.median(times), "loss": loss})
    print(json.dumps(info))
