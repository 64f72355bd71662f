"""P4 targets: the p4c/BMv2 toolchain, launching a switch, and the built-in software target."""
