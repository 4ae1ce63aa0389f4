"""Config files are validated on load, with errors that name the file and the key."""

from __future__ import annotations

import pytest

from vipml import ConfigError
from vipml.config import load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_key_and_nearest(tmp_path):
    path = write(tmp_path, "tables:\n  orders:\n    colums: {customer_id: x}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "unknown key 'tables.orders.colums'" in msg
    assert "did you mean 'tables.orders.columns'" in msg


def test_unknown_top_level_key_and_table_name(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'timezone'"):
        load_config(write(tmp_path, "timezon: UTC\n"))
    with pytest.raises(ConfigError, match="did you mean 'tables.orders'"):
        load_config(write(tmp_path, "tables:\n  oders: {}\n"))


def test_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'Asia/Seoul'"):
        load_config(write(tmp_path, "timezone: Asia/Seol\n"))
    with pytest.raises(ConfigError, match="tables.orders.format"):
        load_config(write(tmp_path, "tables:\n  orders:\n    format: xml\n"))
    with pytest.raises(ConfigError, match="exactly two columns"):
        load_config(write(tmp_path, "tables:\n  orders:\n    amount_from: [q]\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_env_expansion_and_paths_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_DATA", "/data/x")
    cfg = load_config(write(tmp_path, "data_dir: ${MY_DATA}\n"))
    assert cfg.data_dir == "/data/x"
    monkeypatch.delenv("MY_DATA")
    cfg = load_config(write(tmp_path, "data_dir: ${MY_DATA:-sub}\n"))
    assert cfg.resolve(cfg.data_dir) == (tmp_path / "sub").resolve()


def test_defaults():
    cfg = load_config()
    assert cfg.timezone == "UTC" and cfg.required_tables == ["orders"] and cfg.seed == 0
