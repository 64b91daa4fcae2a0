"""Rounds (测评轮次): the region snapshot each takes, inspectors' scorecards, and the results of closing it."""
