"""The bandit framework, which knows nothing of language models.

Arms and arm sets, the :class:`~banditspec.bandits.env.Environment` protocol
and its records, the :class:`~banditspec.bandits.policy.Policy` interface and
its registry, REINFORCE, logged datasets and their shards, off-policy
estimators, rewards and featurizers. It imports nothing from
:mod:`banditspec.speculative` or :mod:`banditspec.apps`.
"""
