"""Reading files at sites as users write it: csv ``header`` as a bool, a hint when the first row
is a header read as data, and READ errors that name the site and the file."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

import fedla as fl

DATA = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def _csv(site_dir: Path, text: str) -> str:
    name = f"read-{uuid.uuid4().hex[:8]}.csv"
    (site_dir / name).write_text(text)
    return name


@pytest.mark.parametrize("header", [True, "true", 1], ids=["bool", "str", "int"])
def test_csv_header_accepts_a_bool(ctx, workers, site_dir, header) -> None:
    name = _csv(site_dir, "a,b,c\n1,2,3\n4,5,6\n")
    X = ctx.federated([f"{workers[0]}/{name}"], options={"header": header})
    np.testing.assert_array_equal(X.compute(), DATA)


def test_header_false_reads_the_first_row_as_data(ctx, workers, site_dir) -> None:
    name = _csv(site_dir, "1,2,3\n4,5,6\n")
    X = ctx.federated([f"{workers[1]}/{name}"], options={"header": False})
    np.testing.assert_array_equal(X.compute(), DATA)


def test_a_text_first_row_suggests_the_header_option(ctx, workers, site_dir) -> None:
    name = _csv(site_dir, "age,height,weight\n1,2,3\n4,5,6\n")
    message = (f"READ of '{name}' at site {workers[2]} failed: the first row of '{name}' holds "
               "text (age, height, weight) above numbers; if it is a header, read the file "
               "with options={'header': True}")
    with pytest.raises(fl.InvalidArgumentError) as raised:
        ctx.federated([f"{workers[2]}/{name}"])
    assert str(raised.value) == message


def test_text_below_the_first_row_is_no_header(ctx, workers, site_dir) -> None:
    name = _csv(site_dir, "1,2\n3,x\n")
    with pytest.raises(fl.InvalidArgumentError, match=r"column 'f1' .* has type string") as raised:
        ctx.federated([f"{workers[0]}/{name}"])
    assert "header" not in str(raised.value)


def test_read_errors_name_the_site_and_the_file(ctx, workers, site_dir) -> None:
    good = _csv(site_dir, "1,2,3\n")
    locations = [f"{workers[0]}/{good}", f"{workers[1]}/missing.csv"]
    with pytest.raises(fl.DataFileNotFoundError, match=rf"^READ of 'missing.csv' at site "
                                                       rf"{workers[1]} failed: no file"):
        ctx.federated(locations)


def test_options_of_other_types_are_refused(ctx, workers, site_dir) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=r"The 'header' option of federated must "
                                                      r"be a str, bool or int. Got 1.5 instead."):
        ctx.federated([f"{workers[0]}/x.csv"], options={"header": 1.5})
