"""Lapse-risk model training (issue 12 item 6): the one package that uses scikit-learn.

The server never imports it: what it learns is written as a JSON lapse model
(``domain.lapse_risk.LapseModel``) that the services score with the standard library.
"""
