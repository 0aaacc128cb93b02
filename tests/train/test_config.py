"""One declaration per setting: every node of every composed config is typed by a schema, and
every key a YAML file in conf/ writes changes what the config would be without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

# Importing a command's module registers its schemas, as running the command does.
import ttl.card.__main__  # noqa: F401
import ttl.data.prepare  # noqa: F401
import ttl.evaluate.__main__  # noqa: F401
import ttl.finetune.config  # noqa: F401
import ttl.generate  # noqa: F401
import ttl.publish  # noqa: F401
import ttl.tokenizer  # noqa: F401
import ttl.train.config  # noqa: F401
from ttl.cli import register_resolvers
from ttl.train.config import model_preset

from ..conftest import ROOT

CONF = ROOT / "conf"
ABSENT = object()


def option_files() -> list[tuple[str, Path, list[str]]]:
    """(config name, file, overrides that make the config include the file) for each YAML file
    whose keys a run composes: the train groups and the fine-tuning recipes and tasks."""
    cases = []
    for path in sorted(CONF.glob("*/*.yaml")):
        group = path.parent.name
        if group in ("commands", "hydra", "finetune", "hparams_search"):
            continue
        if group == "callbacks":
            overrides = [] if path.stem == "default" else [f"callbacks=[{path.stem}]"]
        elif group == "trainer" and path.stem == "gpu":
            overrides = ["trainer=a100"]  # the base the GPU trainers extend
        else:
            overrides = [f"{group}={path.stem}"]
        cases.append(("train", path, overrides))
    for path in sorted((CONF / "finetune" / "task").glob("*.yaml")):
        cases.append(("finetune/finetune", path, [f"task={path.stem}"]))
    for path, task in ((CONF / "finetune" / "recipe" / "classification.yaml", "hatebr"),
                       (CONF / "finetune" / "recipe" / "sft.yaml", "chat")):
        cases.append(("finetune/finetune", path, [f"task={task}"]))
    return cases


def composed(conf_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    """`config_name` ("train", "finetune/finetune", "commands/generate") composed from `conf_dir`
    as its command composes it (the fine-tuning and command configs from their own folders)."""
    register_resolvers()
    folder, _, name = config_name.rpartition("/")
    with initialize_config_dir(str(conf_dir / folder), version_base="1.3"):
        return compose(name, overrides=overrides)


def package_of(path: Path, body_text: str) -> str:
    """Where a file's keys land: its `# @package` header, or its group's path."""
    for line in body_text.splitlines():
        if line.startswith("# @package"):
            package = line.split()[-1]
            return "" if package == "_global_" else package
    return path.parent.name


def leaves(node: object, prefix: str = ""):
    """(dotted key, value) of every leaf a YAML body writes."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


def value_at(cfg: DictConfig, key: str) -> object:
    """The value at `key`, resolved where it can be (one needing Hydra's runtime reads as None)."""
    node = OmegaConf.select(cfg, key, default=ABSENT, throw_on_resolution_failure=False)
    return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node


@pytest.mark.parametrize("config_name, path, overrides", option_files(),
                         ids=lambda value: str(value.relative_to(CONF)) if isinstance(value, Path) else None)
def test_every_key_a_yaml_file_writes_differs_from_what_it_replaces(tmp_path, config_name, path, overrides):
    text = path.read_text()
    body = yaml.safe_load(text) or {}
    defaults = body.pop("defaults", None)
    written = [(key, value) for key, value in leaves(body)
               if not (isinstance(value, str) and "${" in value)]  # wiring, not a setting
    if not written:
        return
    # The same config, composed from a copy of conf/ in which this file keeps only its defaults.
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    (copy / path.relative_to(CONF)).write_text(yaml.safe_dump({"defaults": defaults} if defaults else {}))
    header = "\n".join(line for line in text.splitlines() if line.startswith("# @package"))
    if header:
        target = copy / path.relative_to(CONF)
        target.write_text(header + "\n" + target.read_text())
    package = package_of(path, text)
    without = composed(copy, config_name, overrides)
    with_it = composed(CONF, config_name, overrides)
    repeated = []
    for key, value in written:
        full = f"{package}.{key}" if package else key
        assert value_at(with_it, full) is not ABSENT, f"{path.name}: {full} does not reach the config"
        before = value_at(without, full)
        if before is not ABSENT and before == value_at(with_it, full):
            repeated.append(f"{full}={value!r}")
    assert not repeated, f"{path.relative_to(CONF)} repeats its schema's defaults: {repeated}"


def typed_nodes(node: DictConfig, path: str = "cfg"):
    """(path, typed?) of every mapping node: typed by a dataclass schema, or a mapping whose own
    declaration types its values (`dict[str, int]`, a group of typed nodes)."""
    metadata = node._metadata
    declared_mapping = metadata.object_type is dict and metadata.ref_type not in (None, object) \
        and getattr(metadata.ref_type, "__origin__", None) is dict
    yield path, OmegaConf.get_type(node) not in (dict, None) or declared_mapping
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            yield from typed_nodes(child, f"{path}.{key}")


@pytest.mark.parametrize("config_name, overrides", [
    ("train", []),
    ("train", ["experiment=quickstart", "logger=[csv,wandb]"]),
    ("train", ["experiment=recipe_study", "recipe_switch=[muon,wsd]"]),
    ("train", ["experiment=ttl_160m_modern", "trainer=fsdp"]),
    ("train", ["experiment=ttl_460m", "trainer=multinode"]),
    ("finetune/finetune", ["task=hatebr"]),
    ("finetune/finetune", ["task=chat"]),
    ("commands/generate", []), ("commands/prepare", []), ("commands/evaluate", []),
    ("commands/harness", []), ("commands/card", []), ("commands/publish", []), ("commands/tokenizer", []),
])
def test_every_node_of_a_composed_config_is_typed(config_name, overrides):
    cfg = composed(CONF, config_name, overrides)
    untyped = [path for path, typed in typed_nodes(cfg) if not typed]
    assert not untyped, f"{config_name} {overrides}: untyped nodes {untyped}"


def test_a_typo_or_a_wrong_type_fails_when_the_config_is_composed():
    with pytest.raises(Exception, match="hidden_sise"):
        composed(CONF, "train", ["model.hidden_sise=3"])
    with pytest.raises(Exception, match="model.hidden_size"):
        composed(CONF, "train", ["model.hidden_size=wide"])
    with pytest.raises(Exception, match="optimizer.weight_decay"):
        composed(CONF, "train", ["optimizer.weight_decay=lots"])


def test_a_model_preset_is_its_yaml_over_the_schema():
    tiny = model_preset("tiny")
    assert (tiny["hidden_size"], tiny["vocab_size"], tiny["recipe"]["max_steps"]) == (64, 2048, 150)
    assert tiny["rope_theta"] == 10000.0 and tiny["tie_word_embeddings"] is False  # from the schema
    assert model_preset("160m") == composed(CONF, "train", ["model=160m"]).model
