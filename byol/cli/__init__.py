"""The ``byol`` command line: train, eval, embed, export, report."""
