"""MC-REML: REML by Monte Carlo average-information steps (BOLT-REML's algorithm) from streamed genotypes."""
