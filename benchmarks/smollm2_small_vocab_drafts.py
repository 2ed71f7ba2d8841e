"""Probe: could small-vocabulary drafts trained here make SmolLM2-135M faster on this CPU?

A feasibility probe for the SmolLM2 world, not part of the toolkit. On the
world's own prompts (a built SmolLM2 world folder, ``envs/smollm2``: its
``prompts.jsonl``, ``distill.npz`` and the target its ``world.toml`` names), it labels the
training prompts with the target's teacher-forced argmax, trains small Llama
drafts from scratch (2 layers, 256 wide) whose vocabulary is the ``V`` most
frequent tokens of that text (unknown tokens map to one id; the head is
``V`` wide instead of 49,152), a generalist and one per domain, and scores
them exactly along the target's greedy outputs (32 tokens) of 48 random
held-out prompts: the share of output tokens the draft predicts, and target
calls per token for block sizes 1-4 (a teacher-forced replay, as the
toolkit's counterfactual collection does). A speed-up over AR is then priced
with the per-call costs of the target (verifying 1-5 tokens) and of the
draft, measured here at batch size 1, 1 thread (medians of 20 calls after a
100-token context).

Usage::

    python benchmarks/smollm2_small_vocab_drafts.py WORLD_DIR [V] [STEPS] [DRAFTS] [THREADS for labelling and training]
    # e.g. ~/.cache/banditspec/smollm2/<key> 8192 300 general,licences,python,docs 2
"""
import json, os, pickle, sys, tempfile, time
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
import tomllib
from banditspec.speculative.decoding import greedy_outputs

root = os.path.join(os.path.expanduser(sys.argv[1]), "")
argv = sys.argv[1:]
torch.set_num_threads(int(argv[4]) if len(argv) > 4 else 1)
torch.manual_seed(0)
tpath = tomllib.loads(open(root + "world.toml").read())["target"]["model"]
tok = AutoTokenizer.from_pretrained(tpath)
target = AutoModelForCausalLM.from_pretrained(tpath, dtype=torch.float32).eval()
rows = [json.loads(l) for l in open(root + "prompts.jsonl")]
train = [r for r in rows if r["split"] == "train"]
test = [r for r in rows if r["split"] == "test"]
rng = np.random.default_rng(0)
test = [test[i] for i in sorted(rng.choice(len(test), 48, replace=False))]
d = np.load(root + "distill.npz")
V, K_NEW = int(argv[1]) if len(argv) > 1 else 8192, 32
STEPS = int(argv[2]) if len(argv) > 2 else 300

def labelled(texts):
    """teacher-forced argmax labels of the target along each text (batched)"""
    enc = [tok(t, add_special_tokens=False)["input_ids"][:256] for t in texts]
    ids_l, lab_l = [], []
    with torch.inference_mode():
        for s in range(0, len(enc), 16):
            b = enc[s:s + 16]; w = max(map(len, b))
            ids = torch.full((len(b), w), tok.eos_token_id); m = torch.zeros((len(b), w), dtype=torch.long)
            for i, e in enumerate(b): ids[i, :len(e)] = torch.tensor(e); m[i, :len(e)] = 1
            am = target(input_ids=ids, attention_mask=m).logits.argmax(-1)
            for i, e in enumerate(b): ids_l.append(np.array(e)); lab_l.append(am[i, :len(e)].numpy())
    return ids_l, lab_l

CACHE = os.path.join(tempfile.gettempdir(), f"smollm2-probe-labels-{os.path.basename(root[:-1])}.pkl")  # reruns skip labelling
if os.path.exists(CACHE):
    tr_ids, tr_lab, t_label = pickle.load(open(CACHE, "rb"))
else:
    t0 = time.perf_counter()
    tr_ids, tr_lab = labelled([r["text"] for r in train])
    t_label = time.perf_counter() - t0
    pickle.dump((tr_ids, tr_lab, t_label), open(CACHE, "wb"))
n_tok = sum(map(len, tr_ids))
# distill.npz: prompt+greedy output, labelled
for i in range(len(d["lengths"])):
    n = d["lengths"][i]; tr_ids.append(d["input_ids"][i, :n]); lab = d["labels"][i, :n].copy(); lab[-1] = -100; tr_lab.append(lab)
tr_dom = [r["domain"] for r in train] + list(d["groups"])
print(f"labelled {len(train)} prompts, {n_tok} tokens in {t_label:.0f} s ({n_tok / t_label:.0f} tok/s); "
      f"with distill.npz {sum(map(len, tr_ids))} tokens", flush=True)

# held-out: the target's greedy outputs (batched)
t0 = time.perf_counter()
te_enc = [np.array(tok(r["text"], add_special_tokens=False)["input_ids"]) for r in test]
if os.path.exists(CACHE + ".outs"):
    outs = pickle.load(open(CACHE + ".outs", "rb"))
else:
    outs = greedy_outputs(target, te_enc, max_new_tokens=K_NEW, pad_id=tok.eos_token_id, eos_token_ids=[tok.eos_token_id],
                          batch_size=16, progress=False)
    pickle.dump(outs, open(CACHE + ".outs", "wb"))
print(f"held-out greedy outputs: {time.perf_counter() - t0:.0f} s", flush=True)

# vocabulary: most frequent labels and inputs
counts = np.bincount(np.concatenate(tr_lab + tr_ids).clip(0), minlength=target.config.vocab_size)
keep = np.argsort(-counts)[:V - 1]
full2small = np.full(target.config.vocab_size, V - 1); full2small[keep] = np.arange(V - 1)  # V-1 = unknown
lab_all = np.concatenate([l[l >= 0] for l in tr_lab])
print(f"vocab {V}: covers {np.isin(lab_all, keep).mean():.3f} of training labels, "
      f"{np.isin(np.concatenate(outs), keep).mean():.3f} of held-out target outputs", flush=True)

def make_draft(layers=2, width=256):
    cfg = LlamaConfig(vocab_size=V, hidden_size=width, intermediate_size=width * 8 // 3, num_hidden_layers=layers,
                      num_attention_heads=width // 64, num_key_value_heads=width // 64, tie_word_embeddings=True,
                      max_position_embeddings=512)
    return LlamaForCausalLM(cfg)

def train_draft(model, idx, steps, bs=16):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=max(0.05, 2 / steps))
    r = np.random.default_rng(1); model.train(); losses = []
    for s in range(steps):
        b = r.choice(idx, bs); w = max(len(tr_ids[i]) for i in b)
        ids = torch.full((bs, w), V - 1); lab = torch.full((bs, w), -100); m = torch.zeros((bs, w), dtype=torch.long)
        for j, i in enumerate(b):
            n = len(tr_ids[i]); ids[j, :n] = torch.from_numpy(full2small[tr_ids[i]]); m[j, :n] = 1
            l = tr_lab[i]; sl = np.where((l >= 0) & np.isin(l, keep), full2small[l.clip(0)], -100); lab[j, :n] = torch.from_numpy(sl)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=m).logits.reshape(-1, V), lab.reshape(-1), ignore_index=-100)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step()
        losses.append(loss.item())
    model.eval(); return float(np.mean(losses[-20:]))

def acceptance_runs(model):
    """per held-out prompt: the draft's teacher-forced argmax (mapped back) == the target's output token, per output position"""
    res = []
    with torch.inference_mode():
        for e, o in zip(te_enc, outs):
            seq = np.concatenate([e, o]); ids = torch.from_numpy(full2small[seq])[None]
            pred = model(input_ids=ids).logits[0].argmax(-1).numpy()
            pred_full = np.where(pred == V - 1, -1, keep[np.minimum(pred, V - 2)])
            res.append(pred_full[len(e) - 1: len(e) - 1 + len(o)] == o)
    return res

def calls(match, k):
    p, c = 0, 0
    while p < len(match):
        n = 0
        while n < k and p + n < len(match) and match[p + n]: n += 1
        p += n + 1; c += 1
    return c

def step_ms(model, n_new, ctx=100, reps=20):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the world decodes
    try:
        return _step_ms(model, n_new, ctx, reps)
    finally:
        torch.set_num_threads(threads)

def _step_ms(model, n_new, ctx, reps):
    ids = torch.randint(0, 1000, (1, ctx))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values; new = torch.randint(0, 1000, (1, n_new)); ts = []
        for _ in range(reps):
            t = time.perf_counter(); model(new, cache=cache, use_cache=True); ts.append(time.perf_counter() - t); cache.crop(-n_new)
    return float(np.median(ts)) * 1e3

cost = {n: step_ms(target, n) for n in (1, 2, 3, 4, 5)}
print("target ms per call by tokens verified:", {n: round(v, 1) for n, v in cost.items()}, flush=True)
domains = sorted(set(tr_dom))
drafts = {"general": np.arange(len(tr_ids))} | {dm: np.array([i for i, x in enumerate(tr_dom) if x == dm]) for dm in domains}
ONLY = argv[3].split(",") if len(argv) > 3 else list(drafts)
print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}", flush=True)
for name, idx in [(n, drafts[n]) for n in ONLY]:
    model = make_draft(); t0 = time.perf_counter(); loss = train_draft(model, idx, STEPS); secs = time.perf_counter() - t0
    dms = step_ms(model, 1)
    runs = acceptance_runs(model)
    line = [f"{name}: loss {loss:.2f} after {STEPS} steps in {secs:.0f} s; draft {dms:.2f} ms/token"]
    for dom in domains:
        sel = [i for i, r in enumerate(test) if r["domain"] == dom]
        acc = np.mean(np.concatenate([runs[i] for i in sel]))
        best = []
        for k in (1, 2, 3, 4):
            ntok = sum(len(runs[i]) for i in sel); c = sum(calls(runs[i], k) for i in sel)
            sd = ntok * cost[1] / (c * (cost[k + 1] + k * dms))
            best.append(f"k={k} {ntok / c:.2f} tok/call {sd:.2f}x")
        line.append(f"  {dom}: token match {acc:.2f}; " + "; ".join(best))
    print("\n".join(line), flush=True)
