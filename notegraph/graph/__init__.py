"""networkx graph, similarity top-k, clusters and their labels, neighbourhood metrics."""

from notegraph.graph.build import GraphSettings, build_graph

__all__ = ["GraphSettings", "build_graph"]
