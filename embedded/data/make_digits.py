"""Regenerates digits-train.bin and digits-test.bin from scikit-learn's copy of the UCI digits.

Usage: python3 make_digits.py path/to/digits.csv.gz

The source file ships inside the scikit-learn wheel as sklearn/datasets/data/digits.csv.gz
(1797 rows; each row is 64 grey levels in 0..=16, row-major 8x8, then the label). The first 600
rows become the training set and the next 300 the test set. Each record is 65 bytes: the label,
then the 64 pixels. Standard library only, so the output is byte-for-byte reproducible.
"""

import csv
import gzip
import sys

TRAIN, TEST = 600, 300


def main() -> None:
    with gzip.open(sys.argv[1], "rt") as f:
        rows = [[int(v) for v in row] for row in csv.reader(f)]
    records = []
    for row in rows[: TRAIN + TEST]:
        pixels, label = row[:64], row[64]
        assert len(row) == 65 and 0 <= label <= 9 and all(0 <= p <= 16 for p in pixels)
        records.append(bytes([label] + pixels))
    with open("digits-train.bin", "wb") as f:
        f.write(b"".join(records[:TRAIN]))
    with open("digits-test.bin", "wb") as f:
        f.write(b"".join(records[TRAIN:]))


if __name__ == "__main__":
    main()
