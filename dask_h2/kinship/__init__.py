"""Standardization, marker QC and selection, marker chunks, K (whole, in tiles, by parts) and its eigendecomposition."""
