"""dask_h2.convert: rewrite RData or PLINK .bed inputs into a dask-h2 Zarr store."""
