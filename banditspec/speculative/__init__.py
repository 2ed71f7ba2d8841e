"""The speculative-decoding engine, on transformers.

Arm kinds, decoding and its measurement, lean drafting, exact counterfactual
simulation, alignment, the latency model, and offline collection. It builds on
:mod:`banditspec.bandits` and imports nothing from :mod:`banditspec.apps`.
"""
