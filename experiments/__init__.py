"""The experiments: the seed thesis's MASQUE and LLM experiments, the switch-scheduling
experiment and the model router, each printing a table and writing JSON and a plot.
They run on the network lab (netlab/) and, through the switch, on the Mininet
topologies (topologies/); `make bench` runs them and fills the README's results table."""
