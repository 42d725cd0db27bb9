import orbax.checkpoint as ocp

def broken(:
    ocp.CheckpointManager("/x")
