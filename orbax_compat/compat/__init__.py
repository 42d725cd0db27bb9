"""Where orbax_compat leans on what others may change.

`orbax` holds every touch of Orbax internals (v1's inner v0 manager, v0's
registries, ...), each with its reason and a test in
`tests/test_orbax_internals.py`, and the capabilities that differ between
supported releases; `storage` the touches of storage libraries' internals
(fsspec's listing cache on gs://); `profiles` the opt-in performance
profiles (v1 Context settings). Nothing here imports the handlers or the
runtime.
"""
