"""CNNKIT_PROFILE chooses a lesson's budgets."""

import pytest

import cnnkit
from cnnkit.course.profiles import PROFILES


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_environment_variable_selects_the_profile(name, monkeypatch):
    monkeypatch.setenv("CNNKIT_PROFILE", name)
    p = cnnkit.profile()
    assert p.name == name and p.source == "from CNNKIT_PROFILE"
    assert (p.epochs, p.train_size, p.budget_s) == (
        PROFILES[name].epochs, PROFILES[name].train_size, PROFILES[name].budget_s)


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = PROFILES["smoke"], PROFILES["cpu"], PROFILES["gpu"]
    assert smoke.budget_s == 60 and cpu.budget_s == 300
    assert smoke.epochs < cpu.epochs <= gpu.epochs
    assert smoke.train_size < cpu.train_size and gpu.train_size is None
    assert smoke.image_size <= cpu.image_size <= gpu.image_size


def test_value_is_case_and_space_insensitive(monkeypatch):
    monkeypatch.setenv("CNNKIT_PROFILE", " CPU ")
    assert cnnkit.profile().name == "cpu"


def test_unknown_profile_says_which_exist(monkeypatch):
    monkeypatch.setenv("CNNKIT_PROFILE", "fast")
    with pytest.raises(ValueError, match="Unknown profile 'fast': set CNNKIT_PROFILE to one of "
                                         "smoke, cpu, gpu"):
        cnnkit.profile()


@pytest.mark.parametrize("gpu, expected", [(True, "gpu"), (False, "cpu")])
def test_without_the_variable_the_hardware_decides(gpu, expected, monkeypatch):
    monkeypatch.delenv("CNNKIT_PROFILE", raising=False)
    monkeypatch.setattr(cnnkit.course.profiles, "gpu_available", lambda: gpu)
    p = cnnkit.profile()
    assert p.name == expected
    assert "CNNKIT_PROFILE unset" in p.source


def test_printed_profile_names_its_budgets(monkeypatch):
    monkeypatch.setenv("CNNKIT_PROFILE", "smoke")
    text = str(cnnkit.profile())
    assert text.startswith("profile 'smoke' (from CNNKIT_PROFILE): 2 epochs, <= 512 training")
    assert "budget 60 s per notebook" in text


def test_the_profile_names_the_backend_and_its_devices(monkeypatch):
    import keras

    monkeypatch.setenv("CNNKIT_PROFILE", "smoke")
    monkeypatch.setattr(cnnkit.course.profiles, "devices", lambda: ["gpu:0", "gpu:1", "cpu:0"])
    p = cnnkit.profile()
    assert p.device == f"{keras.backend.backend()} backend on gpu:0, gpu:1, cpu:0"
    assert str(p).endswith(f"budget 60 s per notebook; {p.device}")
    assert cnnkit.course.profiles.gpu_available()


def test_devices_lists_at_least_the_cpu():
    assert cnnkit.course.profiles.devices()[-1] == "cpu:0"
