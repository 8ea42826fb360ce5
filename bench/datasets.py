"""Real answer matrices of real models, read by path from the shared data directory (never copied).

Each dataset becomes a list of questions (prompt text + gold answer) and, per model, its recorded
final answer and whether the dataset's own grader marked it correct.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("mmlu-pro", "gsm", "math-l5", "crux", "judgebench")


@dataclass(frozen=True)
class Question:
    qid: str
    prompt: str
    gold: str
    category: str = ""


@dataclass(frozen=True)
class AnswerMatrix:
    name: str
    questions: list[Question]
    models: list[str]
    answers: dict[str, dict[str, str]]   # model -> qid -> final answer ("" or missing: none)
    correct: dict[str, dict[str, bool]]  # model -> qid -> graded correct


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        return head, list(reader)


def _jsonl(path: Path) -> list[dict]:  # type: ignore[type-arg]
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def mmlu_prompt(question: str, options: list[str], category: str = "") -> str:
    """The question, its lettered options and, first, its category as a ``Subject:`` line (the
    metadata the coordinator's per-topic records read: ``evidence.topic_of``)."""
    letters = "ABCDEFGHIJ"
    lines = ([f"Subject: {category}", ""] if category else []) + [question.strip(), "", "Options:"] + [f"{letters[i]}) {o}" for i, o in enumerate(options)]
    return "\n".join(lines + ["", "Answer with the letter of the correct option."])


def load(data_dir: Path, dataset: str) -> AnswerMatrix:
    data_dir = Path(data_dir)
    if dataset == "mmlu-pro":
        meta = {str(q["question_id"]): q for q in _jsonl(data_dir / "mmlu_pro" / "questions.jsonl.gz")}
        head, rows = _csv(data_dir / "mmlu_pro" / "predictions.csv.gz")
        models = head[2:]
        questions = [Question(r[0], mmlu_prompt(meta[r[0]]["question"], meta[r[0]]["options"], meta[r[0]]["category"]), r[1], meta[r[0]]["category"])
                     for r in rows if r[0] in meta]
        answers = {m: {r[0]: r[2 + i] for r in rows} for i, m in enumerate(models)}
        correct = {m: {r[0]: r[2 + i] == r[1] for r in rows} for i, m in enumerate(models)}
        return AnswerMatrix(dataset, questions, models, answers, correct)
    if dataset in ("gsm", "math-l5", "crux"):
        base = data_dir / "zeroeval"
        meta = {str(q["id"]): q for q in _jsonl(base / f"{dataset}_questions.jsonl.gz")}
        head, rows = _csv(base / f"{dataset}_answers.csv.gz")
        _, graded = _csv(base / f"{dataset}_correct.csv.gz")
        models = head[1:]
        # GSM8K gold answers look like "#### 18": keep what follows the marks (CRUXEval's are Python
        # literals, which may contain "#").
        def gold(answer: object) -> str:
            return str(answer).split("#")[-1].strip() if dataset == "gsm" else str(answer).strip()

        questions = [Question(r[0], str(meta[r[0]]["question"]).strip(), gold(meta[r[0]]["answer"]))
                     for r in rows if r[0] in meta]
        correct = {m: {r[0]: r[1 + i] == "1" for r in graded if r[1 + i] != ""} for i, m in enumerate(models)}
        # An empty cell is no answer, except where it is graded right: then the answer was the empty
        # string, the gold of 17 CRUXEval questions ("''"), and it is recorded as that literal.
        golds = {q.qid: q.gold for q in questions}
        answers = {m: {r[0]: r[1 + i] or golds.get(r[0], "") for r in rows if r[1 + i] != "" or correct[m].get(r[0], False)}
                   for i, m in enumerate(models)}
        return AnswerMatrix(dataset, questions, models, answers, correct)
    raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")


@dataclass(frozen=True)
class JudgedPair:
    pair_id: str
    question: str
    response_a: str
    response_b: str
    better: str  # "A" or "B": which response is correct (JudgeBench's objective label)
    source: str


@dataclass(frozen=True)
class JudgeBench:
    pairs: list[JudgedPair]
    judges: list[str]
    # judge -> pair id -> (verdict with A shown first, verdict with B shown first), both as +1 (A is
    # better), -1 (B is better) or 0 (tie / no decision), in the pair's own A/B frame.
    verdicts: dict[str, dict[str, tuple[int, int]]]


JUDGEBENCH_RESPONSES = "gpt-4o-2024-05-13"
_DECISION = {"A>B": 1, "B>A": -1}


def load_judgebench(data_dir: Path, responses: str = JUDGEBENCH_RESPONSES) -> JudgeBench:
    """JudgeBench pairs of one response model and every judge that judged all of them. The recorded
    second decision was made with the responses swapped, in the swapped frame: it is flipped back."""
    base = Path(data_dir) / "judgebench"
    pairs = [JudgedPair(p["pair_id"], p["question"].strip(), p["response_A"].strip(), p["response_B"].strip(),
                        p["label"][0], p["source"]) for p in _jsonl(base / f"pairs_{responses}.jsonl.gz")]
    head, rows = _csv(base / "judge_decisions.csv.gz")
    col = {name: i for i, name in enumerate(head)}
    verdicts: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        if r[col["response_model"]] == responses:
            verdicts.setdefault(r[col["judge_model"]], {})[r[col["pair_id"]]] = (
                _DECISION.get(r[col["decision_AB"]], 0), -_DECISION.get(r[col["decision_BA_swapped"]], 0))
    ids = {p.pair_id for p in pairs}
    judges = sorted(j for j, v in verdicts.items() if ids <= set(v))
    return JudgeBench(pairs, judges, {j: verdicts[j] for j in judges})
