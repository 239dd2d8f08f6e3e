"""TEMPORARY stand-in for tart.classifier.TartClassifier until it lands. Not committed."""
import numpy as np
import torch


class TartClassifier:
    def __init__(self, head="tart-compact", embedder=None, n_permutations=4, random_state=0):
        self.head, self.embedder, self.n_permutations, self.random_state = head, embedder, n_permutations, random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float32)
        y = list(y)
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError("need at least 2 classes")
        self.X_, self.y_ = X, np.array(y, dtype=object)
        return self

    def _project(self, Q):
        d = self.head.config.n_dims
        allx = np.concatenate([self.X_, Q])
        mu = allx.mean(0)
        u, s, vt = np.linalg.svd(allx - mu, full_matrices=False)
        comp = vt[:d]
        f = lambda A: (A - mu) @ comp.T
        xs, qs = f(self.X_), f(Q)
        sd = xs.std(0); sd = sd + 0.05 * sd.max() + 1e-6
        xs, qs = xs / sd, qs / sd
        pad = lambda A: np.pad(A, ((0, 0), (0, d - A.shape[1])))
        return pad(xs), pad(qs)

    def predict_proba(self, Q):
        Q = np.asarray(Q, dtype=np.float32)
        xs, qs = self._project(Q)
        rng = np.random.default_rng(self.random_state)
        perms = [rng.permutation(len(xs)) for _ in range(self.n_permutations)]
        out = []
        for c in self.classes_:
            yc = (self.y_ == c).astype(np.float32)
            xc = torch.tensor(np.stack([xs[p] for p in perms]))
            ycc = torch.tensor(np.stack([yc[p] for p in perms]))
            xq = torch.tensor(qs)[None].expand(len(perms), -1, -1)
            p = self.head.predict_proba(xc, ycc, xq).mean(0).numpy()
            out.append(p)
        P = np.stack(out, 1) + 1e-9
        return P / P.sum(1, keepdims=True)

    def predict(self, Q):
        return self.classes_[self.predict_proba(Q).argmax(1)]
