"""The training-memory tiers (:mod:`arlif.models.memory`), in a module without torch: the config and the
command line's ``--help`` read them without importing torch."""

MEMORY_TIERS = ("default", "compact", "minimal")
