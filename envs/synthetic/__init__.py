"""A fast simulated world: domains, drafts, and latency from the speculative-decoding cost model.

:class:`SyntheticWorld` (:mod:`banditspec.envs.synthetic.world`) simulates assisted
generation for 10^5 queries in seconds; :mod:`banditspec.envs.synthetic.drafts` holds its
drafting strategies (:class:`DraftSpec`, :func:`default_drafts`) and the cost
model (:func:`speedup_factor`).
"""

from banditspec.envs.synthetic.drafts import DEFAULT_DOMAINS, DraftSpec, default_drafts, speedup_factor
from banditspec.envs.synthetic.world import SyntheticWorld

__all__ = ["DEFAULT_DOMAINS", "DraftSpec", "SyntheticWorld", "default_drafts", "speedup_factor"]
