"""The learned assertion classifier: training on a handful of examples, saving and loading its folder, the
combination with the rules, and the choice of fill thresholds (real backbone, real rules, CPU)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.assertion import AssertionStage, load, load_rules
from engine.assertion_learned import (
    CombinedAssertionStage,
    LearnedAssertion,
    combination,
    combination_gate,
    gate_allows,
    model_folder,
    needs_model,
    save_model,
)
from engine.evaluation.assertion_combine import choose, fill_in
from engine.sections import load as load_sections
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.training.assertion import DEFAULT_CONFIG, Example, cap_sources, train
from engine.types import TRAITS

SENTENCES = [
    ("Patient denies chest pain.", "chest pain", {"negated"}),
    ("Return to the ER if you develop fever.", "fever", {"hypothetical"}),
    ("She has a history of asthma.", "asthma", {"historical"}),
    ("Her mother had breast cancer.", "breast cancer", {"family"}),
    ("Possible pneumonia on the left.", "pneumonia", {"possible"}),
    ("He has a cough today.", "cough", set()),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A one-layer classifier trained for a few steps on six sentences, saved like a shipped model."""
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    stage, sections = load_rules(settings), load_sections(settings)
    examples = []
    for text, finding, gold in SENTENCES * 4:
        start = text.index(finding)
        item = stage.model_inputs(text, [(start, start + len(finding))], sections.detect(text))[0]
        examples.append(Example(item, [float(t in gold) for t in TRAITS], [1.0] * len(TRAITS), "test"))
    config = {**DEFAULT_CONFIG, "layers": 1, "version": "assertion-test", "train_batch": 8, "lr": 1e-3}
    net, _ = train(examples, config, epochs=40, log=lambda _m: None)
    folder = tmp_path_factory.mktemp("models") / "assertion"
    save_model(net, config, folder)
    return folder


@pytest.fixture(scope="module")
def rule_parts():
    """The shipped rules and section detector on CPU (loaded once for the module)."""
    settings = Settings(device="cpu")
    return load_rules(settings), load_sections(settings)


def test_saved_folder_describes_itself_and_loads(tiny_model: Path) -> None:
    config = json.loads((tiny_model / "config.json").read_text(encoding="utf-8"))
    assert config["labels"] == list(TRAITS) and config["version"] == "assertion-test" and config["layers"] == 1
    model = LearnedAssertion(tiny_model)
    text = "Patient denies chest pain."
    probs = model.predict([(text, 15, 25, (0, len(text)), None)])[0]
    assert set(probs) == set(TRAITS) and all(0.0 <= p <= 1.0 for p in probs.values())


def test_training_learns_the_examples(tiny_model: Path, rule_parts) -> None:
    model = LearnedAssertion(tiny_model)
    stage, sections = rule_parts
    right = 0
    for text, finding, gold in SENTENCES:
        start = text.index(finding)
        item = stage.model_inputs(text, [(start, start + len(finding))], sections.detect(text))[0]
        probs = model.predict([item])[0]
        right += {t for t, p in probs.items() if p >= 0.5} == gold
    assert right >= 4  # six sentences seen 160 times: a model that learned nothing gets at most the plain one


def test_combined_never_overrides_rules_negation_and_adds_only_fill_traits(tiny_model: Path, rule_parts) -> None:
    rules, sections = rule_parts
    model = LearnedAssertion(tiny_model)
    text = "Patient denies chest pain. He has a cough today."
    spans = [(15, 25), (36, 41)]
    everything = CombinedAssertionStage(rules, model, {t: 0.0 for t in TRAITS})  # threshold 0: model always adds
    judged = everything.judge(text, spans, sections.detect(text))
    assert judged[0].traits == rules.judge(text, spans, sections.detect(text))[0].traits == ["negated"]
    assert set(judged[1].traits) == set(TRAITS)  # the plain finding took every trait the fill allowed
    none = CombinedAssertionStage(rules, model, {})
    assert [j.traits for j in none.judge(text, spans)] == [j.traits for j in rules.judge(text, spans)]


def test_settings_choose_the_stage(tiny_model: Path, tmp_path: Path) -> None:
    model_dir = tiny_model.parent
    base = replace(Settings(device="cpu"), model_dir=model_dir)
    assert isinstance(load(replace(base, assertion="rules")), AssertionStage)
    assert isinstance(load(replace(base, assertion="auto")), AssertionStage)  # no combine.fill: rules alone
    assert isinstance(load(replace(base, assertion="combined")), CombinedAssertionStage)
    config = json.loads((tiny_model / "config.json").read_text(encoding="utf-8"))
    config["combine"] = {"fill": {"hypothetical": 0.9}}
    (tiny_model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    try:
        assert combination(tiny_model) == {"hypothetical": 0.9}
        assert isinstance(load(replace(base, assertion="auto")), CombinedAssertionStage)
    finally:
        del config["combine"]
        (tiny_model / "config.json").write_text(json.dumps(config), encoding="utf-8")


def test_choose_keeps_a_fill_only_where_no_dev_set_loses() -> None:
    gold = [{"hypothetical"}, set(), {"historical"}, set()]
    rules = [set(), set(), set(), set()]
    probs = [
        {"negated": 0, "family": 0, "hypothetical": 0.95, "possible": 0, "historical": 0.0},
        {"negated": 0, "family": 0, "hypothetical": 0.65, "possible": 0, "historical": 0.6},
        {"negated": 0, "family": 0, "hypothetical": 0.0, "possible": 0, "historical": 0.55},
        {"negated": 0, "family": 0, "hypothetical": 0.0, "possible": 0, "historical": 0.6},
    ]
    fill, metrics = choose({"mts-dev [all]": {"gold": gold, "rules": rules, "probs": probs}})
    assert fill == {"hypothetical": 0.7}  # 0.5/0.6 add a false hypothetical; historical 0.5 gains F1
    # but loses assertion accuracy (two false for one true), 0.6 only adds false ones
    assert fill_in(rules, probs, fill) == [{"hypothetical"}, set(), set(), set()]
    assert metrics["mts-dev [all]"]["combined"]["hypothetical"]["f1"] == 1.0


def test_cap_sources_samples_large_sources_only() -> None:
    item = ("x", 0, 1, (0, 1), None)
    examples = [Example(item, [0.0] * 5, [1.0] * 5, "big") for _ in range(10)]
    examples[7] = Example(item, [float(t == "hypothetical") for t in TRAITS], [1.0] * 5, "big")
    examples += [Example(item, [1.0] * 5, [1.0] * 5, "small") for _ in range(3)]
    kept = cap_sources(examples, 4)
    assert [ex.source for ex in kept].count("big") == 4 and [ex.source for ex in kept].count("small") == 3
    assert examples[7] in kept  # a rare-trait positive is kept before plain examples
    assert cap_sources(examples, None) == examples
    assert [id(ex) for ex in cap_sources(examples, 4)] == [id(ex) for ex in kept]  # seeded: the same sample


def test_gates_decide_which_findings_the_model_scores() -> None:
    assert gate_allows("any", "hypothetical", set())
    assert gate_allows("cued", "hypothetical", {"hypothetical"}) and not gate_allows("cued", "hypothetical", set())
    assert gate_allows("uncued", "hypothetical", set()) and not gate_allows("uncued", "hypothetical", {"hypothetical"})
    fill = {"hypothetical": 0.9}
    assert not needs_model(["negated"], {"hypothetical"}, fill, "any")  # the rules' negation is never touched
    assert not needs_model(["hypothetical"], {"hypothetical"}, fill, "any")  # nothing left to add
    assert needs_model([], set(), fill, "any") and not needs_model([], set(), fill, "cued")
    assert needs_model(["historical"], {"hypothetical"}, fill, "cued")


def test_cued_gate_adds_only_where_a_rule_cue_is_in_the_sentence(tiny_model: Path, rule_parts) -> None:
    rules, sections = rule_parts
    model = LearnedAssertion(tiny_model)
    # "cough" lies before "return if" (a forward cue): the cue is in the sentence, its scope misses the finding.
    text = "He has a cough today, but return if fever. She has a rash."
    spans = [(9, 14), (52, 56)]
    assert [j.traits for j in rules.judge(text, spans, sections.detect(text))] == [[], []]
    always = {"hypothetical": 0.0}  # threshold 0: wherever the gate lets the model decide, it adds
    cued = CombinedAssertionStage(rules, model, always, "cued").judge(text, spans, sections.detect(text))
    assert [j.traits for j in cued] == [["hypothetical"], []]
    assert cued[0].trigger is None  # a trait the model added has no trigger word
    uncued = CombinedAssertionStage(rules, model, always, "uncued").judge(text, spans, sections.detect(text))
    assert [j.traits for j in uncued] == [[], ["hypothetical"]]


def test_shipped_model_is_the_default_and_rules_setting_turns_it_off() -> None:
    folder = model_folder(DEFAULT_MODEL_DIR)
    assert folder is not None
    assert combination(folder) == {"hypothetical": 0.9} and combination_gate(folder) == "cued"
    stage = load(Settings(device="cpu"))
    assert isinstance(stage, CombinedAssertionStage) and stage.gate == "cued"
    assert stage.version.startswith("context-rules-") and stage.version.endswith(json.loads(
        (folder / "config.json").read_text(encoding="utf-8"))["version"])
    assert isinstance(load(replace(Settings(device="cpu"), assertion="rules")), AssertionStage)
