import json

import pytest

from wordconv.config import build_config, load_config_file
from wordconv.errors import ConfigError


def test_defaults_are_kim_textcnn():
    cfg = build_config()
    assert cfg.model.type == "textcnn"
    assert cfg.model.filter_widths == [3, 4, 5] and cfg.model.num_filters == 100
    assert cfg.model.dropout == 0.5 and cfg.model.max_norm == 3.0
    assert cfg.embeddings.dim == 300 and cfg.training.batch_size == 50


def test_dotted_overrides_are_typed():
    cfg = build_config(overrides=["training.lr=0.01", "model.filter_widths=[2,3]", "training.grad_clip=null",
                                  "preprocessing.lowercase=false"])
    assert cfg.training.lr == 0.01
    assert cfg.model.filter_widths == [2, 3]
    assert cfg.training.grad_clip is None
    assert cfg.preprocessing.lowercase is False


def test_model_type_brings_its_own_fields():
    cfg = build_config({"model": {"type": "stacked", "kernel_size": 3}})
    assert cfg.model.type == "stacked" and cfg.model.kernel_size == 3 and cfg.model.pool_size == 5
    with pytest.raises(ConfigError, match=r"model.filter_widths: unknown key"):
        build_config({"model": {"type": "stacked", "filter_widths": [3]}})


def test_every_error_reported_at_once():
    with pytest.raises(ConfigError) as info:
        build_config({"training": {"lr": "fast", "epoch": 3}, "model": {"num_filters": -1}})
    msg = str(info.value)
    assert "training.lr" in msg and "training.epoch: unknown key" in msg and "model.num_filters" in msg


def test_unknown_model_type_lists_registered():
    with pytest.raises(ConfigError, match="unknown model 'lstm'.*textcnn"):
        build_config({"model": {"type": "lstm"}})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        build_config(overrides=["training.lr"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        build_config({"task": "textcat"}, overrides=["task.x=1"])


def test_round_trip_through_json_file(tmp_path):
    cfg = build_config(overrides=["model.type=stacked", "training.epochs=2"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.model_dump(mode="json")))
    again = load_config_file(path)
    assert again == cfg
    assert load_config_file(tmp_path) == cfg  # a model directory works too


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_config_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config_file(listy)


def test_example_configs_are_valid():
    from pathlib import Path

    files = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert files
    for path in files:
        cfg = load_config_file(path)
        assert cfg.model.type in ("textcnn", "stacked")
    kim = load_config_file(files[[p.name for p in files].index("textcnn-kim.yaml")])
    assert kim.model_dump() == build_config({"data": {"fold": 0}}).model_dump()  # documents the defaults


def test_shortcut_values_keep_their_type(tmp_path):
    from wordconv.pipeline import resolve_config

    cfg = resolve_config(None, ["training.lr=0.01"], data="true", model="stacked", epochs=3)
    assert cfg.data.name == "true"  # a file called "true" stays a string, not a boolean
    assert cfg.model.type == "stacked" and cfg.training.epochs == 3 and cfg.training.lr == 0.01


def test_metric_must_fit_the_task():
    assert build_config().training.metric is None  # the task's default: textcat accuracy
    assert build_config({"task": "multilabel", "training": {"metric": "hamming_loss"}}).training.metric == "hamming_loss"
    with pytest.raises(ConfigError, match=r"training.metric: 'pearson' does not apply to task 'textcat'; use one of "
                                          r"accuracy, f1_macro, f1_micro, f1_weighted, loss"):
        build_config(overrides=["training.metric=pearson"])
    with pytest.raises(ConfigError, match=r"training.metric: 'f1_samples' does not apply to task 'regression'.*"
                                          r"mse, mae, rmse, pearson, spearman, loss, accuracy"):
        build_config({"task": "regression", "training": {"metric": "f1_samples"}})


def test_textcat_only_options_are_refused_elsewhere():
    with pytest.raises(ConfigError) as info:
        build_config({"task": "regression", "training": {"class_weights": "balanced", "label_smoothing": 0.1}})
    assert "training.class_weights applies to task textcat only" in str(info.value)
    assert "training.label_smoothing applies to task textcat only" in str(info.value)
    with pytest.raises(ConfigError, match="data.label_separator applies to task multilabel only"):
        build_config({"data": {"label_separator": ";"}})
    with pytest.raises(ConfigError, match="task"):
        build_config({"task": "ranking"})
