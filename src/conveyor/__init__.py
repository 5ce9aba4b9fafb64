"""Conveyor: a self-hosted continuous delivery service that speaks the AWS CodePipeline API."""

__version__ = "0.1.0"
