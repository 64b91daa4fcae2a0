"""Rubrics (考评办法): indicators, deduction rules and component weights as versioned data."""
