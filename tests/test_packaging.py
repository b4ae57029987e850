"""What a user installing the wheel sees: the license, the typing marker, readable signatures."""

from __future__ import annotations

import inspect
import pathlib
import tomllib

import learnedidx

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_license_and_typing_marker_ship_in_the_wheel():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # an SPDX expression, not the deprecated table
    assert project["project"]["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "wheel" not in project["build-system"]["requires"]
    assert project["tool"]["setuptools"]["package-data"]["learnedidx"] == ["py.typed"]
    assert (ROOT / "learnedidx" / "py.typed").exists()


def test_constructors_show_their_config_keyword():
    for cls, config in ((learnedidx.RMI, learnedidx.RMIConfig), (learnedidx.PGM, learnedidx.PGMConfig),
                        (learnedidx.RadixSpline, learnedidx.RadixSplineConfig)):
        params = inspect.signature(cls).parameters
        assert list(params)[:2] == ["keys", "values"], cls
        assert params["config"].kind is inspect.Parameter.KEYWORD_ONLY, cls
        assert config.__name__ in str(params["config"].annotation), cls
        assert params["config_fields"].kind is inspect.Parameter.VAR_KEYWORD, cls
