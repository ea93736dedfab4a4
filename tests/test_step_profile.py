"""The step profile sorts a program's operators into matrix products, elementwise passes and allocations."""

import torch

from beyond_backprop import step_profile


def test_a_matrix_product_and_an_elementwise_pass_are_told_apart():
    a, b = torch.randn(200, 200), torch.randn(200, 200)
    result = step_profile.breakdown(lambda: (a @ b).add_(1.0).exp())
    assert result["seconds"]["gemm"] > 0 and result["seconds"]["elementwise"] > 0
    assert {"aten::add_", "aten::exp"} <= set(result["costliest_elementwise"])
    assert "aten::mm" not in result["costliest_elementwise"]
    assert result["allocations"] >= 2 and result["allocated_bytes"] >= 2 * 200 * 200 * 4
    assert abs(sum(result["share"].values()) - 1.0) < 1e-9
    assert "gemm" in step_profile.describe(result)
