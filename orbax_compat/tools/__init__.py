"""Tools built on the mapping: the migration table and type stub
(`migration_table`, `stubs`), the v1 constructor for v0 options
(`v1_config`), the scanner and codemods (`scan`), and the demo (`demo`).
"""
