import pytest
import torch

from darkyolo.inference.optimize import inference_copy
from darkyolo.models.io import load_model


@pytest.mark.parametrize("cfg", ["yolov3-tiny", "yolov2-tiny"])
def test_inference_copy_gives_the_same_rows_and_leaves_the_model(cfg):
    model = load_model(cfg).randomize_(seed=0)
    fast = inference_copy(model)
    assert all(layer.bn is None for layer in fast.conv_layers())
    assert any(isinstance(m, torch.nn.LeakyReLU) and m.inplace for m in fast.modules())
    assert not any(isinstance(m, torch.nn.LeakyReLU) and m.inplace for m in model.modules())
    assert all(layer.bn is not None for layer in model.conv_layers() if layer.conv.bias is None)
    x = torch.rand(2, 3, 96, 160)  # a 3x5 last grid: odd sizes at the stride-1 pool
    with torch.inference_mode():
        expected = model(x)
        got = fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
