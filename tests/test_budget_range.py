"""Property tests: every budget an error names is an exact boundary."""

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from conftest import backend_independent
from conftest import read_positions
from hypothesis import strategies as st

from keras_ssn import BudgetError
from keras_ssn.mapping import AutoGrouping
from keras_ssn.plan import SharedWeight
from keras_ssn.planner import plan_sharing

pytestmark = backend_independent

SHAPES = st.lists(
    st.tuples(st.integers(1, 24), st.integers(1, 24)), min_size=1, max_size=6
)


@st.composite
def plans(draw):
    """An architecture, a grouping (fixed or "auto"), options and a budget
    anywhere around them."""
    shapes = draw(SHAPES)
    weights = [SharedWeight(f"layer_{i}/kernel", s, 0.1) for i, s in enumerate(shapes)]
    if draw(st.booleans()):  # groups="auto": the grouping depends on the budget
        families = [draw(st.sampled_from(["dense", "conv", "embedding"])) for _ in weights]
        group_ids = AutoGrouping(families, [w.size for w in weights])
    else:
        group_count = draw(st.integers(1, len(weights)))
        group_ids = [draw(st.integers(0, group_count - 1)) for _ in weights]
    unshared = draw(st.integers(0, 50))
    full = sum(w.size for w in weights)
    options = {
        "max_templates": draw(st.integers(1, 8)),
        "share": draw(st.sampled_from(["wavg", "emb", "avg"])),
        "upsample": draw(st.sampled_from(["repeat", "inter", "mask", "scale", "wavg"])),
        "placement": draw(st.sampled_from(["auto", "consecutive", "sliding", "rows"])),
    }
    budget = draw(st.integers(1, unshared + 10 * full + 100))
    return weights, group_ids, unshared, budget, options


def plan(weights, group_ids, unshared, budget, options):
    return plan_sharing(weights, group_ids, unshared, budget, **options)


def assert_exact(result, budget):
    total = result.bank_size + result.coefficient_params + result.unshared_params
    assert total == budget
    for group in result.groups:
        read = np.zeros(group.size, bool)
        for path in group.weights:
            spec = result.weights[path]
            read[read_positions(spec)] = True
        assert read.all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_a_budget_either_plans_exactly_or_names_exact_boundaries(case):
    weights, group_ids, unshared, budget, options = case
    try:
        assert_exact(plan(weights, group_ids, unshared, budget, options), budget)
        return
    except BudgetError as error:
        named = error
    if named.smallest is None:
        return  # no budget works with these options; checked below
    assert named.smallest <= named.largest
    for boundary in (named.smallest, named.largest):
        assert_exact(plan(weights, group_ids, unshared, boundary, options), boundary)
    for past in (named.smallest - 1, named.largest + 1):
        with pytest.raises(BudgetError):
            plan(weights, group_ids, unshared, past, options)
    if named.smallest <= budget <= named.largest:
        for near in named.nearest:
            if near is not None:
                assert_exact(plan(weights, group_ids, unshared, near, options), near)
        assert f"budget={budget} cannot be split exactly" in str(named)
    elif budget < named.smallest:
        assert f"below {named.smallest:,}, the smallest budget" in str(named)
    else:
        assert f"above {named.largest:,}, the largest budget" in str(named)


def test_every_grouping_has_a_working_budget():
    weights = [SharedWeight(f"layer_{i}/kernel", (i + 2, 3), 0.1) for i in range(4)]
    for group_ids in ([0, 0, 0, 0], [0, 1, 0, 1], [0, 1, 2, 3]):
        with pytest.raises(BudgetError) as info:
            plan_sharing(weights, group_ids, 7, 1)
        assert info.value.smallest is not None
        assert_exact(plan_sharing(weights, group_ids, 7, info.value.smallest),
                     info.value.smallest)
