"""The handlers layer: what each item's v0 args become in v1, and who writes it.

In the order data flows down: `settings` (a v0 handler's constructor settings
-> v1 Context options, per item), `bridges` (the v1 handlers the shim saves
with, recorded under v0's handler names; v0 handlers run inside v1), `table`
(the one handler table: args type -> v0 handler -> recorded name -> v1
handler -> settings, and every lookup derived from it), `recovery` (reading
older or damaged steps), `checkpointables` (v0 args -> v1 checkpointables,
abstract checkpointables and per-call Context options) and `transforms`
(v0's restore-time transformations). Nothing here imports the runtime.
"""
