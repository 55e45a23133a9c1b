"""Speed of our BYOL against lightly and byol-pytorch: train step, data pipeline, end to end.

* :mod:`benchmarks.speed.common`: the spec shared by every implementation and the adapter type;
* :mod:`benchmarks.speed.ours`, :mod:`benchmarks.speed.peer_lightly`,
  :mod:`benchmarks.speed.peer_byol_pytorch`: one adapter per implementation, each calling only
  the public API of its library;
* :mod:`benchmarks.speed.data`: the JPEG folder (CIFAR-10) and DataLoaders;
* :mod:`benchmarks.speed.timing`: alternating timers, FLOP counting;
* :mod:`benchmarks.speed.report`: machine information and the Markdown table;
* :mod:`benchmarks.speed.run`: the command line (``python -m benchmarks.speed.run --help``).

The peers are an optional extra (``pip install -e .[bench]``); a missing one is skipped.
"""
