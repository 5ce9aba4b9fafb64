"""Telling people what happened: notification rules, their targets, and (later) delivery."""
