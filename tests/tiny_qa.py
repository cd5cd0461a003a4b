"""Tiny extractive-QA data, made by the tests: who lives where and works at what.

Each paragraph states where people live and work ("alice lives in paris and works at google ."); each
question asks one of them, so its answer is fixed by the question's name and verb.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "quito", "dakar"]
FIRMS = ["google", "ikea", "nokia", "lego", "sony", "fiat", "bosch", "zara"]
WORDS = NAMES + CITIES + FIRMS + ["lives", "in", "and", "works", "at", "where", "does", "live", "work", "who",
                                  "?", ".", "the", "city", "of", "firm"]


def make_articles(n_paragraphs: int, seed: int, titles: int = 4, people: int = 1) -> list[dict]:
    """SQuAD-format articles: ``titles`` articles sharing ``n_paragraphs`` paragraphs of ``people`` people each
    (with one person a question's verb alone picks the answer: a tiny model learns it in seconds; with more,
    the reader must also match the question's name)."""
    rng = random.Random(seed)
    articles = [{"title": f"article_{t}", "paragraphs": []} for t in range(titles)]
    qid = 0
    for p in range(n_paragraphs):
        chosen = rng.sample(NAMES, people)
        sentences, qas = [], []
        for name in chosen:
            city, firm = rng.choice(CITIES), rng.choice(FIRMS)
            start = len(" ".join(sentences)) + (1 if sentences else 0)
            sentence = f"{name} lives in {city} and works at {firm} ."
            sentences.append(sentence)
            for question, answer in ((f"where does {name} live ?", city), (f"where does {name} work ?", firm)):
                offset = start + sentence.index(f" {answer} ") + 1
                qas.append({"id": f"q{qid}", "question": question, "answers": [{"text": answer, "answer_start": offset}]})
                qid += 1
        context = " ".join(sentences)
        for qa in qas:
            a = qa["answers"][0]
            assert context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
        articles[p % titles]["paragraphs"].append({"context": context, "qas": qas})
    return articles


def write_squad(path: Path, articles: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    return path
