"""Telling people what happened: notification rules and their targets, delivery through an
outbox, approval notices and commit statuses."""
