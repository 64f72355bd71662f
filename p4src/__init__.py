"""The P4 programs (p4src/*.p4, include/), their committed p4c outputs (build/), and
`pipeline`: the one Python copy of the constants software shares with them."""
