"""The CodePipeline JSON API: protocol, model-driven validation, one handler per operation."""
