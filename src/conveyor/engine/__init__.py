"""The engine: services that load state, apply the domain's rules and write the outcome.

Each public method is one transaction: it reads what it needs, decides with pure functions
from `conveyor.domain`, writes, and commits.
"""
