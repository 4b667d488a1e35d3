"""mlc.numpy products against NumPy: dot, matmul, vdot, inner, outer, tensordot, einsum, kron,
cross (and vecdot, matvec, vecmat), through mlc.numpy and through plain NumPy inside mlc.jit;
plus the structure of the traced graph (one dot_general per contraction, nothing unrolled)."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from tests.conformance import arrays, broadcast_shapes, check, check_raises, shapes

DTYPES = st.sampled_from([np.float32, np.float64, np.int64])
side = st.integers(0, 4)


def tol(dtype):
    """Summation order differs from NumPy's BLAS: float32 sums of ~10 products of size <= 100."""
    return {"atol": 1e-3} if np.dtype(dtype) == np.float32 else {}


def draw(data, dtype, *shape_list, special=False):
    return [data.draw(arrays(dtype, s, special=special)) for s in shape_list]


# -- matmul ---------------------------------------------------------------------------------
@given(st.data(), broadcast_shapes(2, max_dims=3), side, side, side, st.booleans(), st.booleans())
def test_matmul_batch_broadcasting_and_vectors(data, batch, n, k, m, a_vec, b_vec):
    dtype = data.draw(DTYPES)
    sa = (k,) if a_vec else batch[0] + (n, k)
    sb = (k,) if b_vec else batch[1] + (k, m)
    a, b = draw(data, dtype, sa, sb)
    check(lambda np, a, b: np.matmul(a, b), a, b, **tol(dtype))
    check(lambda np, a, b: a @ b, a, b, **tol(dtype))


@given(st.data(), broadcast_shapes(2, max_dims=3), side, side)
def test_matmul_mixed_dtypes_and_special_values(data, batch, n, k):
    a = data.draw(arrays(np.float32, batch[0] + (n, k), special=True))
    b = data.draw(arrays(np.int64, batch[1] + (k, n)))
    check(lambda np, a, b: np.matmul(a, b), a, b)  # float32 @ int64 is float64 (NaN, inf too)
    check(lambda np, a, b: np.matmul(b, a), a, b)


def test_matmul_size_zero_contraction_is_zeros():
    a, b = np.ones((2, 0), np.float32), np.ones((0, 3), np.float32)
    assert check(lambda np, a, b: a @ b, a, b).tolist() == [[0.0] * 3] * 2
    check(lambda np, a, b: np.matmul(a, b), np.ones((4, 2, 0)), np.ones((1, 0, 3)))


def test_matmul_bool_and_dtype_keyword():
    a = np.array([[True, False], [False, False]])
    check(lambda np, a: np.matmul(a, a), a)  # logical: an OR of ANDs
    x = np.arange(6.0).reshape(2, 3)
    check(lambda np, x: np.matmul(x, x.T, dtype=np.float32), x)
    with pytest.raises(TypeError, match="same_kind"):
        mnp.matmul(x, x.T, dtype=np.int64)


def test_matmul_errors():
    e = check_raises(lambda np, a, b: np.matmul(a, b), np.ones((2, 3)), np.ones((4, 5)))
    assert "mismatch in its core dimension 0" in str(e)
    assert "(size 4 is different from 3)" in str(e)
    assert "(2,3)" in str(e) and "(4,5)" in str(e) and "test_numpy_linalg.py" in str(e)
    check_raises(lambda np, a, b: np.matmul(a, b), np.ones(3), np.ones((4, 5)))
    check_raises(lambda np, a, b: np.matmul(a, b), np.ones((2, 3)), np.ones(4))
    e = check_raises(lambda np, a, b: np.matmul(a, b), np.ones((2, 3)), np.float64(2.0))
    assert "Input operand 1 does not have enough dimensions" in str(e)
    check_raises(lambda np, a, b: np.matmul(a, b), np.float64(2.0), np.ones((2, 3)))
    e = check_raises(lambda np, a, b: a @ b, np.ones((2, 2, 3)), np.ones((3, 3, 4)))
    assert "(2,2,3)" in str(e) and "(3,3,4)" in str(e)


@given(st.data(), broadcast_shapes(2, max_dims=2), side, side, side)
def test_vecdot_matvec_vecmat(data, batch, n, k, m):
    dtype = data.draw(DTYPES)
    v1, v2, mat, matT = draw(data, dtype, batch[0] + (k,), batch[1] + (k,), (n, k), (k, m))
    check(lambda np, a, b: np.vecdot(a, b), v1, v2, **tol(dtype))
    check(lambda np, a, b: np.matvec(a, b), mat, v2, **tol(dtype))
    check(lambda np, a, b: np.vecmat(a, b), v1, matT, **tol(dtype))
    check_raises(lambda np, a, b: np.vecdot(a, b), v1, np.ones(k + 1))


# -- dot, vdot, inner, outer ----------------------------------------------------------------
@given(st.data(), shapes(0, 2, max_side=3), shapes(0, 2, max_side=3), side, side, side)
def test_dot_nd_rules(data, pre_a, pre_b, k, m, which):
    dtype = data.draw(DTYPES)
    sa = [(), (k,), pre_a + (k,)][min(which, 2)]
    sb = [(), (k,), (k, m), pre_b + (k, m)][min(data.draw(st.integers(0, 3)), 3)]
    if sa == () and sb == ():
        sb = (m,)
    a, b = draw(data, dtype, sa, sb)
    check(lambda np, a, b: np.dot(a, b), a, b, **tol(dtype))
    if a.ndim:
        check(lambda np, a, b: a.dot(b), a, b, **tol(dtype))


def test_dot_scalars_bools_and_errors():
    f = np.arange(3, dtype=np.float32)
    check(lambda np, f: np.dot(2, f), f)  # Python scalars are arrays here: float64
    check(lambda np, f: np.dot(f, 2.5), f)
    b = np.array([[True, False], [True, True]])
    check(lambda np, b: np.dot(b, b), b)
    check(lambda np, b: np.dot(b[0], b[1]), b)
    e = check_raises(lambda np, a, b: np.dot(a, b), np.ones((2, 3)), np.ones((4, 5)))
    assert "not aligned" in str(e) and "(2,3)" in str(e)
    check_raises(lambda np, a, b: np.dot(a, b), np.ones(3), np.ones((2, 4, 5)))


@given(st.data(), shapes(0, 3, max_side=3))
def test_vdot_flattens(data, shape):
    dtype = data.draw(DTYPES)
    a, b = draw(data, dtype, shape, shape[::-1])
    check(lambda np, a, b: np.vdot(a, b), a, b, **tol(dtype))


def test_vdot_errors():
    check_raises(lambda np, a, b: np.vdot(a, b), np.ones((2, 3)), np.ones((4, 5)))


@given(st.data(), shapes(0, 2, max_side=3), shapes(0, 2, max_side=3), side, st.booleans())
def test_inner(data, pre_a, pre_b, k, scalar):
    dtype = data.draw(DTYPES)
    a, b = draw(data, dtype, pre_a + (k,), () if scalar else pre_b + (k,))
    check(lambda np, a, b: np.inner(a, b), a, b, **tol(dtype))
    check_raises(lambda np, a, b: np.inner(a, b), a, np.ones(k + 1))


@given(st.data(), shapes(0, 3, max_side=3), shapes(0, 3, max_side=3))
def test_outer(data, sa, sb):
    dtype = data.draw(DTYPES)
    a, b = draw(data, dtype, sa, sb, special=dtype != np.int64)
    check(lambda np, a, b: np.outer(a, b), a, b)
    check(lambda np, a: np.outer(a, 3), a)


# -- tensordot, kron ------------------------------------------------------------------------
@given(st.data(), shapes(0, 2, max_side=3), shapes(0, 2, max_side=3), shapes(0, 2, max_side=3))
def test_tensordot_int_axes(data, pre, common, post):
    dtype = data.draw(DTYPES)
    a, b = draw(data, dtype, pre + common, common + post)
    n = len(common)
    check(lambda np, a, b: np.tensordot(a, b, axes=n), a, b, **tol(dtype))
    check(lambda np, a, b: np.tensordot(a, b, 0), a, b)
    if n == 2:
        check(lambda np, a, b: np.tensordot(a, b), a, b, **tol(dtype))


@given(st.data(), shapes(1, 4, max_side=3), shapes(0, 2, max_side=3))
def test_tensordot_axis_pairs(data, sa, post):
    dtype = data.draw(DTYPES)
    ax = data.draw(st.lists(st.integers(0, len(sa) - 1), unique=True, max_size=len(sa)))
    ax_b = list(np.random.default_rng(len(ax)).permutation(len(ax)))
    sb = [0] * len(ax)
    for i, j in zip(ax, ax_b):
        sb[j] = sa[i]
    a, b = draw(data, dtype, sa, tuple(sb) + post)
    neg = [i - len(sa) for i in ax]  # negative axes too
    check(lambda np, a, b: np.tensordot(a, b, axes=(ax, ax_b)), a, b, **tol(dtype))
    check(lambda np, a, b: np.tensordot(a, b, axes=(neg, ax_b)), a, b, **tol(dtype))


def test_tensordot_single_ints_and_errors():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(15.0).reshape(3, 5)
    check(lambda np, a, b: np.tensordot(a, b, axes=(1, 0)), a, b)
    check(lambda np, a, b: np.tensordot(a, b, axes=1), a, b)
    check(lambda np, a, b: np.tensordot(a[0], a[0], axes=1), a, b)  # 0-d array result
    check_raises(lambda np, a, b: np.tensordot(a, b), a, b)  # shape-mismatch for sum
    check_raises(lambda np, a, b: np.tensordot(a, b, axes=([1], [1])), a, b)
    check_raises(lambda np, a, b: np.tensordot(a, b, axes=([1], [0, 1])), a, b)
    check_raises(lambda np, a, b: np.tensordot(a, b, axes=([1, 1], [0, 0])), a, b)
    check_raises(lambda np, a, b: np.tensordot(a, b, axes=([1], [2])), a, b)  # IndexError


@given(st.data(), shapes(0, 3, max_side=3), shapes(0, 3, max_side=3))
def test_kron(data, sa, sb):
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    a, b = draw(data, dtype, sa, sb)
    check(lambda np, a, b: np.kron(a, b), a, b)
    check(lambda np, a: np.kron(a, 2), a)


# -- cross ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@given(st.data(), broadcast_shapes(2, max_dims=2), st.sampled_from([2, 3]), st.sampled_from([2, 3]))
def test_cross_broadcast(data, batch, na, nb):
    dtype = data.draw(DTYPES)
    a, b = draw(data, dtype, batch[0] + (na,), batch[1] + (nb,), special=dtype != np.int64)
    check(lambda np, a, b: np.cross(a, b), a, b)
    nd = max(len(batch[0]), len(batch[1])) + 1
    c = data.draw(st.integers(-nd, nd - 1))
    check(lambda np, a, b: np.cross(a, b, axisc=c), a, b)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cross_axes_keywords_and_dtypes():
    a = np.arange(12.0).reshape(3, 4)
    b = np.arange(8, dtype=np.int32).reshape(2, 4) - 3
    check(lambda np, a, b: np.cross(a, b, axisa=0, axisb=0, axisc=0), a, b)
    check(lambda np, a, b: np.cross(a, b, axis=0), a, a[::-1])
    check(lambda np, a, b: np.cross(a, b, axisa=0, axisb=-2), a, b)
    check(lambda np, a: np.cross([1, 2, 3], a, axisb=0), a)  # int64 list with float64
    check(lambda np, b: np.cross(b[:, :2].T, b[:, 2:].T), b)  # int32
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        mnp.cross(np.ones(2), np.ones(2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cross_errors():
    check_raises(lambda np, a, b: np.cross(a, b), np.ones(4), np.ones(3))
    check_raises(lambda np, a, b: np.cross(a, b), np.ones((4, 3)), np.ones((5, 3)))
    check_raises(lambda np, a, b: np.cross(a, b, axisa=2), np.ones(3), np.ones(3))
    check_raises(lambda np, a, b: np.cross(a, b, axisc=2), np.ones((2, 3)), np.ones(3))
    check_raises(lambda np, a, b: np.cross(a, b), np.float64(1.0), np.ones(3))
    check_raises(lambda np, a, b: np.cross(a, b), np.ones(3, bool), np.ones(3, bool))


# -- einsum ---------------------------------------------------------------------------------
SPECS = [
    ("ij->ji", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ii->", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iji->ij", [(3, 2, 3)]),
    ("iijj->ij", [(2, 2, 3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("i,i->", [(4,), (4,)]),
    ("i,i", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("ij,jk->ki", [(2, 3), (3, 4)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("ij,jk->", [(2, 3), (3, 4)]),
    ("ij,k->ijk", [(2, 3), (4,)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("bij,bjk->bk", [(5, 2, 3), (5, 3, 4)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("...ij,...jk", [(5, 2, 3), (5, 3, 4)]),
    ("i...->...", [(3, 2, 4)]),
    ("...i->...", [(3, 2, 4)]),
    ("...ii->...i", [(4, 3, 3)]),
    ("i...i", [(3, 2, 3)]),
    ("...,...->...", [(2, 3), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)]),
    ("ij,kl,jl->ik", [(2, 3), (4, 5), (3, 5)]),
    ("i,i,i->i", [(3,), (3,), (3,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),  # a size-1 index broadcasts, as in NumPy
    ("ij,jk->ik", [(2, 0), (0, 4)]),  # empty contraction: zeros
    ("i,->i", [(3,), ()]),
    (",", [(), ()]),
    ("Ab,bA->A", [(2, 3), (3, 2)]),
    ("bA", [(2, 3)]),
]


@pytest.mark.parametrize("spec,shape_list", SPECS, ids=[s for s, _ in SPECS])
@given(data=st.data())
def test_einsum_specs(spec, shape_list, data):
    dtype = data.draw(DTYPES)
    ops = draw(data, dtype, *shape_list)
    check(lambda np, *ops: np.einsum(spec, *ops), *ops, **tol(dtype))


def test_einsum_optimize_dtype_bool_and_python_scalars():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    check(lambda np, a, b: np.einsum("ij,jk", a, b, optimize=True), a, b)
    check(lambda np, a, b: np.einsum("ij,jk", a, b, optimize="greedy"), a, b)
    f32 = a.astype(np.float32)
    check(lambda np, a, b: np.einsum("ij,jk", a, b, dtype=np.float64), f32, f32.T)
    check(lambda np, a: np.einsum("i,->i", a[0], 2), f32)  # 2 is an int64 array: float64
    with pytest.raises(TypeError):
        mnp.einsum("ij,jk", a, b, dtype=np.float32)  # casting='safe'
    t = np.array([[True, False], [True, True]])
    check(lambda np, t: np.einsum("ij,jk", t, t), t)
    check(lambda np, t: np.einsum("ii->", t), t)
    check(lambda np, t: np.einsum("ij->", t), t)
    i32 = np.arange(6, dtype=np.int32).reshape(2, 3)
    check(lambda np, a: np.einsum("ij,kj->ik", a, a), i32)


def test_einsum_sublist_form():
    a, b, c = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4), np.ones((5, 2, 3))
    check(lambda np, a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), a, b)
    check(lambda np, a, b: np.einsum(a, [0, 1], b, [1, 2]), a, b)
    check(lambda np, a, b: np.einsum(a, [0, 1], b, [1, 2], []), a, b)
    check(lambda np, c: np.einsum(c, [Ellipsis, 0, 1], [Ellipsis, 1]), c)
    check(lambda np, a: np.einsum(a, [30, 2], [2, 30]), a)  # 30 is 'e', 2 is 'C'
    check(lambda np, a: np.einsum(a, [1, 1]), a[:, :2])


@pytest.mark.parametrize(
    "spec,shape_list",
    [
        ("ii->i", [(2, 3)]),  # collapsing index sizes differ
        ("ij,jk->ik", [(2, 3), (4, 5)]),  # j: 3 vs 4
        ("ij,jk->ik", [(2, 3)]),  # fewer operands than terms
        ("ij->ik", [(2, 3)]),  # output index never in an input
        ("ij->ii", [(2, 3)]),  # output index repeated
        ("i1->i", [(2, 3)]),  # not a letter
        ("ijk->i", [(2, 3)]),  # too many subscripts
        ("i->", [(2, 3)]),  # too few subscripts and no ellipsis
        ("...i->i", [(2, 3)]),  # ellipsis dims with no '...' in the output
        ("..i", [(3,)]),  # a stray '.'
        ("i,i", [(3,), (3,), (3,)]),  # more operands than terms
    ],
)
def test_einsum_errors(spec, shape_list):
    ops = [np.ones(s) for s in shape_list]
    e = check_raises(lambda np, *ops: np.einsum(spec, *ops), *ops)
    assert "test_numpy_linalg.py" in str(e)


def test_einsum_sublist_errors():
    a = np.ones((2, 3))
    check_raises(lambda np, a: np.einsum(a, [0, 52]), a)
    check_raises(lambda np, a: np.einsum(a, ["a", "b"]), a)


# -- structure of the traced graph ----------------------------------------------------------
def test_matmul_is_one_dot_general():
    A, B = np.ones((64, 32), np.float32), np.ones((32, 16), np.float32)
    g = mlc.trace(lambda a, b: a @ b, A, B)
    assert g.count("dot_general") == 1
    assert len(g) == 3  # two params and the dot_general: nothing unrolled


def test_batched_matmul_does_not_materialize_broadcasts():
    A, W = np.ones((8, 4, 5, 3)), np.ones((3, 2))
    g = mlc.trace(lambda a, w: a @ w, A, W)
    assert g.count("dot_general") == 1 and g.count("broadcast_in_dim") == 0
    g = mlc.trace(lambda a, w: np.matmul(a, w), np.ones((8, 1, 5, 3)), np.ones((4, 3, 2)))
    assert g.count("dot_general") == 1 and g.count("broadcast_in_dim") == 0
    g = mlc.trace(lambda a, w: np.matmul(a, w), np.ones((8, 5, 3)), np.ones((8, 3, 2)))
    (dot,) = [n for n in g if n.op == "dot_general"]
    assert dot.attr("batch") == ((0,), (0,))


def test_einsum_one_dot_general_per_pair():
    a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 5))
    g = mlc.trace(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c), a, b, c)
    assert g.count("dot_general") == 2
    g = mlc.trace(
        lambda a, b: np.einsum("bij,bjk->bik", a, b), np.ones((5, 2, 3)), np.ones((5, 3, 4))
    )
    assert g.count("dot_general") == 1 and g.count("transpose") == 0
    g = mlc.trace(lambda a: np.einsum("ii->i", a), np.ones((3, 3)))
    assert g.count("gather") == 1 and g.count("dot_general") == 0
    g = mlc.trace(lambda a: np.einsum("ij->", a), np.ones((3, 3)))
    assert g.count("reduce_sum") == 1


def test_products_of_size_hundred_are_not_unrolled():
    x = np.ones((100, 100), np.float32)
    for f in (np.dot, np.inner, np.vdot, lambda a, b: np.tensordot(a, b, 2)):
        g = mlc.trace(f, x, x)
        assert g.count("dot_general") == 1 and len(g) < 8


def test_cross_is_elementwise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = mlc.trace(lambda a, b: np.cross(a, b), np.ones((10, 3)), np.ones(3))
    assert g.count("mul") == 6 and g.count("concatenate") == 1
