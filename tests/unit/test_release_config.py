"""Release declarations: every key checked once, typos refused naming the known keys, durations read."""

from __future__ import annotations

import pytest
from mpack.infra.errors import MpackError
from mpack.packager.release.config import DEFAULT_BAKE_S, load_releases, parse_duration, parse_release

BASE = {"name": "fraud-prod", "model": "models:/fraud@champion", "function": "fraud"}


def test_a_release_with_build_deploy_and_gate_keys():
    release = parse_release({**BASE, "canary": 10, "bake": "15m", "memory": 2048, "env": {"LOG_LEVEL": "INFO"}, "target": "lambda", "max-p99-ms": 250, "alias": "prod"}, "mpack.toml")
    assert (release.model_name, release.reference, release.alias) == ("fraud", "@champion", "prod")
    assert release.canary == 10.0 and release.bake_s == 900
    assert release.deploy == {"memory_mb": 2048, "environment": ("LOG_LEVEL=INFO",), "alias": "prod"}
    assert release.build == {"target": "lambda"}
    assert release.gates.max_p99_ms == 250.0 and release.gates.max_error_rate == 1.0


def test_defaults_and_a_pinned_version():
    release = parse_release({**BASE, "model": "models:/fraud/03"}, "mpack.toml")
    assert release.reference == "3" and release.canary is None and release.bake_s == DEFAULT_BAKE_S and release.alias == "live"


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({**BASE, "memroy": 512}, "unknown key(s) memroy"),
        ({**BASE, "memory": "lots"}, "memory = 'lots' is not an integer"),
        ({**BASE, "canary": 100}, "not a percentage between 0 and 100"),
        ({**BASE, "canary": True}, "canary = True is not a number"),
        ({**BASE, "bake": "soon"}, "is not a duration"),
        ({**BASE, "model": "runs:/abc/model"}, "is not a registered model"),
        ({**BASE, "model": "models:/fraud"}, "is not a registered model"),
        ({k: v for k, v in BASE.items() if k != "function"}, "function is missing"),
        ({**BASE, "name": "has space"}, "is not usable"),
        ({**BASE, "platform": "azure"}, "cannot be synced"),
        ({**BASE, "max-error-rate": -1}, "gates must be positive"),
        ({**BASE, "env": 3}, "env must be a table"),
        ({**BASE, "max-error-rate": float("nan")}, "gates must be positive"),
        ({**BASE, "max-p99-ratio": float("inf")}, "gates must be positive"),
        ({**BASE, "smoke-test": "bogus"}, "smoke-test = 'bogus' is not one of aws, local, none"),
        ({**BASE, "target": "azure"}, "target = 'azure' is not one of lambda, lambda-image"),
        ({**BASE, "alias": "mpack-sync-lease"}, "the name of mpack sync's lease"),
    ],
)
def test_bad_values_are_refused_by_name(table, said):
    with pytest.raises(MpackError) as error:
        parse_release(table, "mpack.toml: release 1")
    assert said in error.value.message and error.value.hint


def test_files(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[[tool.mpack.release]]\nname = "a"\nmodel = "models:/m@champion"\nfunction = "f"\n')
    releases, source = load_releases(folder=tmp_path)
    assert [r.name for r in releases] == ["a"] and source.name == "pyproject.toml"
    (tmp_path / "mpack.toml").write_text('[[release]]\nname = "a"\nmodel = "models:/m@x"\nfunction = "f"\n[[release]]\nname = "a"\nmodel = "models:/m@y"\nfunction = "g"\n')
    with pytest.raises(MpackError, match="used twice"):
        load_releases(folder=tmp_path)
    (tmp_path / "mpack.toml").write_text('[[release]]\nname = "a"\nmodel = "models:/m@x"\nfunction = "f"\n[[release]]\nname = "b"\nmodel = "models:/n@y"\nfunction = "f"\n')
    with pytest.raises(MpackError, match="two releases deploy to f:live"):
        load_releases(folder=tmp_path)
    (tmp_path / "mpack.toml").write_text("[[release]\n")
    with pytest.raises(MpackError, match="not valid TOML"):
        load_releases(folder=tmp_path)
    with pytest.raises(MpackError, match="does not exist"):
        load_releases(tmp_path / "missing.toml")
    (tmp_path / "mpack.toml").write_text("[deploy]\nfunction = 'f'\n")
    (tmp_path / "pyproject.toml").unlink()
    with pytest.raises(MpackError, match="no releases declared"):
        load_releases(folder=tmp_path)


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("90s", 90), (45, 45), ("2h", 7200), ("90", 90)])
def test_durations(text, seconds):
    assert parse_duration(text, "bake") == seconds
