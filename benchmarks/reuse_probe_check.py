"""Can a knowledge-reuse measure tell the pretrained body from a random one? (issue 12, item 8)

A measure of "source knowledge kept" is only informative if it separates a body that learned the
source (the pretrained MiniLM-L6) from one that never did (the same architecture, randomly
initialised: the from-scratch control). Both bodies read the same pretrained token embeddings (f_s),
as in every run. For each body this prints the source linear-probe accuracy (the runs' probe: a
logistic regression on mean-pooled features of Rotten Tomatoes reviews, several regularisation
strengths C) and the linear CKA of its features to the pretrained body's and to the plain mean of
the token embeddings (what a body that ignores context would pass on). Usage::

    python benchmarks/reuse_probe_check.py [MAX_TOKENS] [SAMPLES]   # defaults: 32 500 (main-cpu's)
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from mona_kit.api import davies_bouldin, linear_cka, linear_probe_accuracy, load_kit, masked_mean


def pooled(forward, f_s, dataset, limit: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled ``forward(tokens, mask)`` of a seeded subset of ``limit`` source samples, and labels."""
    prepared = f_s.prepare(dataset, max_tokens=max_tokens)
    keep = torch.randperm(len(prepared), generator=torch.Generator().manual_seed(0))[:limit].sort().values.tolist()
    feats, labels = [], []
    with torch.no_grad():
        for i in range(0, len(keep), 64):
            batch = torch.utils.data.default_collate([prepared[j] for j in keep[i:i + 64]])
            tokens, mask = f_s(batch)
            feats.append(masked_mean(forward(tokens, mask), mask).float())
            labels.append(batch["y"])
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def main(max_tokens: int = 32, samples: int = 500) -> None:
    torch.set_num_threads(1)
    kit = load_kit()
    entry = kit.backbones.get("minilm-l6")
    pretrained = entry.build({"max_tokens": max_tokens}).eval()
    torch.manual_seed(0)
    random_body = entry.build({"max_tokens": max_tokens, "pretrained": False}).eval()
    f_s = pretrained.source_embedder().eval()
    source = kit.datasets.get("rotten-tomatoes").build({})
    reference, _ = pooled(pretrained, f_s, source.test, samples, max_tokens)
    embeddings_only, _ = pooled(lambda tokens, mask: tokens, f_s, source.test, samples, max_tokens)
    strengths = (0.01, 0.1, 1.0, 10.0)
    print(f"MiniLM-L6 bodies on Rotten Tomatoes ({samples} train / {samples} test samples, {max_tokens} tokens)\n")
    print("| body | " + " | ".join(f"probe acc. C={c}" for c in strengths)
          + " | Davies–Bouldin | CKA to pretrained | CKA to mean token embedding |")
    print("|---" * (len(strengths) + 4) + "|")
    for name, body in (("pretrained", pretrained), ("random init", random_body)):
        xtr, ytr = pooled(body, f_s, source.train, samples, max_tokens)
        xte, yte = pooled(body, f_s, source.test, samples, max_tokens)
        accuracies = [linear_probe_accuracy(xtr, ytr, xte, yte, C=c) for c in strengths]
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in accuracies)
              + f" | {davies_bouldin(xtr, ytr):.2f} | {linear_cka(xte, reference):.3f} | {linear_cka(xte, embeddings_only):.3f} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
