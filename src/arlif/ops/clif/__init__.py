"""CLIF (docs/neurons.md#clif), all in this folder; the files are named as in every family folder (see
:mod:`arlif.ops.arlif`)."""
