"""Profile inheritance (`base:`): the deep merge, its errors, and what the real profiles resolve
to. TensorFlow-free: the TrainingConfig side is in test_training_units.py."""

import pytest
import yaml

from face_sentiment.profiles import (
    apply_overrides,
    load_profile,
    merge_profiles,
    parse_override,
    run_folder,
)

BASE = {
    "training": {"run_name": "base", "epochs": 70, "ema_momentum": 0.999,
                 "stage_filters": [24, 48, 96, 192], "preprocessing": {"method": "clahe",
                                                                       "size": 48}},
    "notebooks": {"01-a": {"n": 8, "seed": 0}, "02-b": {"beam_args": ""}},
    "ship_to": "models/base",
}


@pytest.fixture
def profiles(project_root):
    """Write profiles (name -> dict or YAML text) into the temporary project."""
    folder = project_root / "profiles"
    folder.mkdir()

    def write(**named):
        for name, content in named.items():
            text = content if isinstance(content, str) else yaml.safe_dump(content)
            (folder / f"{name}.yaml").write_text(text)
        return folder
    return write


def test_a_profile_without_base_is_read_as_written(profiles):
    profiles(base=BASE)
    assert load_profile("base") == BASE


def test_child_keys_override_mappings_merge_and_lists_are_replaced(profiles):
    profiles(base=BASE, child={
        "base": "base",
        "training": {"run_name": "child", "stage_filters": [8], "preprocessing": {"size": 64}},
        "notebooks": {"01-a": {"n": 4}, "03-c": {"x": 1}},
    })
    assert load_profile("child") == {
        "training": {"run_name": "child", "epochs": 70, "ema_momentum": 0.999,
                     "stage_filters": [8],  # replaced whole, not merged item by item
                     "preprocessing": {"method": "clahe", "size": 64}},
        # per notebook: 01-a keeps the base's seed, 02-b is the base's, 03-c is new
        "notebooks": {"01-a": {"n": 4, "seed": 0}, "02-b": {"beam_args": ""}, "03-c": {"x": 1}},
        "ship_to": "models/base",
    }
    assert load_profile("base") == BASE  # the base is not modified by resolving a child


def test_null_replaces_the_base_value_and_an_empty_mapping_inherits(profiles):
    profiles(base=BASE,
             off="base: base\ntraining:\n  ema_momentum:\nnotebooks:\nship_to: null\n",
             keep="base: base\ntraining: {}\nnotebooks: {}\n")
    off = load_profile("off")
    assert off["training"]["ema_momentum"] is None and off["training"]["epochs"] == 70
    assert off["notebooks"] is None and off["ship_to"] is None
    assert load_profile("keep") == BASE


def test_a_chain_of_bases_resolves_from_the_root(profiles):
    profiles(base=BASE,
             middle={"base": "base", "training": {"epochs": 5, "run_name": "middle"}},
             leaf={"base": "middle", "training": {"run_name": "leaf"}})
    training = load_profile("leaf")["training"]
    assert (training["run_name"], training["epochs"], training["ema_momentum"]) == (
        "leaf", 5, 0.999)
    assert run_folder("leaf") == "runs/leaf"


def test_a_missing_base_names_the_file_that_asks_for_it(profiles):
    folder = profiles(child={"base": "gone", "training": {"run_name": "child"}})
    with pytest.raises(FileNotFoundError) as error:
        load_profile("child")
    message = str(error.value)
    assert f"{folder.resolve() / 'child.yaml'} has `base: gone`" in message
    assert str(folder.resolve() / "gone.yaml") in message and "available: ['child']" in message


def test_an_inheritance_cycle_is_an_error_naming_the_files(profiles):
    folder = profiles(a={"base": "b"}, b={"base": "c"}, c={"base": "a"},
                      self_={"base": "self_"})
    with pytest.raises(ValueError, match="profile inheritance cycle") as error:
        load_profile("a")
    names = [folder.resolve() / f"{n}.yaml" for n in ("a", "b", "c", "a")]
    assert " -> ".join(map(str, names)) in str(error.value)
    with pytest.raises(ValueError, match="cycle"):
        load_profile("self_")


@pytest.mark.parametrize("base", ["[3]", "''", "3", "{a: 1}", "[a, '']"])
def test_base_must_name_a_profile(profiles, base):
    profiles(child=f"base: {base}\n")
    with pytest.raises(ValueError, match="`base:` must name a profile"):
        load_profile("child")


def test_several_bases_merge_in_order_under_the_child(profiles):
    profiles(recipe="training: {epochs: 60, seed: 1, family: vgg}\nnotebooks: {nb04: {n: 1}}\n",
             shape="training: {family: resnet, stage_filters: [16, 32]}\n",
             child="base: [recipe, shape]\ntraining: {seed: 7}\n",
             loop="base: [recipe, loop]\n")
    assert load_profile("child") == {
        "training": {"epochs": 60, "seed": 7, "family": "resnet", "stage_filters": [16, 32]},
        "notebooks": {"nb04": {"n": 1}}}
    with pytest.raises(ValueError, match="cycle"):
        load_profile("loop")


def test_merge_profiles_copies_instead_of_modifying():
    base = {"a": {"b": 1}}
    merged = merge_profiles(base, {"a": {"c": 2}})
    assert merged == {"a": {"b": 1, "c": 2}} and base == {"a": {"b": 1}}


def test_run_folder_needs_a_run_name(profiles):
    profiles(bare={"training": {"epochs": 1}})
    with pytest.raises(ValueError, match="no training.run_name"):
        run_folder("bare")



# --- overrides (--set KEY=VALUE) --------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("training.epochs=3", ("training.epochs", 3)),
    ("training.learning_rate=1e-3", ("training.learning_rate", 0.001)),  # YAML 1.2 reads
    ("training.deterministic=true", ("training.deterministic", True)),
    ("training.ema_momentum=null", ("training.ema_momentum", None)),
    ("training.ema_momentum=", ("training.ema_momentum", None)),  # as `key:` in YAML
    ("training.run_name=a=b", ("training.run_name", "a=b")),  # the first = splits
    ("training.run_name='007'", ("training.run_name", "007")),  # quoted: stays text
    ("training.stage_filters=[8, 16]", ("training.stage_filters", [8, 16])),
])
def test_an_override_is_a_dotted_key_and_a_yaml_value(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("training.epochs", "KEY=VALUE"), ("=3", "KEY=VALUE"), ("training..epochs=3", "KEY=VALUE"),
    ("training.preprocessing={method: clahe}", "one setting at a time"),
    ("training.run_name=[a", "not a YAML value"),
])
def test_a_malformed_override_says_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_override(text)


def test_overrides_apply_after_the_bases_in_order_without_modifying_the_profile(profiles):
    profiles(base=BASE, child={"base": "base", "training": {"run_name": "child"}})
    resolved = load_profile("child", ["training.epochs=3", "training.preprocessing.size=64",
                                      "notebooks.01-a.n=2", "training.epochs=4"])
    assert resolved["training"]["epochs"] == 4 and resolved["training"]["run_name"] == "child"
    assert resolved["training"]["preprocessing"] == {"method": "clahe", "size": 64}
    assert resolved["notebooks"]["01-a"] == {"n": 2, "seed": 0}
    assert load_profile("child")["training"]["epochs"] == 70  # the files are untouched
    profile = load_profile("base")
    apply_overrides(profile, ["training.epochs=1", "notebooks.01-a.n=0"])
    assert profile == BASE
    assert run_folder("child", ["training.run_name=other"]) == "runs/other"


def test_an_unknown_override_key_is_an_error_naming_it(profiles):
    folder = profiles(base=BASE)
    for key, unknown in (("training.epoch", "'training.epoch'"), ("trainin.epochs", "'trainin'"),
                         ("training.preprocessing.methd", "'training.preprocessing.methd'"),
                         ("notebooks.09-x.n", "'notebooks.09-x'")):
        with pytest.raises(ValueError) as error:
            load_profile("base", [f"{key}=1"])
        message = str(error.value)
        assert message.startswith(f"--set {key}: ") and unknown in message
        assert str(folder.resolve() / "base.yaml") in message
    with pytest.raises(ValueError, match="training.epochs is a setting, not a section"):
        load_profile("base", ["training.epochs.x=1"])
    with pytest.raises(ValueError, match="training is a section"):
        load_profile("base", ["training=3"])


def test_declared_settings_and_sections_may_be_set_where_the_profile_leaves_them_out(profiles):
    profiles(bare={"training": {"run_name": "bare"}})
    known = {"training": ("epochs", "preprocessing"), "training.preprocessing": ("method",),
             "retrain": ("epochs",)}
    resolved = load_profile("bare", ["training.epochs=2", "training.preprocessing.method=histeq",
                                     "ship_to=models/bare", "retrain.epochs=1"], known)
    assert resolved == {"training": {"run_name": "bare", "epochs": 2,
                                     "preprocessing": {"method": "histeq"}},
                        "ship_to": "models/bare", "retrain": {"epochs": 1}}
    with pytest.raises(ValueError, match="'training.seed'"):
        load_profile("bare", ["training.seed=1"], known)  # not declared, not in the profile
    with pytest.raises(ValueError, match="'retrain.epochs'"):
        load_profile("bare", ["retrain.epochs=1"])  # a section's keys need declaring too

# --- the real profiles -----------------------------------------------------------------------

def written(root, name: str) -> dict:
    return yaml.safe_load((root / "profiles" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["ci", "ferplus"])
def test_children_of_full_state_only_what_differs(name, real_root):
    full, child = written(real_root, "full"), written(real_root, name)
    assert child["base"] == "full"
    for key, value in child["training"].items():
        assert full["training"].get(key, "<absent>") != value, f"{name}: training.{key}"
    for notebook, section in (child.get("notebooks") or {}).items():
        for key, value in section.items():
            assert full["notebooks"][notebook].get(key) != value, f"{name}: {notebook}.{key}"


def test_ci_keeps_its_one_epoch_settings_and_inherits_the_architecture(real_root):
    ci, full = load_profile("ci"), load_profile("full")
    assert ci["training"]["ema_momentum"] is None and ci["training"]["deterministic"] is True
    assert ci["training"]["stage_filters"] == full["training"]["stage_filters"]
    assert ci["notebooks"]["02-data-validation"] == full["notebooks"]["02-data-validation"]
    assert ci["notebooks"]["01-data-exploration"] == {"samples_per_class": 4, "seed": 0}
    assert "ship_to" not in ci


def test_ferplus_runs_notebooks_with_their_own_defaults(real_root):
    """ferplus.yaml's `notebooks: null` drops full's parameters: reports are made with the full
    profile, and under ferplus a notebook gets only the profile name."""
    from face_sentiment.reports import notebook_parameters, notebook_paths

    ferplus = load_profile("ferplus")
    assert ferplus["notebooks"] is None
    assert ferplus["ship_to"] == "models/ferplus"
    assert ferplus["training"]["ema_momentum"] is None  # ferplus-v1 was trained without it
    notebooks = notebook_paths()
    assert notebooks
    for notebook in notebooks:
        assert notebook_parameters(notebook, "ferplus") == {"profile": "ferplus"}
