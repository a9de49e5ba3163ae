"""Gradient checks of the second edition's tensor ops: maximum/minimum, sin/cos, norms
and moments, logsumexp, cumsum, flip/roll/repeat, splitting, gather/scatter, sorting,
triangles, bmm and einsum."""

import math

import minideep as md

from . import Case, integers, mask, positive, randn

CASES = [
    # elementwise
    Case("maximum", lambda a, b: md.maximum(a, b), [randn(3, 4), randn(4)]),
    Case("minimum", lambda a, b: md.minimum(a, b), [randn(3, 1), randn(3, 4)]),
    Case("maximum with a number", lambda a: a.maximum(0.3) * a, [randn(5)]),
    Case("sin", lambda a: a.sin(), [randn(3, 4)]),
    Case("cos", lambda a: md.cos(a), [randn(3, 4)]),
    Case("pow function", lambda a, b: md.pow(a, b) + md.pow(a, 2.5), [positive(4), randn(4)]),
    Case("masked_fill", lambda a, m: a.masked_fill(m, 2.0), [randn(3, 4), mask(4)]),
    Case(
        "masked_fill tensor value",
        lambda a, m, v: md.masked_fill(a, m, v),
        [randn(3, 4), mask(3, 4), randn()],
    ),
    Case("triu", lambda a: a.triu(), [randn(3, 4)]),
    Case("tril batched diagonal", lambda a: md.tril(a, -1), [randn(2, 4, 3)]),
    Case("bmm", lambda a, b: md.bmm(a, b), [randn(2, 3, 4), randn(2, 4, 2)]),
    # reductions and moments
    Case("norm 2", lambda a: a.norm(), [randn(3, 4)]),
    Case("norm 2 dim keepdim", lambda a: a.norm(dim=1, keepdim=True), [randn(3, 4)]),
    Case("norm 1", lambda a: a.norm(p=1, dim=0), [randn(3, 4)]),
    Case("norm 3", lambda a: md.norm(a, 3, dim=(0, 2)), [randn(2, 3, 2)]),
    Case("norm 0.5", lambda a: a.norm(p=0.5, dim=-1), [randn(3, 4)]),
    Case("norm inf", lambda a: a.norm(p=math.inf, dim=1), [randn(3, 4)]),
    Case("norm -inf", lambda a: a.norm(p=-math.inf), [randn(3, 4)]),
    Case("norm 0", lambda a: a.norm(p=0, dim=0) + a.sum(), [randn(3, 4)]),
    Case("var correction", lambda a: a.var(dim=1, correction=0), [randn(3, 5)]),
    Case("std", lambda a: a.std(dim=0, keepdim=True), [randn(5, 3)]),
    Case("std all unbiased", lambda a: md.std(a, unbiased=False), [randn(4, 3)]),
    Case("logsumexp", lambda a: a.logsumexp(dim=1), [randn(3, 4)]),
    Case("logsumexp dims keepdim", lambda a: md.logsumexp(a, (0, 2), True), [randn(2, 3, 2)]),
    Case("cumsum", lambda a: a.cumsum(dim=1), [randn(3, 4)]),
    Case("cumsum first dim", lambda a: md.cumsum(a, 0) * a, [randn(4, 2)]),
    # shapes
    Case("flip", lambda a: a.flip(0, 2), [randn(2, 3, 4)]),
    Case("roll", lambda a: a.roll((1, -2), (0, 1)), [randn(3, 4)]),
    Case("roll flattened", lambda a: md.roll(a, 5), [randn(3, 4)]),
    Case("repeat", lambda a: a.repeat(2, 1, 3), [randn(3, 2)]),
    Case("chunk", lambda a: a.chunk(3, dim=1)[2] * 2 + a.chunk(3, 1)[0], [randn(2, 6)]),
    Case("split sections", lambda a: md.split(a, [1, 3], dim=0)[1], [randn(4, 3)]),
    Case("split size", lambda a: md.cat(a.split(2, dim=1)[::-1], dim=1), [randn(2, 5)]),
    Case("unbind", lambda a: md.stack(a.unbind(1)[::-1], 0), [randn(2, 3)]),
    # gather, scatter, select
    Case("gather", lambda a, i: a.gather(1, i), [randn(3, 4), integers(4, 3, 5)]),
    Case("gather smaller index", lambda a, i: md.gather(a, 0, i), [randn(4, 3), integers(4, 2, 2)]),
    Case(
        "scatter_add",
        lambda a, s, i: a.scatter_add(1, i, s),
        [randn(3, 4), randn(3, 5), integers(4, 3, 5)],
    ),
    Case(
        "scatter_add larger src",
        lambda a, s, i: md.scatter_add(a, 0, i, s),
        [randn(3, 4), randn(4, 5), integers(3, 2, 4)],
    ),
    Case("index_select", lambda a: a.index_select(1, md.tensor([3, 0, 3])), [randn(2, 4)]),
    # sorting (random inputs have no ties)
    Case("sort", lambda a: a.sort(dim=1).values, [randn(3, 4)]),
    Case("sort descending", lambda a: md.sort(a, 0, descending=True)[0], [randn(4, 3)]),
    Case("topk", lambda a: a.topk(2).values, [randn(3, 5)]),
    Case("topk smallest", lambda a: md.topk(a, 3, dim=0, largest=False)[0], [randn(4, 2)]),
    # einsum: the backward of each operand is an einsum too
    Case("einsum matmul", lambda a, b: md.einsum("ij,jk->ik", a, b), [randn(3, 4), randn(4, 2)]),
    Case(
        "einsum batched implicit",
        lambda a, b: md.einsum("bij,bjk", a, b),
        [randn(2, 3, 4), randn(2, 4, 2)],
    ),
    Case(
        "einsum ellipsis broadcast",
        lambda a, b: md.einsum("...ij,...jk->...ik", a, b),
        [randn(2, 1, 3, 4), randn(3, 4, 2)],
    ),
    Case("einsum diagonal", lambda a: md.einsum("ii->i", a), [randn(3, 3)]),
    Case("einsum trace", lambda a: md.einsum("ii", a), [randn(3, 3)]),
    Case("einsum sum and transpose", lambda a: md.einsum("ijk->kj", a), [randn(2, 3, 4)]),
    Case("einsum outer", lambda a, b: md.einsum("i,j", a, b), [randn(3), randn(4)]),
    Case(
        "einsum size-1 broadcast",
        lambda a, b: md.einsum("ij,j->i", a, b),
        [randn(3, 1), randn(4)],
    ),
    Case(
        "einsum three operands",
        lambda a, b, c: md.einsum("ij,jk,kl->il", a, b, c),
        [randn(2, 3), randn(3, 4), randn(4, 2)],
    ),
    Case(
        "einsum attention scores",
        lambda q, k: md.einsum("bhqd,bhkd->bhqk", q, k),
        [randn(1, 2, 3, 4), randn(1, 2, 5, 4)],
    ),
    Case(
        "einsum repeated in one operand, kept",
        lambda a, b: md.einsum("iij,j->ij", a, b),
        [randn(3, 3, 2), randn(2)],
    ),
]
