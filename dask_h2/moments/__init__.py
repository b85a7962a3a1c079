"""The moments path: randomized Haseman-Elston in one streamed pass over the genotypes, no n x n matrix."""
