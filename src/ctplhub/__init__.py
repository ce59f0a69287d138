"""CTPL Hub: the national information-sharing platform for compulsory motor-vehicle
third-party liability insurance (交强险)."""

__version__ = "0.1.0"
