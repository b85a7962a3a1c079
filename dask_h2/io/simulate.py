"""Synthetic GWAS data with population structure and known h² (GCTA --simu-qt style).

Samples fall into a few subpopulations; each marker draws an ancestral frequency
p ~ U(0.05, 0.5) and per-subpopulation frequencies from the Balding–Nichols model
with differentiation ``fst``, so the top PCs of K separate the subpopulations.
Calls go missing at random at ``missing_rate``. Each trait has its own effects on a
shared random set of causal markers: y = √h² · g + √(1 − h²) · e, where g = Z_c u / √M_c
uses the same standardization as K (so Cov(g) is the GRM of the causal markers)
and e ~ N(0, 1): the model's σ²g/(σ²g + σ²e) is exactly the requested h².

Relatives of known degree replace some of the unrelated samples: ``parent_offspring`` pairs (an
offspring receives one of its parent's two alleles at random at every marker, the other drawn from
their subpopulation's frequency) and ``siblings`` pairs (two children of the same two ungenotyped
parents); both are first degree, kinship 1/4. Markers are unlinked. The pairs are recorded in the
store's attributes (``relatives``: [sample, sample, kind] by position). ``family_environment`` c²
adds an environment that each pair shares (and every other sample has alone), a share c² of each
trait's variance: y = √h² · g + c · f + √(1 − h² − c²) · e, which inflates the h² of a model that
ignores it, as families do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from dask_h2.io.sources import GenotypeSource
from dask_h2.errors import InputError, ParameterError
from dask_h2.kinship.standardize import centre_and_scale, marker_moments, standardize

BLOCK = 4096  # markers generated at a time, independent of how the output is chunked
ROW_VALUES = 1 << 16  # genotypes drawn at a time inside a block (cache-sized)


@dataclass(frozen=True, kw_only=True)
class SimulationDesign:
    """Parameters of a simulated data set; h² (k,) values lie in [0, 1]."""

    n_samples: int
    n_markers: int
    h2: tuple[float, ...]
    seed: int
    n_populations: int = 3
    fst: float = 0.05
    missing_rate: float = 0.01
    n_causal: int | None = None
    parent_offspring: int = 0
    siblings: int = 0
    family_environment: float = 0.0

    def causal_count(self) -> int:
        return self.n_causal or max(1, min(self.n_markers, max(1000, self.n_markers // 4)))


def simulate(design: SimulationDesign) -> GenotypeSource:
    """A genotype source that generates the data as its blocks are read (in order)."""
    if design.n_samples < 2 or design.n_markers < 1:
        raise InputError("a simulation needs at least 2 samples and 1 marker")
    if any(not 0.0 <= h <= 1.0 for h in design.h2):
        raise InputError(f"--h2: values must lie in [0, 1], got {list(design.h2)}")
    if any(h + design.family_environment > 1.0 for h in design.h2):
        raise ParameterError(f"{{family_environment}}: h2 + c2 must be at most 1, got h2 = {max(design.h2)}",
                             family_environment=design.family_environment)
    rng = np.random.default_rng(design.seed)
    population = rng.permutation(np.arange(design.n_samples) % design.n_populations)
    pairs = relative_pairs(design)
    population[pairs[:, 1]] = population[pairs[:, 0]]  # a family shares its subpopulation
    causal = np.zeros(design.n_markers, dtype=bool)
    causal[rng.choice(design.n_markers, design.causal_count(), replace=False)] = True
    effects = rng.standard_normal((design.n_markers, len(design.h2)), dtype=np.float32) * causal[:, None]
    genetic = np.zeros((design.n_samples, len(design.h2)))
    blocks = _genotype_blocks(design, population, pairs)
    pending = np.empty((0, design.n_samples), dtype=np.int8)
    position = 0

    def read_block(start: int, stop: int) -> np.ndarray:
        nonlocal pending, position
        if start != position:
            raise ValueError("simulated blocks must be read in order")
        while pending.shape[0] < stop - start:
            block_start = position + pending.shape[0]
            block = next(blocks)
            centre, inverse_scale, _ = centre_and_scale(marker_moments(block), n_samples=design.n_samples, scale="hwe")
            z = standardize(block, centre=centre, inverse_scale=inverse_scale)
            genetic[:] += z.T @ effects[block_start:block_start + block.shape[0]]
            pending = np.concatenate([pending, block])
        out, pending = pending[: stop - start], pending[stop - start:]
        position = stop
        return out

    def phenotypes() -> tuple[np.ndarray, np.ndarray]:
        if position != design.n_markers:
            raise ValueError("phenotypes are known only after every marker has been read")
        noise = rng.standard_normal(genetic.shape)
        h2, c2 = np.asarray(design.h2), design.family_environment
        traits = np.sqrt(h2) * genetic / np.sqrt(design.causal_count()) + np.sqrt(1.0 - h2 - c2) * noise
        if c2 > 0:
            shared = np.random.default_rng([design.seed, 4]).standard_normal(genetic.shape)
            shared[pairs[:, 1]] = shared[pairs[:, 0]]  # one environment per pair
            traits += np.sqrt(c2) * shared
        return traits, np.array([f"trait{j + 1}" for j in range(len(h2))], dtype=object)

    attrs = {"source": "simulation", "source_format": "simulation", "simulated_h2": list(design.h2),
             "seed": design.seed, "n_populations": design.n_populations, "fst": design.fst,
             "missing_rate": design.missing_rate, "n_causal": design.causal_count()}
    if pairs.size:
        attrs["relatives"] = [[int(a), int(b), RELATIVE_KINDS[kind]] for a, b, kind in pairs]
    if design.family_environment:
        attrs["family_environment"] = design.family_environment
    return GenotypeSource(
        sample_id=np.array([f"ind{i + 1}" for i in range(design.n_samples)], dtype=object),
        variant_id=np.array([f"snp{j + 1}" for j in range(design.n_markers)], dtype=object),
        read_block=read_block, phenotypes=phenotypes, attrs=attrs,
    )


RELATIVE_KINDS = ("parent_offspring", "siblings")


def relative_pairs(design: SimulationDesign) -> np.ndarray:
    """(r, 3) int64: the samples of each related pair (first, second) and its kind (an index into
    ``RELATIVE_KINDS``), distinct samples drawn by their own seeded stream; parent first."""
    count = design.parent_offspring + design.siblings
    if 2 * count > design.n_samples:
        raise ParameterError(f"{{parent_offspring}} + {{siblings}}: {count} pairs need {2 * count} samples, more than "
                             f"the {design.n_samples} simulated", parent_offspring=design.parent_offspring,
                             siblings=design.siblings)
    chosen = np.random.default_rng([design.seed, 2]).choice(design.n_samples, 2 * count, replace=False)
    kinds = np.repeat([0, 1], [design.parent_offspring, design.siblings])
    return np.column_stack([chosen[:count], chosen[count:], kinds]).astype(np.int64)


def _genotype_blocks(design: SimulationDesign, population: np.ndarray, pairs: np.ndarray) -> Iterator[np.ndarray]:
    """int8 (≤ BLOCK, n) dosage blocks, −1 = missing, each from its own seeded stream (the relatives and
    their missing calls from a second one)."""
    a = (1.0 - design.fst) / design.fst
    for index, start in enumerate(range(0, design.n_markers, BLOCK)):
        rng = np.random.default_rng([design.seed, 1, index])
        m = min(BLOCK, design.n_markers - start)
        ancestral = rng.uniform(0.05, 0.5, size=(m, 1))
        frequency = rng.beta(ancestral * a, (1.0 - ancestral) * a, size=(m, design.n_populations))
        if pairs.size == 0:
            yield _draw_dosage(rng, frequency, population, design.missing_rate)
            continue
        dosage = _draw_dosage(rng, frequency, population, 0.0)
        family = np.random.default_rng([design.seed, 3, index])
        for first, second, kind in pairs:
            p = frequency[:, population[first]]
            if kind == 0:  # the offspring: one of the parent's alleles, one from the population
                parent = dosage[:, first]
                dosage[:, second] = (parent + family.integers(0, 2, m, dtype=np.int8) * (parent == 1)) // 2 \
                    + (family.random(m) < p)
            else:  # two children of the same two parents (alleles (m, 2) each)
                mother, father = (family.random((2, m, 2)) < p[None, :, None]).astype(np.int8)
                for child in (first, second):
                    pick = family.integers(0, 2, (2, m))
                    dosage[:, child] = mother[np.arange(m), pick[0]] + father[np.arange(m), pick[1]]
        dosage[family.random(dosage.shape, dtype=np.float32) < design.missing_rate] = -1
        yield dosage


def _draw_dosage(rng: np.random.Generator, frequency: np.ndarray, population: np.ndarray,
                 missing_rate: float) -> np.ndarray:
    """int8 (m, n) dosages from three (m, n) uniform fields drawn one after the other by ``rng``
    (allele 1, allele 2, missing call), with p = ``frequency`` (m, populations)[:, population].

    Computed a few rows at a time, each field from a copy of the generator advanced to its
    start: the same values as drawing the whole fields, without (m, n) float64 temporaries.
    """
    m, n = frequency.shape[0], population.size
    fields = []
    for k in range(3):
        bits = type(rng.bit_generator)()
        bits.state = rng.bit_generator.state
        fields.append(np.random.Generator(bits.advance(k * m * n)))
    dosage = np.empty((m, n), np.int8)
    rows = max(1, ROW_VALUES // n)
    p, u = np.empty((rows, n)), np.empty((rows, n))
    for r0 in range(0, m, rows):
        k = min(m, r0 + rows) - r0
        d = dosage[r0:r0 + k]
        np.take(frequency[r0:r0 + k], population, axis=1, out=p[:k])
        fields[0].random(out=u[:k])
        np.less(u[:k], p[:k], out=d.view(bool))
        fields[1].random(out=u[:k])
        d += u[:k] < p[:k]
        fields[2].random(out=u[:k])
        d[u[:k] < missing_rate] = -1
    return dosage


def parse_h2_list(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"0.5,0.3"`` → (0.5, 0.3)."""
    values = text.split(",") if isinstance(text, str) else text
    return tuple(float(v) for v in values)
