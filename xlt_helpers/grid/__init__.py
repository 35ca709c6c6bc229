"""The grid wing: a grid file expanded into notebook steps, run here or on Ray, and aggregated.

``spec`` reads the grid file; ``keys`` names the folders (by the step-kind table, ``step_kinds``); ``step``
is one step and its state; ``plan`` expands a grid into steps; ``preflight`` refuses, before any step
runs, what would fail after steps ran or write outside the runs folder; ``notebooks`` executes one notebook;
``kernels`` keeps a warm kernel per job (``kernel_state`` is what runs inside it); ``execute`` runs one step
under its lock; ``local_executor`` (several side by side) and ``ray_executor`` run many;
``aggregate`` gathers the results into the report folder; ``run`` is what the command line calls.
"""
