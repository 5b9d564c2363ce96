"""Checking hand calculations: the figures a spec states after `=>` (claims.py reads them,
verdicts.py holds them against the analysis)."""

from archcalc.check.claims import Claim, Rounded, claims
from archcalc.check.verdicts import Result, check, rf_size, subject

__all__ = ["Claim", "Result", "Rounded", "check", "claims", "rf_size", "subject"]
