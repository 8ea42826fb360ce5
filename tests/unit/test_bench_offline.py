"""``bench offline``: the pure consensus rule over an answer matrix learns whom to follow."""

from __future__ import annotations

import numpy as np

from swarmrank.bench.datasets import AnswerMatrix, Question
from swarmrank.bench.offline import Records, one_round, spot_check


def matrix() -> AnswerMatrix:
    rng = np.random.default_rng(0)
    questions = [Question(f"q{i}", f"Subject: law\n\nQ{i}\nA) x\nB) y\nC) z\nD) w", "A", "law") for i in range(120)]
    models = ["strong", "weak1", "weak2", "weak3"]
    answers: dict[str, dict[str, str]] = {m: {} for m in models}
    for q in questions:
        answers["strong"][q.qid] = "A" if rng.random() < 0.95 else "B"
        shared_mistake = "C" if rng.random() < 0.6 else "A"  # the weak models err together
        for m in models[1:]:
            answers[m][q.qid] = shared_mistake
    correct = {m: {qid: a == "A" for qid, a in answers[m].items()} for m in models}
    return AnswerMatrix("toy", questions, models, answers, correct)


def test_after_spot_checks_the_proven_member_outweighs_a_correlated_majority() -> None:
    m = matrix()
    records, rng = Records(m.models), np.random.default_rng(1)
    for q in m.questions[:60]:
        spot_check(m, q, records, rng)
    assert records.trust("strong").judge_topics[0][0] == "law"
    scored = m.questions[60:]
    swarm = sum(one_round(m, q, records, 4, rng) for q in scored) / len(scored)
    majority = sum(m.correct["weak1"][q.qid] for q in scored) / len(scored)
    assert swarm > 0.85 > majority
