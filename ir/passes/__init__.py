"""Graph-to-graph passes and the pass manager (placeholder until the passes land)."""


def optimize(graph):
    return graph
