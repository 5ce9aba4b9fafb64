"""The pure core: pipeline declarations, their validation, identifiers and errors.

Nothing in this package touches a clock, a database or the network.
"""
