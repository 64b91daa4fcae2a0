"""Scores: a unit's round score with its breakdown, its period score, and rankings within a parent region."""
