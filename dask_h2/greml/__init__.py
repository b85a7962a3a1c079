"""The exact path: REML/ML from K's eigendecomposition, bivariate REML, several GRMs by AI-REML, the liability scale."""
