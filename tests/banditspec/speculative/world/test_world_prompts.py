import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.banditspec.speculative.world.checkpoints import CHAT_TEMPLATE, WORDS, prompt_rows, tokenizer, write_jsonl

from banditspec.bandits.splits import split_of
from banditspec.speculative.world import PromptsConfig, apply_chat_template, query_id, read_prompts


def write_rows(path: Path, rows: list[dict]) -> Path:
    """``rows`` as JSONL, CSV or Parquet, by ``path``'s suffix."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    if path.suffix == ".csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_format_gives_the_same_prompts_ids_groups_and_splits(tmp_path, suffix):
    rows = prompt_rows()
    prompts = read_prompts(PromptsConfig(write_rows(tmp_path / f"p{suffix}", rows), prompt_field="text",
                                         group_field="topic", test_fraction=0.3))
    texts = [r["text"] for r in rows]
    assert prompts.texts == tuple(texts)
    np.testing.assert_array_equal(prompts.ids, [query_id(t) for t in texts])
    assert list(prompts.groups) == [r["topic"] for r in rows]
    assert list(prompts.splits) == [split_of(t, 0.3) for t in texts]


def test_the_split_is_by_query_and_the_seed_only_orders_it(tmp_path):
    prompts = read_prompts(PromptsConfig(write_jsonl(tmp_path / "p.jsonl", prompt_rows()), prompt_field="text",
                                         test_fraction=0.5))
    n_test, n_train = prompts.size("test"), prompts.size("train")
    assert n_test + n_train == 40 and n_test > 0 and n_train > 0
    test = prompts.sample(n_test, split="test", seed=0)
    train = prompts.sample(n_train, split="train", seed=0)
    assert not set(test.texts) & set(train.texts) and not set(test.ids) & set(train.ids)
    other = prompts.sample(n_test, split="test", seed=1)
    assert sorted(other.texts) == sorted(test.texts) and other.texts != test.texts  # same queries, another order
    again = prompts.sample(3, split="test", seed=0)
    assert again.texts == prompts.sample(3, split="test", seed=0).texts and len(set(again.texts)) == 3
    assert again.groups is None
    with pytest.raises(ValueError, match=rf"asked for {n_test + 1} test queries but .*p.jsonl has {n_test}"):
        prompts.sample(n_test + 1, split="test", seed=0)
    with pytest.raises(ValueError, match="split must be one of"):
        prompts.sample(1, split="valid", seed=0)


def test_a_split_and_ids_of_the_users_own_are_kept(tmp_path):
    rows = [{"q": f"the {w} sat", "id": i if i % 2 else f"q{i}", "part": "test" if i < 3 else "train"}
            for i, w in enumerate(WORDS[:8])]
    prompts = read_prompts(PromptsConfig(write_jsonl(tmp_path / "p.jsonl", rows), prompt_field="q", id_field="id",
                                         split_field="part"))
    assert list(prompts.splits) == [r["part"] for r in rows]
    assert list(prompts.ids) == [r["id"] if isinstance(r["id"], int) else query_id(r["id"]) for r in rows]


def test_without_a_split_field_the_id_decides_the_split(tmp_path):
    rows = [{"q": f"the {w} sat", "id": f"query-{i}"} for i, w in enumerate(WORDS)]
    prompts = read_prompts(PromptsConfig(write_jsonl(tmp_path / "p.jsonl", rows), prompt_field="q", id_field="id",
                                         test_fraction=0.5))
    assert list(prompts.splits) == [split_of(r["id"], 0.5) for r in rows]


# (file name, content, fragments the error must hold besides the file name)
BAD_FILES = {
    "json": ("p.jsonl", '{"text": "a"}\n{"text": \n', ["line 2", "not valid JSON"]),
    "missing-field": ("p.jsonl", '{"text": "a"}\n\n{"prompt": "b"}\n', ["line 3", "'text' is missing", "'prompt'"]),
    "empty-prompt": ("p.jsonl", '{"text": ""}\n', ["line 1", "'text'", "non-empty string"]),
    "number-prompt": ("p.jsonl", '{"text": 3}\n', ["line 1", "'text'", "non-empty string"]),
    "not-an-object": ("p.jsonl", '["a"]\n', ["line 1", "object with fields"]),
    "duplicate": ("p.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "a"}\n', ["line 3", "line 1", "unique"]),
    "empty": ("p.jsonl", "\n", ["no prompts"]),
    "csv-column": ("p.csv", "prompt,topic\na,b\n", ["line 2", "'text' is missing"]),
    "csv-short-row": ("p.csv", "topic,text\na\n", ["line 2", "'text'", "got None"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_names_the_line_and_the_field(tmp_path, case):
    name, content, fragments = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_prompts(PromptsConfig(path, prompt_field="text"))
    assert str(path) in str(error.value) and all(f in str(error.value) for f in fragments), str(error.value)


@pytest.mark.parametrize(("field", "rows", "fragments"), [
    ("split", [{"text": "a", "split": "dev"}], ["row 1", "'split'", "'dev'"]),
    ("id", [{"text": "a", "id": 1}, {"text": "b", "id": 1}], ["row 2", "row 1", "id"]),
    ("id", [{"text": "a", "id": -4}], ["row 1", "'id'", "2^63"]),
])
def test_bad_parquet_rows_split_values_and_ids_are_named(tmp_path, field, rows, fragments):
    path = write_rows(tmp_path / "p.parquet", rows)
    config = PromptsConfig(path, prompt_field="text", **{f"{field}_field": field})
    with pytest.raises(ValueError) as error:
        read_prompts(config)
    assert str(path) in str(error.value) and all(f in str(error.value) for f in fragments), str(error.value)


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    path = tmp_path / "p.parquet"
    path.write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        read_prompts(PromptsConfig(path))


def test_the_chat_template_wraps_each_prompt_as_one_user_message():
    assert apply_chat_template(tokenizer(WORDS, chat_template=CHAT_TEMPLATE), ["the cat"]) == [
        "user : the cat assistant :"]
    with pytest.raises(ValueError, match="chat_template.*has no chat template"):
        apply_chat_template(tokenizer(WORDS), ["the cat"])
