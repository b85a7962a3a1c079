"""dask_h2.io: rewrite RData, PLINK .bed or VCF Zarr inputs into a dask-h2 Zarr store."""
