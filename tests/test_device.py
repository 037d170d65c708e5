"""Device and precision choice, with torch.cuda mocked so the GPU paths are checked on any machine."""
from __future__ import annotations

from unittest import mock

import pytest
import torch

from deepstation.errors import DeepstationError
from deepstation.training import device as devices


def gpus(count=1, capability=(9, 0), name="NVIDIA H100 80GB HBM3"):
    return mock.patch.multiple(
        torch.cuda, is_available=mock.Mock(return_value=count > 0), device_count=mock.Mock(return_value=count),
        current_device=mock.Mock(return_value=0), get_device_capability=mock.Mock(return_value=capability),
        get_device_name=mock.Mock(return_value=name))


def test_auto_prefers_cuda_then_bf16_on_ampere_and_newer():
    with gpus(capability=(9, 0)):
        plan = devices.plan("auto", "auto")
        assert plan.device == torch.device("cuda", 0) and plan.precision == "bf16"
        assert "H100" in plan.describe()


def test_auto_uses_fp16_with_a_grad_scaler_on_older_gpus():
    with gpus(capability=(7, 0), name="Tesla V100-SXM2-16GB"):
        plan = devices.plan("auto", "auto")
        assert plan.precision == "fp16"
        with mock.patch.object(torch.amp, "GradScaler") as scaler:
            plan.grad_scaler()
        scaler.assert_called_once_with("cuda", enabled=True)


def test_bf16_on_an_old_gpu_is_refused():
    with gpus(capability=(6, 0), name="Tesla P100"), pytest.raises(DeepstationError, match="Tesla P100 is older"):
        devices.plan("cuda", "bf16")


def test_explicit_gpu_index_must_exist():
    with gpus(count=2):
        assert devices.plan("cuda:1", "fp32").device == torch.device("cuda", 1)
        with pytest.raises(DeepstationError, match="2 GPU\\(s\\), cuda:0 to cuda:1"):
            devices.plan("cuda:2", "auto")


def test_cuda_without_a_gpu_says_what_to_do():
    with gpus(count=0), pytest.raises(DeepstationError, match="no CUDA GPU is usable here.*--device cpu"):
        devices.plan("cuda", "auto")


def test_auto_falls_back_to_the_cpu_in_fp32():
    with gpus(count=0), mock.patch.object(devices, "_mps_available", return_value=False):
        plan = devices.plan("auto", "auto")
    assert plan.device == torch.device("cpu") and plan.precision == "fp32"
    assert not plan.grad_scaler().is_enabled()


def test_auto_picks_mps_when_there_is_no_cuda():
    with gpus(count=0), mock.patch.object(devices, "_mps_available", return_value=True):
        assert devices.plan("auto", "auto").device == torch.device("mps")


def test_fp16_on_the_cpu_is_refused_bf16_allowed():
    with pytest.raises(DeepstationError, match="fp16 autocast needs a GPU"):
        devices.plan("cpu", "fp16")
    plan = devices.plan("cpu", "bf16")
    with plan.autocast():
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16


def test_fp32_autocast_does_nothing():
    with devices.plan("cpu", "fp32").autocast():
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32


def test_cli_device_error_is_one_line(tmp_path, table_csv):
    from conftest import cli, table_task, user_error, write_task

    with gpus(count=0):
        line = user_error(cli("train", write_task(tmp_path, table_task(table_csv)), "--device", "cuda"))
    assert "trainer.device" in line


def test_a_cpu_bf16_run_trains(table_csv):
    import deepstation
    from conftest import table_task

    run = deepstation.train(table_task(table_csv, precision="bf16", epochs=2))
    assert run.summary["precision"] == "bf16"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_gpu_run(table_csv):
    import deepstation
    from conftest import table_task

    run = deepstation.train(table_task(table_csv, device="cuda", epochs=2), track=False)
    assert run.summary["device"].startswith("cuda") and run.summary["precision"] in ("bf16", "fp16")
