"""Control plane: P4Runtime client, intended state and reconciliation, northbound API, mp-ctl."""
