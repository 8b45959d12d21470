"""The analysis: the results table read as the study's design says (results), comparisons decided by
their intervals (comparisons), the original's claims and the answer (verdicts), and the tables the
pages show (tables). It reads tables and runs; it trains nothing."""
