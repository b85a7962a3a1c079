"""--partition: MAF bins and variant-to-component files, and their bad input."""
from __future__ import annotations

import numpy as np
import pytest

from dask_h2.errors import InputError
from dask_h2.kinship.partition import NO_COMPONENT, parse_partition

VARIANTS = np.array([f"rs{j}" for j in range(6)], dtype=object)


def test_maf_bins_are_half_open_with_the_last_closed():
    partition = parse_partition("maf:0.01,0.05,0.5", VARIANTS)
    assert partition.names == ("maf0.01-0.05", "maf0.05-0.5")
    p = np.array([0.005, 0.01, 0.049, 0.05, 0.7, 0.5, 0.995, np.nan])
    np.testing.assert_array_equal(
        partition.components(0, p.size, allele_frequency=p), [NO_COMPONENT, 0, 0, 1, 1, 1, NO_COMPONENT, NO_COMPONENT]
    )


def test_file_names_components_in_order_of_appearance(tmp_path):
    path = tmp_path / "parts.txt"
    path.write_text("rs3 coding\nrs0 other\nrs1 coding\n\nrs5 other\n")
    partition = parse_partition(path, VARIANTS)
    assert partition.names == ("coding", "other")
    np.testing.assert_array_equal(
        partition.components(0, 6, allele_frequency=np.zeros(6)), [1, 0, NO_COMPONENT, 0, NO_COMPONENT, 1]
    )
    np.testing.assert_array_equal(partition.components(2, 4, allele_frequency=np.zeros(2)), [NO_COMPONENT, 0])


def test_no_partition_is_one_component():
    partition = parse_partition(None, VARIANTS)
    assert partition.size == 1
    np.testing.assert_array_equal(partition.components(0, 3, allele_frequency=np.array([0.0, 0.2, 0.5])), [0, 0, 0])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("maf:0.1", "at least two increasing"),
        ("maf:0.2,0.1", "at least two increasing"),
        ("maf:0.1,0.6", "numbers in [0, 0.5]"),
        ("maf:a,b", "with numbers"),
        ("missing.txt", "no such file"),
        ("maf:nan,0.5", "numbers in [0, 0.5]"),
        ("maf:0.1,nan", "numbers in [0, 0.5]"),
        ("maf:0.1,inf", "numbers in [0, 0.5]"),
    ],
)
def test_bad_specifications(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_partition(spec, VARIANTS)


@pytest.mark.parametrize("text, message", [
    ("rs1 a\nrs9 b\n", "1 variant.s. not in the store, e.g. 'rs9'"), ("rs1 a\nrs1 b\n", "listed more than once"),
    ("rs1 a extra\n", "3 columns"), ("\n", "no variant")])
def test_bad_files(text, message, tmp_path):
    path = tmp_path / "parts.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        parse_partition(path, VARIANTS)
