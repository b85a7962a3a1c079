"""dask_h2.io: rewrite RData, PLINK .bed or .pgen, BGEN or VCF Zarr inputs into a dask-h2 Zarr store;
write reports, GCTA files and KING tables."""
