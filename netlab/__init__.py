"""The network lab underneath everything: network namespaces, processes inside them,
veth pairs and hosts behind a switch port, link emulation (netem or a userspace bridge),
per-run names, and what this machine can run. Imported by bmv2/, hostagent/, topologies/,
the experiments and the tests; imports none of them."""
