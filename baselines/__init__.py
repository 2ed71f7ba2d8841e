"""The learners REINFORCE is compared with, on the banditspec Policy interface."""
