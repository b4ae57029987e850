"""Low-level Numba tools for the kernels: three LLVM intrinsics, and the options of the
kernels compiled without reference counting (:data:`LEAN_JIT`).

``prefetch(array, index)`` hints the cache line of an element. Batch kernels interleave
independent lookups: while one waits on memory, the next lookups' lines are already on their
way. It lowers to LLVM's ``llvm.prefetch`` (x86: ``prefetcht0``). Where this LLVM does not
accept the intrinsic, or when the environment sets ``LEARNEDIDX_NO_PREFETCH=1``, it compiles to
nothing: answers never depend on it.

``select_unpredictable(cond, a, b)`` is ``a if cond else b`` marked ``!unpredictable``, so LLVM
keeps it a conditional move. Written as a plain ``if``/``else``, the step of a branch-free
search compiles to a ``cmov`` that LLVM's x86 cmov-conversion pass turns back into a branch
(it assumes a condition fed by a load is predictable); a binary search's comparisons are coin
flips, so that branch mispredicts about every other step (numbers: docs/design.md, "Branch-free
selects"; ``python -m bench.kernels binary --n 10M --threads 1``).

``stack_doubles()`` is scratch space on the stack for a kernel that may not allocate (an MLP's
hidden units: :func:`learnedidx._rmi_kernels.mlp_output`).
"""

from __future__ import annotations

import functools
import os

from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Numba options of kernels that allocate no array and return none: compiled without reference
#: counting (Numba's NRT). Inlined helpers rebind their array arguments, and LLVM's pruning
#: keeps the incref/decref pairs that straddle branches: ten atomic operations per RMI lookup,
#: each a full memory barrier on x86, so the lookups' misses could not overlap. Measured here
#: (lognormal keys, 1M lookups, one thread): at 1M keys the RMI's lookup loop 404 -> 216 ns and
#: prediction alone 139 -> 40 ns; at 100M keys RMI batch 189 -> 141 and loop 651 -> 419 ns,
#: BTree batch 300 -> 212, the binary search one lookup at a time 2563 -> 1505 ns. Arrays such a
#: kernel is given are borrowed from its caller, which keeps them alive. Allocating in it fails
#: to compile, and so does calling a kernel that allocates without setting ``_nrt`` itself
#: (Numba's callees inherit the caller's setting unless they set their own).
LEAN_JIT = dict(nogil=True, cache=True, _nrt=False)

_I32 = ir.IntType(32)
_I8P = ir.IntType(8).as_pointer()


def _intrinsic_name() -> str:
    # LLVM 15+ has opaque pointers and mangles the overload as ".p0".
    return "llvm.prefetch.p0" if llvm.llvm_version_info[0] >= 15 else "llvm.prefetch"


@functools.lru_cache(maxsize=None)
def prefetch_supported() -> bool:
    """True when this LLVM verifies a module that calls the prefetch intrinsic."""
    if os.environ.get("LEARNEDIDX_NO_PREFETCH", "") not in ("", "0"):
        return False
    try:
        module = ir.Module(name="prefetch_probe")
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [_I8P]), name="probe")
        builder = ir.IRBuilder(fn.append_basic_block())
        target = ir.Function(module, ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32]), name=_intrinsic_name())
        builder.call(target, [fn.args[0], ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        builder.ret_void()
        llvm.parse_assembly(str(module)).verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no prefetch on this LLVM
        return False


@intrinsic
def prefetch(typingctx, array, index):
    """Hint that ``array[index]`` will be read soon (no bounds check, no effect on results)."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if prefetch_supported():
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
            fnty = ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, _intrinsic_name())
            # read, high temporal locality (keep in all cache levels), data cache
            builder.call(fn, [builder.bitcast(ptr, _I8P), ir.Constant(_I32, 0), ir.Constant(_I32, 3),
                              ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def select_unpredictable(typingctx, cond, a, b):
    """``a if cond else b`` for integers (of their unified type), compiled to a conditional move."""
    if not isinstance(cond, types.Boolean) or not isinstance(a, types.Integer) or not isinstance(b, types.Integer):
        return None
    # Unify (a literal 0 with int64, say) rather than refuse: a refusal makes type inference
    # retry the loop around the call, which slowed compiling a kernel by minutes.
    result = typingctx.unify_types(a, b)
    if not isinstance(result, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        flag = context.cast(builder, args[0], signature.args[0], types.boolean)
        if flag.type != ir.IntType(1):
            flag = builder.trunc(flag, ir.IntType(1))
        x = context.cast(builder, args[1], signature.args[1], result)
        y = context.cast(builder, args[2], signature.args[2], result)
        chosen = builder.select(flag, x, y)
        chosen.set_metadata("unpredictable", builder.module.add_metadata([]))
        return chosen

    return result(cond, a, b), codegen


#: Float64 slots of :func:`stack_doubles`'s scratch.
STACK_DOUBLES = 32


@intrinsic
def stack_doubles(typingctx):
    """A pointer to STACK_DOUBLES uninitialised float64 slots on the calling function's stack.

    Allocated once in the function's entry block (so calling it in a loop does not grow the
    stack), valid until the function returns; index it as ``p[i]``."""

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, ir.DoubleType(), size=STACK_DOUBLES)

    return types.CPointer(types.float64)(), codegen
