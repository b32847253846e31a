"""Unit tests of fio_bench.py's own logic (no fio, no backend): how rounds are reduced to the figures in the
table, and the argument errors. Run by BenchScriptTest in ./mvnw verify, or: python3 bench/test_fio_bench.py"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fio_bench  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fio_bench.py")


def run(iops, mbs=0.0):
    return {"iops": iops, "mbs": mbs, "p50": 1.0, "p99": 2.0, "cpu": 50.0, "rss": 9.0}


class RoundsTest(unittest.TestCase):
    def test_the_median_run_of_an_odd_number_is_the_middle_one(self):
        runs = [run(300), run(100), run(200)]
        self.assertIs(runs[2], fio_bench.median_run(runs, "4k randread QD1"))

    def test_of_an_even_number_the_lower_middle_run_that_happened(self):
        runs = [run(400), run(100), run(300), run(200)]
        self.assertIs(runs[3], fio_bench.median_run(runs, "4k randread QD1"))

    def test_failed_runs_are_left_out_and_none_left_is_none(self):
        runs = [None, run(100), run(300)]
        self.assertIs(runs[1], fio_bench.median_run(runs, "4k randread QD1"))
        self.assertIsNone(fio_bench.median_run([None, None], "4k randread QD1"))

    def test_128k_workloads_are_ranked_by_megabytes(self):
        runs = [run(900, mbs=10), run(100, mbs=30), run(500, mbs=20)]
        self.assertIs(runs[2], fio_bench.median_run(runs, "128k seqread QD8"))

    def test_round_ratios_pair_the_rounds_and_skip_a_failed_side(self):
        qs = [run(100), None, run(200)]
        ap = [run(150), run(999), run(100)]
        self.assertEqual([1.5, 0.5], fio_bench.round_ratios(qs, ap, "4k randread QD1"))

    def test_a_row_has_as_many_cells_as_the_header_whether_or_not_a_side_failed(self):
        header_cells = 12
        for qs, ap in ((run(100), run(150)), (None, run(150)), (run(100), None)):
            ratio, cells = fio_bench.compare(qs, ap, "4k randread QD1", [1.4, 1.6])
            row = f"| disk | 1 | 4k randread QD1 | {cells} | |"
            self.assertEqual(header_cells + 1, row.count("|"), row)
        ratio, cells = fio_bench.compare(run(100), run(150), "4k randread QD1", [1.4, 1.6])
        self.assertAlmostEqual(1.5, ratio)
        self.assertIn("| 1.50 | 1.40–1.60 |", cells)


class ArgumentsTest(unittest.TestCase):
    def fails(self, *args):
        out = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(1, out.returncode, out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(1, len(lines), out.stderr)
        return lines[0]

    def test_rounds_below_one(self):
        self.assertEqual("fio_bench: --rounds must be at least 1", self.fails("--rounds", "0"))

    def test_an_unknown_workload(self):
        line = self.fails("--workloads", "4k randread QD1;4k randread QD2")
        self.assertTrue(line.startswith("fio_bench: unknown workload '4k randread QD2' (known: 4k randread QD1;"), line)


if __name__ == "__main__":
    unittest.main()
