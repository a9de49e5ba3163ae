"""Einstein summation: ``einsum("bij,bjk->bik", a, b)``.

Each operand's dimensions get letters; the output keeps the letters after ``->`` and
every other letter is summed over. PyTorch's syntax: letters ``a-zA-Z``, ``...`` for
the dimensions not named (broadcast between operands, right-aligned), spaces ignored,
and without ``->`` the output is the letters that appear exactly once, in alphabetical
order (capitals first), after the ``...`` dimensions.

The equation is first rewritten with a letter for every dimension (``...`` replaced by
unused letters), so the forward is one ``xp.einsum`` and the backward is another:

    out[o] = sum over the other letters of  A[s_1] * B[s_2] * ...
    dL/dA[s_1] = sum over the letters not in s_1 of  dL/dout[o] * B[s_2] * ...

that is ``einsum("o,s_2,...->s_1", grad, B, ...)``. Two cases need a constant operand:
a letter found only in ``A`` (summed in the forward) is broadcast back by a ones vector,
and a letter repeated in ``A`` (a diagonal, ``ii->i``) is written out with an identity
matrix, because an einsum output cannot repeat a letter. Where ``A`` broadcast (size 1
against n, or n against 1) the engine's ``unbroadcast`` or a broadcast puts the gradient
back in ``A``'s shape.
"""

from __future__ import annotations

import string

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor

LETTERS = string.ascii_uppercase + string.ascii_lowercase  # PyTorch's (and NumPy's) order


class Einsum(Function):
    """out = einsum(equation, *operands), ``equation`` explicit (``"ij,jk->ik"``), with
    one letter per dimension (see the module docstring for the gradient). The operands
    come first, so that they are saved in argument order."""

    @staticmethod
    def forward(ctx, *operands, equation):
        xp = get_array_module(operands[0])
        ctx.equation = equation
        ctx.save_for_backward(*operands)
        # optimize=True contracts pairwise through tensordot (BLAS): NumPy's default loop
        # is orders of magnitude slower on matrix-sized operands
        return xp.einsum(equation, *operands, optimize=True)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        inputs, output = _split_equation(ctx.equation)
        return tuple(
            _operand_gradient(grad, operands, inputs, output, k) if wanted else None
            for k, wanted in enumerate(ctx.needs_input_grad)
        )


def _split_equation(equation: str) -> tuple[list[str], str]:
    lhs, output = equation.split("->")
    return lhs.split(","), output


def _operand_gradient(grad, operands, inputs: list[str], output: str, k: int):
    """dL/d operands[k] as an einsum of ``grad`` and the other operands."""
    data = grad.data if isinstance(grad, Tensor) else grad
    xp = get_array_module(data)  # the array module, also when grad is a Tensor
    sizes = _letter_sizes(operands, inputs)
    target = inputs[k]
    terms = [output] + [s for j, s in enumerate(inputs) if j != k]
    args = [grad] + [o for j, o in enumerate(operands) if j != k]
    present = set("".join(terms))
    unused = iter(c for c in LETTERS if c not in set("".join(inputs)) | set(output))
    out_letters = []
    for c in target:
        if c in out_letters:  # a repeated letter: a fresh one, tied to it by an identity
            fresh = next(unused)
            out_letters.append(fresh)
            terms.append(c + fresh)
            args.append(xp.eye(sizes[c], dtype=data.dtype))
        else:
            out_letters.append(c)
            if c not in present:  # summed in the forward: broadcast back with ones
                terms.append(c)
                args.append(xp.ones(sizes[c], dtype=data.dtype))
                present.add(c)
    equation = ",".join(terms) + "->" + "".join(out_letters)
    result = Einsum.run(*args, equation=equation)
    # a dim that operands[k] broadcast against size 1 elsewhere: the same gradient for all
    full = tuple(max(r, n) for r, n in zip(result.shape, operands[k].shape))
    if full != tuple(result.shape):
        result = get_array_module(grad).broadcast_to(result, full)
    return result


def _letter_sizes(operands, inputs: list[str]) -> dict:
    """Each letter's size: the largest over the operands (a size 1 broadcasts)."""
    sizes = {}
    for o, s in zip(operands, inputs):
        for c, n in zip(s, o.shape):
            sizes[c] = max(sizes.get(c, 1), n)
    return sizes


# ---------------------------------------------------------------------------


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over ``operands`` as ``equation`` says (PyTorch's syntax:
    ``"bij,bjk->bik"``, ``"...ij->...ji"``, ``"ii"`` for the trace). The operands may also
    be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    explicit = _explicit(equation, [tuple(o.shape) for o in operands])
    return Einsum.apply(*operands, equation=explicit)


def _explicit(equation: str, shapes: list[tuple]) -> str:
    """The equation with ``->`` and one letter per dimension (``...`` spelt out), after
    PyTorch's checks."""
    equation = equation.replace(" ", "")
    lhs, arrow, output = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        more = "more" if len(shapes) > len(inputs) else "fewer"
        raise ValueError(
            f"einsum(): {more} operands were provided than specified in the equation "
            f"{equation!r}: {len(inputs)} in the equation, {len(shapes)} given"
        )
    for term in [*inputs, output]:
        bad = set(term.replace("...", "")) - set(LETTERS)
        if bad or term.count("...") > 1:
            raise ValueError(
                f"einsum(): invalid subscripts {term!r} in {equation!r}: letters a-z, A-Z "
                f"and at most one '...' per operand"
            )
    used = set(lhs.replace("...", "").replace(",", ""))
    spare = [c for c in LETTERS if c not in used]

    # the dims each '...' covers, right-aligned across operands
    spans = []
    for i, (term, shape) in enumerate(zip(inputs, shapes)):
        named = len(term.replace("...", ""))
        if "..." in term:
            if named > len(shape):
                raise ValueError(
                    f"einsum(): operand {i} of shape {shape} has fewer dimensions than the "
                    f"{named} subscripts of {term!r}"
                )
            spans.append(len(shape) - named)
        elif named != len(shape):
            raise ValueError(
                f"einsum(): the number of subscripts in {term!r} ({named}) does not match "
                f"the number of dimensions of operand {i} of shape {shape}, and no "
                f"ellipsis was given"
            )
        else:
            spans.append(0)
    width = max(spans)
    if width > len(spare):
        raise ValueError(f"einsum(): too many dimensions for the letters left in {equation!r}")
    ellipsis = "".join(spare[:width])
    inputs = [t.replace("...", ellipsis[width - n :]) for t, n in zip(inputs, spans)]

    if arrow:
        for c in output.replace("...", ""):
            if output.count(c) > 1:
                raise ValueError(f"einsum(): output subscript {c} appears more than once")
            if c not in used:
                raise ValueError(
                    f"einsum(): output subscript {c} does not appear in the equation for "
                    f"any input operand"
                )
        output = output.replace("...", ellipsis)  # without '...' those dims are summed
    else:
        counts = {c: "".join(inputs).count(c) for c in used}
        output = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1))

    sizes = {}
    for i, (term, shape) in enumerate(zip(inputs, shapes)):
        seen = {}
        for c, n in zip(term, shape):
            if c in seen and seen[c] != n:
                raise ValueError(
                    f"einsum(): subscript {c} is repeated for operand {i} (shape {shape}) "
                    f"but the sizes don't match, {seen[c]} != {n}"
                )
            seen[c] = n
            if n != 1 and sizes.get(c, 1) not in (1, n):
                raise ValueError(
                    f"einsum(): subscript {c} has size {n} for operand {i} (shape {shape}) "
                    f"which does not broadcast with previously seen size {sizes[c]}"
                )
            sizes[c] = max(sizes.get(c, 1), n)
    return ",".join(inputs) + "->" + output
