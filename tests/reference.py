"""A plain ON-LSTM written straight from docs/spec.md §1, one step at a time, for the tests.

Deliberately naive: explicit softmax/cumsum, the master gates repeated C times with
``repeat_interleave``, the symmetric variant's reverse cumulative sum by flipping.
"""

import torch


def ref_cumax(a):
    return torch.cumsum(torch.softmax(a, -1), -1)


def ref_revcumsum(p):
    return torch.flip(torch.cumsum(torch.flip(p, [-1]), -1), [-1])


def ref_step(x, h, c, w_ih, w_hh, b_ih, b_hh, chunk, variant):
    n = h.shape[-1]
    m = n // chunk
    z = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        z = z + b_ih + b_hh
    a_i, a_f = z[:, :m], z[:, m:2 * m]
    o, c_hat, i, f = z[:, 2 * m:].split(n, -1)
    o, c_hat, i, f = torch.sigmoid(o), torch.tanh(c_hat), torch.sigmoid(i), torch.sigmoid(f)
    mf = ref_cumax(a_f)
    mi = 1 - ref_cumax(a_i) if variant == "paper" else ref_revcumsum(torch.softmax(a_i, -1))
    mf_n, mi_n = mf.repeat_interleave(chunk, -1), mi.repeat_interleave(chunk, -1)
    omega = mf_n * mi_n
    f_hat = f * omega + (mf_n - omega)
    i_hat = i * omega + (mi_n - omega)
    c_new = f_hat * c + i_hat * c_hat
    h_new = o * torch.tanh(c_new)
    return h_new, c_new, mf, mi


def ref_direction(x, h, c, params, chunk, variant):
    """x: (T, in) one sequence; returns outputs (T, n), final (h, c), d_f (T,), d_i (T,)."""
    outs, dfs, dis = [], [], []
    h, c = h.unsqueeze(0), c.unsqueeze(0)
    for t in range(x.shape[0]):
        h, c, mf, mi = ref_step(x[t:t + 1], h, c, *params, chunk, variant)
        outs.append(h[0])
        dfs.append(1 - mf.mean())
        dis.append(mi.mean())
    if not outs:
        return x.new_zeros(0, h.shape[-1]), (h[0], c[0]), x.new_zeros(0), x.new_zeros(0)
    return torch.stack(outs), (h[0], c[0]), torch.stack(dfs), torch.stack(dis)


def ref_onlstm(module, seqs, hx=None):
    """Run a multi-layer (bi)directional ON-LSTM on a list of sequences (T_b, in).

    Returns per sequence: outputs (T_b, D*n), h_n (L*D, n), c_n (L*D, n), d_f (L*D, T_b), d_i.
    """
    D = 2 if module.bidirectional else 1
    results = []
    for b, seq in enumerate(seqs):
        layer_in = seq
        hs, cs, dfs, dis = [], [], [], []
        for layer in range(module.num_layers):
            outs = []
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                params = [getattr(module, f"weight_ih{sfx}"), getattr(module, f"weight_hh{sfx}")]
                params += [getattr(module, f"bias_ih{sfx}"), getattr(module, f"bias_hh{sfx}")] if module.bias else [None, None]
                idx = layer * D + d
                if hx is None:
                    h0 = c0 = seq.new_zeros(module.hidden_size)
                else:
                    h0, c0 = hx[0][idx, b], hx[1][idx, b]
                inp = layer_in if d == 0 else torch.flip(layer_in, [0])
                out, (h, c), df, di = ref_direction(inp, h0, c0, params, module.chunk_size, module.master_input)
                if d == 1:
                    out, df, di = torch.flip(out, [0]), torch.flip(df, [0]), torch.flip(di, [0])
                outs.append(out)
                hs.append(h)
                cs.append(c)
                dfs.append(df)
                dis.append(di)
            layer_in = torch.cat(outs, -1)
        results.append((layer_in, torch.stack(hs), torch.stack(cs), torch.stack(dfs), torch.stack(dis)))
    return results
