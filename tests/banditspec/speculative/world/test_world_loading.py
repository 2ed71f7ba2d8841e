import json
import shutil

import pytest
import torch
import transformers
from tests.banditspec.speculative.world.checkpoints import llama_world
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

import banditspec.speculative.world.loading as loading
from banditspec.speculative.world import load_models, load_world_config, open_world


def _refuse_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the models were checked")

    for cls in (transformers.AutoModelForCausalLM, transformers.AutoModelForSeq2SeqLM):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def test_every_model_loads_in_eval_mode_on_the_cpu_with_its_dtype(checkpoints, write_world):
    document = llama_world(checkpoints)
    document["models"] = {str(checkpoints.small): {"dtype": "bfloat16"}}
    models = load_models(load_world_config(write_world(document)), progress=False)
    assert isinstance(models.target, LlamaForCausalLM) and not models.encoder_decoder
    assert set(models.drafts) == {str(checkpoints.same), str(checkpoints.small)}
    assert not any(m.training for m in (models.target, *models.drafts.values()))
    assert models.target.dtype == torch.float32 and models.drafts[str(checkpoints.small)].dtype == torch.bfloat16
    assert models.target.device.type == "cpu"
    saved = load_file(checkpoints.same / "model.safetensors")
    assert all(torch.equal(p, saved[n]) for n, p in models.drafts[str(checkpoints.same)].state_dict().items())
    assert models.tokenizer.get_vocab()["cat"] == models.tokenizer("cat")["input_ids"][0]


@pytest.mark.parametrize("progress", [False, True])
def test_local_checkpoints_load_without_transformers_bars_which_are_restored(checkpoints, write_world, capsys,
                                                                             progress):
    shown = transformers.utils.logging.is_progress_bar_enabled()
    load_models(load_world_config(write_world(llama_world(checkpoints))), progress=progress)
    err = capsys.readouterr().err
    assert "Loading weights" not in err and ("loading models" in err) == progress
    assert transformers.utils.logging.is_progress_bar_enabled() == shown


def test_remote_code_stays_off_unless_the_config_turns_it_on(checkpoints, write_world, tmp_path, monkeypatch):
    calls = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        original = cls.from_pretrained
        monkeypatch.setattr(cls, "from_pretrained",
                            lambda *a, _original=original, **k: calls.append(k) or _original(*a, **k))
    load_models(load_world_config(write_world(llama_world(checkpoints))), progress=False)
    assert len(calls) >= 3 * 3 and all(call["trust_remote_code"] is False for call in calls)  # 3 models, 3 loads each

    remote = tmp_path / "remote"
    remote.mkdir()
    marker = tmp_path / "code-ran"
    (remote / "config.json").write_text(json.dumps({"model_type": "custom-remote",
                                                    "auto_map": {"AutoConfig": "custom.Config",
                                                                 "AutoModelForCausalLM": "custom.Model"}}))
    (remote / "custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    document = llama_world(checkpoints)
    document["target"]["model"] = str(remote)
    with pytest.raises(ValueError, match="custom code.*set trust_remote_code = true for it only if you trust"):
        open_world(write_world(document), progress=False)
    assert not marker.exists()


def test_a_draft_with_another_tokenizer_is_refused_before_weights_load(checkpoints, write_world, monkeypatch):
    document = llama_world(checkpoints)
    document["arms"].append({"kind": "draft", "name": "foreign", "model": str(checkpoints.other_tokenizer)})
    _refuse_weights(monkeypatch)
    with pytest.raises(ValueError) as error:
        open_world(write_world(document), progress=False)
    message = str(error.value)
    assert "arm 'foreign'" in message and "is not the target's tokenizer" in message, message
    assert str(checkpoints.other_tokenizer) in message and str(checkpoints.target) in message, message


@pytest.mark.parametrize("target", ["llama", "t5"])
def test_a_draft_of_the_other_family_is_refused_before_weights_load(checkpoints, write_world, monkeypatch, target):
    document = llama_world(checkpoints)
    document["arms"] = [{"kind": "ar", "name": "ar"}, {"kind": "draft", "name": "odd", "model": str(
        checkpoints.t5_draft if target == "llama" else checkpoints.small)}]
    if target == "t5":
        document["target"]["model"] = str(checkpoints.t5_target)
    _refuse_weights(monkeypatch)
    with pytest.raises(ValueError, match="arm 'odd'.*a draft must be of the target's family") as error:
        open_world(write_world(document), progress=False)
    family = "an encoder-decoder" if target == "t5" else "a decoder-only"
    assert f"the target {document['target']['model']} is {family} model" in str(error.value)


class _Opens:
    """Unpickling this opens (creates) a file: a stand-in for code hidden in a pickled checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@pytest.mark.parametrize("with_safetensors", [False, True])
def test_a_pickled_checkpoint_is_never_unpickled_beyond_tensors(checkpoints, write_world, tmp_path, with_safetensors):
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoints.small, folder)
    marker = tmp_path / "unpickled"
    torch.save({**load_file(folder / "model.safetensors"), "extra": _Opens(marker)}, folder / "pytorch_model.bin")
    if not with_safetensors:
        (folder / "model.safetensors").unlink()
    document = llama_world(checkpoints)
    document["arms"][2]["model"] = str(folder)
    path = write_world(document)
    if with_safetensors:  # the safetensors weights alone are read
        assert set(load_models(load_world_config(path), progress=False).drafts) >= {str(folder)}
    else:
        with pytest.raises(ValueError, match="holds more than tensors.*use safetensors"):
            load_models(load_world_config(path), progress=False)
    assert not marker.exists()


def test_a_gguf_model_needs_the_gguf_package(checkpoints, write_world, monkeypatch):
    monkeypatch.setattr(loading, "is_gguf_available", lambda: False)
    document = llama_world(checkpoints)
    document["target"]["gguf_file"] = "model-q4.gguf"
    _refuse_weights(monkeypatch)
    with pytest.raises(ImportError, match="pip install gguf"):
        open_world(write_world(document), progress=False)


def test_a_device_that_is_not_there_is_refused(checkpoints, write_world, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    document = llama_world(checkpoints)
    document["target"]["device"] = "cuda:0"
    with pytest.raises(ValueError, match=r"\[target\] device 'cuda:0' is not available"):
        load_models(load_world_config(write_world(document)), progress=False)
