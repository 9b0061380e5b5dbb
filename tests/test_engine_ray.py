"""The Ray engine writes the local engine's rows, and each engine counts the other's work as done.

One local Ray instance (2 CPUs) for the module; the corpus is 20 sample articles, chunked 6 at a
time so the 2 actors share 4 chunks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from narratives import tag as tag_stage
from narratives.classifier import ThemeModel
from narratives.cli import cli
from narratives.engine_ray import INSTALL_HINT, RayEngineError, Work, plan_work, tag_ray
from narratives.entities import EntityLinker, load_spacy
from narratives.ingest import ingest
from narratives.kb import load_kb
from narratives.mentions import link_corpus
from narratives.store import Corpus
from narratives.tag import RESULT_QUERIES, result_rows

from conftest import copy_db

ray = pytest.importorskip("ray")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # Ray Data's own context copying touches its deprecated settings.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
KB = ROOT / "corpus" / "sample" / "kb.toml"
MODEL = ROOT / "models" / "themes"
ARTICLES = 20
CHUNK = 6  # 20 articles: 4 chunks, so both actors work and chunking is exercised


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def engines(ray_instance, tmp_path_factory) -> dict[str, object]:
    """The same corpus tagged by the local engine and by the Ray engine (2 actors)."""
    tmp = tmp_path_factory.mktemp("engines")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:ARTICLES]
    source = tmp / "news.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = tmp / "base.db"
    ingest(base, [str(source)], progress=False)
    local_db, ray_db = copy_db(base, tmp / "local.db"), copy_db(base, tmp / "ray.db")
    model = ThemeModel.load(MODEL)
    linker = EntityLinker(load_kb([KB], built=None), nlp=load_spacy())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tag_stage, "CHUNK", CHUNK)
        with Corpus(local_db) as corpus:
            local = (tag_stage.tag(corpus, model, progress=False),)
            local += (link_corpus(corpus, linker, progress=False),)
        with Corpus(ray_db) as corpus:
            run = tag_ray(
                corpus, model_dir=MODEL, kb_files=[KB], built_kb=None, actors=2, progress=False
            )
    return {
        "local_db": local_db,
        "ray_db": ray_db,
        "local": local,
        "ray": run,
        "tmp": tmp,
        "model": model,
        "linker": linker,
    }


def test_ray_engine_writes_the_local_engines_rows(engines):
    local, on_ray = result_rows(engines["local_db"]), result_rows(engines["ray_db"])
    for table in RESULT_QUERIES:
        assert local[table], f"the local engine wrote no {table}"
        assert on_ray[table] == local[table], f"{table} differs between the engines"
    assert len(local["tagged"]) == len(local["linked"]) == ARTICLES


def test_ray_summaries_count_what_the_local_engine_counts(engines):
    tagged, linked = engines["local"]
    run = engines["ray"]
    assert run.actors == 2 and run.chunks == -(-ARTICLES // CHUNK) and run.threads == 1
    assert run.themes.articles == tagged.articles == ARTICLES
    assert run.themes.paragraphs == tagged.paragraphs
    assert run.themes.carrying == tagged.carrying
    assert run.themes.model == tagged.model
    assert run.entities.articles == linked.articles == ARTICLES
    assert run.entities.mentions == linked.mentions
    assert run.entities.by_kind == dict(sorted(linked.by_kind.items()))
    assert run.entities.linker == linked.linker
    assert run.as_dict()["engine"]["actors"] == 2


def test_either_engine_finds_nothing_left_after_the_other(engines):
    # The local engine on the Ray-tagged corpus.
    with Corpus(engines["ray_db"]) as corpus:
        again = tag_stage.tag(corpus, engines["model"], progress=False)
        assert again.articles == 0 and again.skipped == ARTICLES
        relinked = link_corpus(corpus, engines["linker"], progress=False)
        assert relinked.articles == 0 and relinked.skipped == ARTICLES
    # The Ray engine, through the command line, on the locally tagged corpus.
    args = ["tag", "--db", str(engines["local_db"]), "--model", str(MODEL), "--kb", str(KB)]
    args += ["--built-kb", str(engines["tmp"] / "none.jsonl"), "--engine", "ray", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["themes"]["articles"] == 0 and summary["themes"]["already_tagged"] == ARTICLES
    assert summary["entities"]["articles"] == 0
    assert summary["entities"]["already_linked"] == ARTICLES
    assert summary["engine"]["name"] == "ray" and summary["engine"]["chunks"] == 0
    assert ray.is_initialized()  # the command used the running instance and left it running


def test_chunks_follow_each_stages_pending_list():
    assert plan_work([1, 2, 3], [1, 2, 3], 2) == [Work([1, 2], True, True), Work([3], True, True)]
    assert plan_work([1, 2, 3], [2], 2) == [
        Work([1, 2], True, False),
        Work([3], True, False),
        Work([2], False, True),
    ]
    assert plan_work([], [4], 2) == [Work([4], False, True)]
    assert plan_work([], [], 2) == []


def test_address_and_actors_need_the_ray_engine(tmp_path):
    db = tmp_path / "c.db"
    Corpus(db).close()
    result = CliRunner().invoke(cli, ["tag", "--db", str(db), "--actors", "2"])
    assert result.exit_code != 0 and "--engine ray" in result.output


def test_without_ray_the_engine_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayEngineError, match=r"pip install narratives\[ray\]"):
        tag_ray(None, model_dir=MODEL)  # type: ignore[arg-type]
    assert "narratives[ray]" in INSTALL_HINT
