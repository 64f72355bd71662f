"""Reference models of the switch's scheduling disciplines, in pure Python.

`sppifo` holds SP-PIFO's adaptive bounds (the model each queue decision of the P4
program is checked against); `portsim` simulates one output port under FIFO, strict
priority, SP-PIFO and an ideal PIFO, for the switch-scheduling experiment; `stats` the
percentiles and quartiles every table prints. The P4
tests, the experiments and the controller share these; nothing here does I/O.
"""
