"""The mapping from Orbax's v0 CheckpointManager to v1, as data.

`members` (every member and its forms, the args types, the placeholders),
`options` (every CheckpointManagerOptions field), `signatures` (v0's own
signatures, as text) and `forms` (reading them: matching and notice texts).
Importable without jax or Orbax: the static tools run on it alone.
"""
