"""The benchmark suite: ``python -m bench [--short] [--json FILE]`` (or ``tox -e bench``).

Every figure is measured side by side with its baseline in the same run, repetitions
interleaved (their order alternating), and reported as the median with its ratio to the
baseline and the target of issue 10 (see ``bench.figures`` for the list and ``README.md``
"Performance" for the latest table).
"""
