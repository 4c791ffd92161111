"""The warehouse feed (docs/warehouse.md): every change of the CRM as Parquet, run by run, with a manifest last.

- `parquet_files`: record batches streamed into Parquet files of bounded size, uploaded through storage;
- `manifests`: where files and manifests go, and which runs happened (a manifest in storage says so);
- `run`: the `warehouse.export` job itself;
- `runs`: starting a run (scheduler, API) without ever running two at once, and listing them.
"""
