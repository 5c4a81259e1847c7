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
        ({**BASE, "platform": "gcp"}, "platform 'gcp' cannot be synced"),
        ({**BASE, "app": "fraud-scoring"}, "app is for azure releases, not aws"),
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


AZURE = {"name": "fraud-azure", "model": "models:/fraud@champion", "platform": "azure", "app": "fraud-scoring", "resource-group": "ml-serving"}


def test_an_azure_release_takes_its_own_keys():
    table = {**AZURE, "subscription": "sub-1", "storage-connection-string": "UseDevelopmentStorage=true", "package-container": "https://a.blob.core.windows.net/pkgs", "smoke-test": "none", "canary": 10}
    release = parse_release({**table, "instance-memory": 4096, "auth": "anonymous"}, "mpack.toml")
    assert release.platform == "azure" and release.function is None and release.canary == 10.0
    assert release.deploy == {"app": "fraud-scoring", "resource_group": "ml-serving", "subscription": "sub-1", "storage_connection_string": "UseDevelopmentStorage=true", "package_container": "https://a.blob.core.windows.net/pkgs", "smoke_test": "none"}
    assert release.build == {"target": "azure", "instance_memory_mb": 4096, "auth": "anonymous"}  # an azure bundle, whatever the default target
    assert release.place == "ml-serving/fraud-scoring"
    assert parse_release(BASE, "mpack.toml").build == {"target": "lambda"} and parse_release(BASE, "mpack.toml").place == "fraud:live"


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({k: v for k, v in AZURE.items() if k != "app"}, "app is missing (a release on azure needs app, resource-group)"),
        ({k: v for k, v in AZURE.items() if k != "resource-group"}, "resource-group is missing"),
        ({**AZURE, "function": "fraud"}, "function is for aws releases, not azure"),
        ({**AZURE, "memory": 1024, "alias": "live"}, "alias, memory are for aws releases, not azure"),
        ({**AZURE, "smoke-test": "aws"}, "smoke-test = 'aws' is not one of local, none"),
        ({**AZURE, "target": "lambda"}, "target = 'lambda' is not one of azure"),
        ({**AZURE, "instance-memory": 1024}, "instance-memory = 1024 is not one of 512, 2048, 4096"),
        ({**AZURE, "resource-group": 3}, "resource-group = 3 is not a string"),
        ({**BASE, "resource-group": "rg"}, "resource-group is for azure releases, not aws"),
    ],
)
def test_each_platform_checks_its_own_keys(table, said):
    with pytest.raises(MpackError) as error:
        parse_release(table, "mpack.toml: release 1")
    assert said in error.value.message and error.value.hint, error.value.message


def test_two_azure_releases_on_one_app_are_refused(tmp_path):
    (tmp_path / "mpack.toml").write_text('[[release]]\nname = "a"\nmodel = "models:/m@x"\nplatform = "azure"\napp = "f"\nresource-group = "rg"\n' * 1 + '[[release]]\nname = "b"\nmodel = "models:/m@y"\nplatform = "azure"\napp = "f"\nresource-group = "rg"\n[[release]]\nname = "c"\nmodel = "models:/m@z"\nfunction = "f"\n')
    with pytest.raises(MpackError, match="two releases deploy to rg/f"):
        load_releases(folder=tmp_path)


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
