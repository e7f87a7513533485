"""The metrics of molecule runs in the registry (source ``smiles``, inputs
:class:`~ganforge.metrics.registry.SmilesInputs`): a run's SMILES scored with the MOSES benchmark's
definitions (:func:`ganforge.metrics.molecules.moses_metrics`, computed once for all of them)
against held-out molecules and the training set; ``ganforge evaluate`` scores as many training
molecules the same way beside them (the MOSES paper's "Train" row, the reference row).

The arrows are MOSES': validity, uniqueness, novelty, internal diversity, SNN, Frag, Scaf and the
filters higher; FCD and the property distances lower.
"""

from __future__ import annotations

from ganforge.metrics.registry import HIGHER, LOWER, SmilesInputs, register_report_metrics


def _report(inputs: SmilesInputs) -> dict[str, float]:
    from ganforge.metrics.molecules import moses_metrics

    return moses_metrics(inputs.generated, inputs.reference)


register_report_metrics(
    "smiles",
    {"molecules"},
    _report,
    (
        ("validity", {"valid": HIGHER}, "share of samples RDKit parses and sanitises (MOSES' Valid)"),
        (
            "uniqueness",
            {"unique@1000": HIGHER, "unique@10000": HIGHER},
            "share of distinct molecules among the first 1,000 and 10,000 valid ones",
        ),
        ("novelty", {"novelty": HIGHER}, "share of distinct valid molecules not in the training set"),
        (
            "int_div",
            {"int_div1": HIGHER, "int_div2": HIGHER},
            "internal diversity: 1 - mean Tanimoto similarity (p = 1, 2) within the samples",
        ),
        ("fcd", {"fcd": LOWER}, "Frechet ChemNet Distance to the held-out molecules (MOSES' FCD/Test)"),
        ("snn", {"snn": HIGHER}, "mean Tanimoto similarity to the nearest held-out molecule (SNN/Test)"),
        ("frag", {"frag": HIGHER}, "cosine similarity of BRICS fragment counts to the held-out ones"),
        ("scaf", {"scaf": HIGHER}, "cosine similarity of Bemis-Murcko scaffold counts to the held-out ones"),
        ("filters", {"filters": HIGHER}, "share passing MOSES' filters (atoms, charges, rings, MCF, PAINS)"),
        (
            "properties",
            {f"wasserstein_{p}": LOWER for p in ("qed", "logp", "sa", "weight")},
            "Wasserstein distance of QED, logP, SA and molecular weight to the held-out molecules'",
        ),
    ),
)
